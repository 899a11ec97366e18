import type { Readable } from 'node:stream';
import { isEmptyDatabase } from '../database-census.js';
import type { BackupEngine, DumpStream, ToolCheck } from '../backup-engine.js';
import type { LogPosition } from '../backup-manifest.js';
import { parsePostgresToolVersion, postgresDumpCompatibility } from './dump-tool-compatibility.js';
import { serverAddress } from './server-address.js';
import type { ServerAddress } from './server-address.js';
import { postgresServerFacts, postgresWalPosition } from './server-facts.js';
import { postgresToolEnv } from './tool-environment.js';
import { requirePostgresTool } from './tool-locator.js';
import { runTool, startTool, whenReadToEnd } from './tool-process.js';

const POSTGRES_DEFAULTS = { port: 5432, user: 'postgres' } as const;
/**
 * How long pg_dump waits for its ACCESS SHARE table locks. Purchases never conflict with
 * them; a migration holding an exclusive lock would, and the dump should fail, not hang.
 */
const LOCK_WAIT_TIMEOUT_MS = 60_000;

/**
 * Logical backups of PostgreSQL with `pg_dump -Fc` (one repeatable-read snapshot; its
 * locks do not block inserts or updates), restored with `pg_restore` in one transaction,
 * so a failed restore leaves the target as empty as it was.
 *
 * The tools are the newest installed major's (`/usr/lib/postgresql/<major>/bin`), which can
 * dump every older server; passwords go through `PGPASSWORD`.
 */
export class PostgresDumpEngine implements BackupEngine {
  readonly engine = 'postgres' as const;
  readonly method = 'pg_dump' as const;
  readonly extension = '.pgdump';
  readonly #pgDump: string;

  /** Refuses to be built on a host without `pg_dump`. */
  constructor() {
    this.#pgDump = requirePostgresTool('pg_dump', 'back up PostgreSQL');
  }

  async check(url: string): Promise<ToolCheck> {
    const server = await postgresServerFacts(url);
    const { stdout } = await runTool({ name: 'pg_dump', command: this.#pgDump, args: ['--version'], env: postgresToolEnv('') });
    const versionText = stdout.trim();
    const version = parsePostgresToolVersion(versionText);
    const verdict = postgresDumpCompatibility(versionText, server.versionNum);
    return {
      tool: { name: 'pg_dump', version: version === undefined ? versionText : `${version.major}.${version.minor}` },
      server: { version: server.version },
      compatible: verdict.compatible,
      ...(verdict.reason === undefined ? {} : { reason: verdict.reason }),
    };
  }

  async dump(url: string): Promise<DumpStream> {
    const address = serverAddress(url, POSTGRES_DEFAULTS);
    const check = await this.check(url);
    if (!check.compatible) {
      throw new Error(`refusing to back up ${address.database} on ${address.host}:${address.port}: ${check.reason}`);
    }
    // Taken just before pg_dump's snapshot: every change up to here is in the dump.
    const position: LogPosition | undefined = await postgresWalPosition(url);
    const running = startTool({
      name: 'pg_dump',
      command: this.#pgDump,
      args: [
        '--format=custom',
        // The backup compresses every artifact itself; compressing twice only costs time.
        '--compress=0',
        '--no-owner',
        '--no-privileges',
        `--lock-wait-timeout=${LOCK_WAIT_TIMEOUT_MS}`,
        ...connectionArgs(address),
        address.database,
      ],
      env: postgresToolEnv(address.password),
      blockBufferedStdout: true,
    });
    const stream = running.stdout;
    const finished = whenReadToEnd(stream, running.exited, () => (position === undefined ? {} : { position }));
    return { stream, finished };
  }

  async restore(dump: Readable, url: string): Promise<void> {
    const address = serverAddress(url, POSTGRES_DEFAULTS);
    if (!(await isEmptyDatabase(url))) {
      throw new Error(
        `refusing to restore into ${address.database} on ${address.host}:${address.port}: it already holds tables; restore into a new, empty database`,
      );
    }
    const pgRestore = requirePostgresTool('pg_restore', 'restore into PostgreSQL');
    try {
      await runTool(
        {
          name: 'pg_restore',
          command: pgRestore,
          // From stdin: a custom-format dump streams for a single-job restore.
          args: ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', ...connectionArgs(address), `--dbname=${address.database}`],
          env: postgresToolEnv(address.password),
        },
        dump,
      );
    } catch (error) {
      throw new Error(
        `restore into ${address.database} on ${address.host}:${address.port} failed and was rolled back (one transaction), so the database is still empty: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
}

function connectionArgs(address: ServerAddress): string[] {
  return ['-h', address.host, '-p', String(address.port), '-U', address.user, '--no-password'];
}
