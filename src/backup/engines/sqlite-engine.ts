import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import BetterSqlite3 from 'better-sqlite3';
import { isEmptyDatabase } from '../database-census.js';
import type { BackupEngine, DumpStream, ToolCheck } from '../backup-engine.js';
import { sqliteFileOf } from '../../db/open-database.js';

/**
 * Pages per backup step: all of them. One step reads the whole file inside one read
 * transaction, so the copy is a single snapshot; in WAL mode that reader does not block the
 * service's writers. Smaller steps would restart from scratch each time another connection
 * writes between them, and under a running sale might never finish.
 */
const ALL_PAGES = 0x7fffffff;
/** How long the backup waits for a checkpoint or recovery holding the file. */
const BUSY_TIMEOUT_MS = 5_000;
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Backs up a SQLite database with SQLite's online backup API (through better-sqlite3) into
 * a temporary file next to it, then streams that file; restores by writing the stream to
 * the target path, which must not exist or be an empty database.
 */
export class SqliteBackupEngine implements BackupEngine {
  readonly engine = 'sqlite' as const;
  readonly method = 'sqlite-online-backup' as const;
  readonly extension = '.sqlite';

  /** The SQLite library is linked into the service, so tool and server are one version. */
  async check(_url: string): Promise<ToolCheck> {
    const version = sqliteLibraryVersion();
    return { tool: { name: 'sqlite-online-backup', version }, server: { version }, compatible: true };
  }

  async dump(url: string): Promise<DumpStream> {
    const file = sqliteFile(url);
    if (!existsSync(file)) {
      throw new Error(`cannot back up ${file}: there is no SQLite database at that path; check SECKILL_DATABASE_URL`);
    }
    // Next to the database rather than in /tmp: it is as big as the database, and /tmp is
    // often a small tmpfs.
    const scratch = await mkdtemp(join(dirname(file), `.${basename(file)}.backup-`));
    const copy = join(scratch, 'snapshot.sqlite');
    try {
      const source = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
      try {
        source.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
        await source.backup(copy, { progress: () => ALL_PAGES });
      } finally {
        source.close();
      }
    } catch (error) {
      await rm(scratch, { recursive: true, force: true });
      throw new Error(`SQLite online backup of ${file} failed: ${(error as Error).message}`, { cause: error });
    }
    const stream = createReadStream(copy);
    const finished = new Promise<{ readonly position?: undefined }>((resolveFinished, reject) => {
      stream.once('end', () => resolveFinished({}));
      stream.once('error', reject);
      stream.once('close', () => {
        if (!stream.readableEnded) reject(new Error(`the SQLite backup stream of ${file} was closed before its end`));
      });
    });
    // The temporary copy goes whether the reader finished or gave up.
    stream.once('close', () => void rm(scratch, { recursive: true, force: true }));
    finished.catch(() => undefined);
    return { stream, finished };
  }

  async restore(dump: Readable, url: string): Promise<void> {
    const file = resolve(sqliteFile(url));
    if (!(await isEmptyDatabase(url))) {
      throw new Error(
        `refusing to restore into ${file}: it already holds tables; restore into a new file, or remove this one first if it may be overwritten`,
      );
    }
    // Written beside the target and renamed, so the target never holds half a database.
    const partial = `${file}.restoring-${randomBytes(4).toString('hex')}`;
    try {
      await pipeline(dump, createWriteStream(partial, { flags: 'wx' }));
      await assertSqliteFile(partial);
      for (const leftover of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) await rm(leftover, { force: true });
      await rename(partial, file);
    } catch (error) {
      throw error;
    } finally {
      // Opening the file to check it may leave SQLite's side files behind.
      for (const leftover of [partial, `${partial}-wal`, `${partial}-shm`]) await rm(leftover, { force: true });
    }
  }
}

/** The SQLite library version better-sqlite3 was built with. */
function sqliteLibraryVersion(): string {
  const probe = new BetterSqlite3(':memory:');
  try {
    return String(probe.prepare('select sqlite_version()').pluck().get());
  } finally {
    probe.close();
  }
}

/** Refuses a restored file that is not a SQLite database (a wrong artifact, or bytes mangled on the way). */
async function assertSqliteFile(path: string): Promise<void> {
  const { size } = await stat(path);
  const handle = await open(path, 'r');
  const header = Buffer.alloc(SQLITE_HEADER.length);
  try {
    await handle.read(header, 0, header.length, 0);
  } finally {
    await handle.close();
  }
  if (size === 0 || !header.equals(SQLITE_HEADER)) {
    throw new Error(`the restored data is not a SQLite database (${size} bytes, no SQLite header); the dump is not from the SQLite engine or was damaged`);
  }
  const database = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    database.prepare('select count(*) from sqlite_master').get();
  } finally {
    database.close();
  }
}

/** The file of a `sqlite:` URL, as `openDatabaseBackend` reads it. */
function sqliteFile(url: string): string {
  const path = sqliteFileOf(url);
  if (path === undefined) {
    throw new Error(`"${url}" names no SQLite file; an in-memory database cannot be backed up or restored: use sqlite:<path>`);
  }
  return path;
}
