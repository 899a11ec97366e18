import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findExecutable, isRoot } from '../test/support/binaries.js';
import { processCpuSeconds } from './proc-cpu.js';

const execFileAsync = promisify(execFile);

/** The wrk script, read from the source folder: tsc compiles only TypeScript into dist/. */
export const WRK_SCRIPT = fileURLToPath(new URL('../../bench/purchase.lua', import.meta.url));

/** What one wrk run measured, from the script's `BENCH_RESULT` line and the `--latency` table. */
export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  /** From wrk's `--latency` distribution, in milliseconds. */
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Responses by HTTP status, summed over wrk's threads. */
  readonly status: Readonly<Record<string, number>>;
  /** Socket errors and timeouts as wrk counts them (`status` = non-2xx/3xx answers). */
  readonly errors: { readonly connect: number; readonly read: number; readonly write: number; readonly status: number; readonly timeout: number };
  /** CPU seconds wrk itself used (sampled every 100 ms while it ran). */
  readonly cpuSeconds: number | undefined;
  /** Tokens the threads held, sent, and sent a second time because the file ran out. */
  readonly tokens: number;
  readonly sent: number;
  readonly reused: number;
}

/** Options of one wrk run; see bench/purchase.lua for what the script does with them. */
export interface WrkRun {
  readonly url: string;
  readonly path: string;
  readonly method?: 'GET' | 'POST';
  readonly tokenFile: string;
  readonly threads: number;
  readonly connections: number;
  readonly durationSeconds: number;
  /**
   * `wrap` (default): a thread that used its slice starts it again (counted as `reused`).
   * `idle`: each token is sent exactly once, then only requests answered 404; end the run
   * with `until` (fills a queue with exactly N orders).
   */
  readonly onExhausted?: 'wrap' | 'idle';
  /** Each thread writes the order ids of its 2xx answers to `<ordersFile>.<thread>`. */
  readonly ordersFile?: string;
  /**
   * Polled every 100 ms: once it answers true wrk gets SIGINT, which ends the run early and
   * still prints its results (wrk otherwise waits out -d even when every thread stopped).
   */
  readonly until?: () => Promise<boolean>;
  /** Remembered so the bench can kill a run in progress when it is interrupted. */
  readonly track?: (child: ChildProcess) => void;
}

/**
 * The path of `wrk`, installing Debian's package first when it is missing and we are root
 * on Debian; otherwise throws with the exact command to run.
 */
