/**
 * The `npm test` entry: starts one private MariaDB and one private PostgreSQL for the
 * whole run (each test file would otherwise pay for its own), hands their root URLs to
 * the test files through the environment, runs the compiled test files with the
 * node:test runner, then stops the servers and exits with the runner's exit code.
 *
 * Usage: `node dist/test/run.js [substring…]` runs only the files whose path (relative
 * to dist/test) contains one of the substrings, e.g. `node dist/test/run.js harness`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBinary } from './support/binaries.js';
import type { DatabaseServer } from './support/database-server.js';
import { startMariaDb } from './support/mariadb-server.js';
import { startPostgres } from './support/postgres-server.js';
import { sweepStaleScratchDirs } from './support/scratch-dir.js';
import { parentDeathCommand } from './support/server-process.js';
import { SHARED_SERVER_ENV } from './support/servers.js';

const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type HandledSignal = keyof typeof SIGNAL_NUMBERS;

function findTestFiles(root: string, filters: readonly string[]): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.test.js')) files.push(path);
    }
  };
  walk(root);
  return files
    .filter((file) => filters.length === 0 || filters.some((filter) => relative(root, file).includes(filter)))
    .sort();
}

function log(message: string): void {
  process.stderr.write(`test harness: ${message}\n`);
}

async function stopAll(servers: readonly DatabaseServer[]): Promise<void> {
  const results = await Promise.allSettled(servers.map((server) => server.stop()));
  for (const result of results) {
    if (result.status === 'rejected') log(`could not stop a test server: ${String(result.reason)}`);
  }
}

async function main(): Promise<number> {
  const testRoot = dirname(fileURLToPath(import.meta.url));
  const filters = process.argv.slice(2);
  const files = findTestFiles(testRoot, filters);
  if (files.length === 0) {
    log(`no compiled test file in ${testRoot} matches ${filters.map((f) => JSON.stringify(f)).join(', ') || '*.test.js'}; run \`npm run build\` first or check the filter`);
    return 1;
  }

  let interrupted: HandledSignal | undefined;
  let runner: ChildProcess | undefined;
  for (const signal of Object.keys(SIGNAL_NUMBERS) as HandledSignal[]) {
    process.on(signal, () => {
      if (interrupted !== undefined) {
        // Second signal: give up waiting; the exit hooks kill the servers synchronously.
        process.exit(128 + SIGNAL_NUMBERS[signal]);
      }
      interrupted = signal;
      // Ctrl-C already reached the runner (same process group); a kill of this process alone did not.
      if (signal !== 'SIGINT') runner?.kill(signal);
    });
  }

  // Servers of an earlier run that was killed with SIGKILL would only waste memory.
  sweepStaleScratchDirs();
  const started = Date.now();
  const [redisBinary, ...results] = await Promise.allSettled([
    // Test files start their own Redis; on a clean CI machine install it once, here.
    ensureBinary('redis-server', 'redis-server'),
    startMariaDb(),
    startPostgres(),
  ]);
  const servers = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failures = [redisBinary, ...results].flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (failures.length > 0 || interrupted !== undefined) {
    if (interrupted !== undefined) log(`${interrupted} while starting the database servers; stopping them`);
    await stopAll(servers);
    for (const failure of failures) log(`test setup failed: ${failure instanceof Error ? failure.message : String(failure)}`);
    return interrupted !== undefined ? 128 + SIGNAL_NUMBERS[interrupted] : 1;
  }
  const [mariadb, postgres] = servers as [DatabaseServer, DatabaseServer];
  // stdout, so that it comes first in the same stream as the spec reporter's output.
  process.stdout.write(
    `test harness: started MariaDB on 127.0.0.1:${mariadb.port} and PostgreSQL on 127.0.0.1:${postgres.port} ` +
      `in ${((Date.now() - started) / 1000).toFixed(2)} s; running ${files.length} test file(s)\n`,
  );

  // If this process is SIGKILLed, the runner gets SIGTERM instead of running on against
  // servers that died with us.
  const { command, args } = await parentDeathCommand(
    process.execPath,
    ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
    { signal: 'SIGTERM' },
  );
  runner = spawn(command, args, {
    stdio: 'inherit',
    env: {
      ...process.env,
      [SHARED_SERVER_ENV.mysql]: mariadb.rootUrl,
      [SHARED_SERVER_ENV.postgres]: postgres.rootUrl,
    },
  });
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    runner?.once('error', reject);
    runner?.once('exit', (code, signal) => resolve({ code, signal }));
  });
  await stopAll(servers);
  if (interrupted !== undefined) return 128 + SIGNAL_NUMBERS[interrupted];
  return exit.code ?? 1;
}

process.exitCode = await main().catch((error: unknown) => {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return 1;
});
