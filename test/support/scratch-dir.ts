import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atProcessExit } from './exit-cleanup.js';

/**
 * Every scratch folder the harness creates starts with this, so a later run can find
 * folders (and servers) left behind by a test process that was killed with SIGKILL.
 */
export const SCRATCH_DIR_PREFIX = 'seckill-test-';

const OWNER_FILE = 'owner.json';

interface ProcessIdentity {
  readonly pid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22): a reused pid has another. */
  readonly startTicks: string;
}

interface OwnerRecord {
  readonly owner: ProcessIdentity;
  readonly servers: ProcessIdentity[];
}

const forgetAtExit = new Map<string, () => void>();
let swept = false;

/**
 * The identity of a live process, or undefined when it has exited (zombies count as
 * exited: they hold no files and no ports). Linux only; elsewhere always undefined.
 */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses; fields after it do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = fields[19];
  if (state === 'Z' || state === 'X' || startTicks === undefined) return undefined;
  return { pid, startTicks };
}

function isAlive(identity: ProcessIdentity): boolean {
  return processIdentity(identity.pid)?.startTicks === identity.startTicks;
}

/** Blocks the thread: the exit hook and the sweep must be synchronous. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Kills a process and its process group with SIGKILL and waits (synchronously, at most
 * `timeoutMs`) until it is gone, so that its data folder can be removed without it
 * writing into it meanwhile. The harness spawns every process as a group leader; the
 * group matters for scripts such as `mariadb-install-db`, whose children would outlive it.
 */
export function killAndWaitSync(identity: ProcessIdentity, timeoutMs = 5000): void {
  if (!isAlive(identity)) return;
  try {
    process.kill(-identity.pid, 'SIGKILL');
  } catch {
    try {
      process.kill(identity.pid, 'SIGKILL');
    } catch {
      return;
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (isAlive(identity) && Date.now() < deadline) sleepSync(10);
}

function readOwnerRecord(dir: string): OwnerRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, OWNER_FILE), 'utf8')) as OwnerRecord;
  } catch {
    return undefined;
  }
}

/**
 * Removes scratch folders whose owning test process no longer runs, after killing any
 * server recorded in them that still runs. Servers are spawned with a parent-death
 * signal, so normally only the folders remain; this also covers machines without
 * `setpriv`. Folders of live test processes (parallel runs), and folders without an
 * owner record (not the harness's), are left alone.
 */
export function sweepStaleScratchDirs(): void {
  swept = true;
  // Without /proc we cannot tell a dead owner from a live one: leave everything.
  if (processIdentity(process.pid) === undefined) return;
  const base = tmpdir();
  let names: string[];
  try {
    names = readdirSync(base).filter((name) => name.startsWith(SCRATCH_DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(base, name);
    const record = readOwnerRecord(dir);
    // No record: not ours (or created this instant); live owner: a parallel run.
    if (record === undefined || isAlive(record.owner)) continue;
    for (const server of record.servers) killAndWaitSync(server);
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * Creates a fresh private folder under the OS temp folder for one server (or one
 * SQLite database) and registers it for removal when the process exits.
 *
 * The first call in a process also sweeps folders left behind by killed test runs.
 *
 * @param purpose - a short word in the folder name, e.g. `redis`, `mariadb`.
 */
export function createScratchDir(purpose: string): string {
  if (!swept) sweepStaleScratchDirs();
  const dir = mkdtempSync(join(tmpdir(), `${SCRATCH_DIR_PREFIX}${purpose}-`));
  const owner = processIdentity(process.pid) ?? { pid: process.pid, startTicks: 'unknown' };
  const record: OwnerRecord = { owner, servers: [] };
  writeFileSync(join(dir, OWNER_FILE), JSON.stringify(record));
  forgetAtExit.set(
    dir,
    atProcessExit('remove-files', () => rmSync(dir, { recursive: true, force: true, maxRetries: 5 })),
  );
  return dir;
}

/**
 * Notes in the folder's record that a server process runs for it, so that a sweep after
 * a killed test run can stop that server before removing the folder.
 */
export function recordServerProcess(dir: string, pid: number): void {
  const record = readOwnerRecord(dir);
  const identity = processIdentity(pid);
  if (record === undefined || identity === undefined) return;
  record.servers.push(identity);
  writeFileSync(join(dir, OWNER_FILE), JSON.stringify(record));
}

/**
 * Removes a scratch folder now (its servers must have exited) and drops it from the
 * exit cleanup.
 */
export async function removeScratchDir(dir: string): Promise<void> {
  // Retries cover a killed server's children (PostgreSQL backends) still exiting.
  await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  forgetAtExit.get(dir)?.();
  forgetAtExit.delete(dir);
}