export async function ensureWrk(log: (line: string) => void): Promise<string> {
  const found = findExecutable('wrk');
  if (found) return found;
  const command = 'apt-get install -y wrk';
  if (!isRoot() || !existsSync('/etc/debian_version')) {
    throw new Error(`wrk (the load generator) is not installed; install it with: ${isRoot() ? '' : 'sudo '}${command}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args: string[]) => execFileAsync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], { env, maxBuffer: 64 << 20 });
  log(`wrk is missing; running: ${command}`);
  try {
    await apt(['install', '-y', 'wrk']);
  } catch {
    // A fresh machine has no package lists yet.
    log('apt-get install failed; running apt-get update first');
    await apt(['update']);
    await apt(['install', '-y', 'wrk']);
  }
  const installed = findExecutable('wrk');
  if (!installed) throw new Error(`wrk is still missing after \`${command}\``);
  return installed;
}

/** `wrk debian/4.1.0-3+b2 [epoll]` → `debian/4.1.0-3+b2`. */
export async function wrkVersion(wrk: string): Promise<string> {
  // wrk prints its version with the usage text and exits 1.
  const output = await execFileAsync(wrk, ['--version']).then(
    (r) => r.stdout + r.stderr,
    (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
  );
  return /^wrk (\S+)/m.exec(output)?.[1] ?? 'unknown';
}

function parseDuration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const value = Number(m[1]);
  return m[2] === 'us' ? value / 1000 : m[2] === 'ms' ? value : m[2] === 's' ? value * 1000 : value * 60_000;
}

interface ScriptResult {
  requests: number;
  durationUs: number;
  errors: WrkResult['errors'];
  latencyUs: { p50: number; p90: number; p99: number; max: number };
  status: Record<string, number>;
  tokens: number;
  sent: number;
  reused: number;
}

/** Runs wrk once with the benchmark script and parses what it printed. */
export async function runWrk(wrk: string, run: WrkRun): Promise<WrkResult> {
  const args = [
    `-t${run.threads}`,
    `-c${run.connections}`,
    `-d${run.durationSeconds}s`,
    '--latency',
    // A purchase stuck for 5 s is a failure we want counted, not a connection wrk gives up on silently.
    '--timeout', '5s',
    '-s', WRK_SCRIPT,
    run.url,
  ];
  const env = {
    PATH: process.env.PATH ?? '',
    BENCH_TOKEN_FILE: run.tokenFile,
    BENCH_THREADS: String(run.threads),
    BENCH_METHOD: run.method ?? 'POST',
    BENCH_PATH: run.path,
    BENCH_ON_EXHAUSTED: run.onExhausted ?? 'wrap',
    BENCH_ORDERS_FILE: run.ordersFile ?? '',
  };
  const child = spawn(wrk, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  run.track?.(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  let polling = run.until !== undefined;
  const poll = async (): Promise<void> => {
    while (polling) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (polling && (await run.until!().catch(() => false))) {
        child.kill('SIGINT');
        return;
      }
    }
  };
  const poller = poll();
  // wrk's own CPU, so a run can tell the load generator's share from the server's; /proc
  // forgets a process once it exits, so the last sample before the exit is the figure.
  let cpuSeconds: number | undefined;
  const cpuTimer = setInterval(() => {
    cpuSeconds = processCpuSeconds(child.pid) ?? cpuSeconds;
  }, 100);
  const code = await exited;
  clearInterval(cpuTimer);
  polling = false;
  await poller;
  const line = /^BENCH_RESULT (.*)$/m.exec(stdout)?.[1];
  if (code !== 0 || line === undefined) {
    throw new Error(`wrk ${args.join(' ')} exited with ${code}:\n${stdout}\n${stderr}`);
  }
  const script = JSON.parse(line) as ScriptResult;
  // The --latency table is what wrk users read; the script's numbers are the same histogram.
  const percentile = (p: string, fallbackUs: number): number => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)$`, 'm').exec(stdout);
    const ms = m ? parseDuration(m[1]) : Number.NaN;
    return Number.isFinite(ms) ? ms : fallbackUs / 1000;
  };
  const seconds = script.durationUs / 1e6;
  return {
    requests: script.requests,
    seconds,
    requestsPerSecond: script.requests / seconds,
    p50Ms: percentile('50', script.latencyUs.p50),
    p90Ms: percentile('90', script.latencyUs.p90),
    p99Ms: percentile('99', script.latencyUs.p99),
    maxMs: script.latencyUs.max / 1000,
    status: script.status,
    errors: script.errors,
    cpuSeconds,
    tokens: script.tokens,
    sent: script.sent,
    reused: script.reused,
  };
}

/** Answers with status 2xx: accepted purchases (202 new, 200 the user's existing order). */
export function accepted(result: Pick<WrkResult, 'status'>): number {
  return Object.entries(result.status)
    .filter(([status]) => status.startsWith('2'))
    .reduce((sum, [, n]) => sum + n, 0);
}

/** The order ids the threads of one run wrote (see {@link WrkRun.ordersFile}). */
export function readOrderIdFiles(ordersFile: string, threads: number): string[] {
  const ids: string[] = [];
  for (let t = 0; t < threads; t++) {
    const file = `${ordersFile}.${t}`;
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) if (line !== '') ids.push(line);
  }
  return ids;
}
