/**
 * `npm run bench`: how fast the purchase path is on this machine, against a bare fastify
 * server measured in the same run, and whether it stays correct (no oversell, no lost
 * acceptance, orders persisted promptly) while doing it. See docs/benchmarks.md.
 *
 * Options (after `npm run bench --`):
 *   --runs N            measurements per line, medians reported (default 3)
 *   --duration S        seconds per measurement (default 8)
 *   --warmup S          seconds of warm-up before each measurement (default 1)
 *   --connections N     wrk connections (default 64)
 *   --threads N         wrk threads (default 2)
 *   --drain-orders N    orders queued before each drain measurement (default 200000)
 *   --writers N         writer-only nodes that drain together (default 1)
 *   --writer-batch-size N  SECKILL_WRITER_BATCH_SIZE of the writer-only nodes (default: the service's)
 *   --only LIST         some of baseline,embedded,reference,redis,split,soldout,drain (the baseline always runs)
 *   --set SECKILL_X=V   a setting for every seckill node (repeatable), e.g. --set SECKILL_WRITER_THREAD=false;
 *                       also --set NODE_OPTIONS=… (V8 flags; --profile sets its own)
 *   --profile           record a V8 CPU profile of every seckill process and summarise
 *                       where their CPU time went (slower: numbers are not comparable, and
 *                       bench/results/latest.json is left alone)
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sourceState, toolVersion } from './run-facts.js';
import { AppClient } from '../test/support/app-client.js';
import { CLI, startAppProcess } from '../test/support/app-process.js';
import type { AppProcess } from '../test/support/app-process.js';
import { freePort } from '../test/support/free-port.js';
import { startMariaDb } from '../test/support/mariadb-server.js';
import type { DatabaseServer } from '../test/support/database-server.js';
import { startRedis } from '../test/support/redis-server.js';
import type { RedisServer } from '../test/support/redis-server.js';
import { formatProfileSummary, summarizeCpuProfile } from './cpu-profile-summary.js';
import type { ProfileSummary } from './cpu-profile-summary.js';
import { checkAccepted, readSale } from './db-checks.js';
import type { SaleRecord } from './db-checks.js';
import { MetricsSampler, metricValue } from './metrics-sampler.js';
import { watchCpu } from './proc-cpu.js';
import type { CpuUse } from './proc-cpu.js';
import { readRedisStats, resetRedisStats } from './redis-stats.js';
import type { RedisCommandStat } from './redis-stats.js';
import { median, round, thousands } from './stats.js';
import { writeTokenFile } from './tokens.js';
import { accepted, ensureWrk, readOrderIdFiles, runWrk, wrkVersion } from './wrk.js';
import type { WrkResult } from './wrk.js';


/** The targets the numbers are judged against (from the brief that asked for this benchmark). */
export const TARGETS = {
  redisInStockRatio: 0.6,
  soldOutRatio: 0.9,
  p99Ms: 10,
  drainOrdersPerSecond: 50_000,
  persistedWithinSeconds: 1,
} as const;

const SCENARIOS = ['baseline', 'embedded', 'reference', 'redis', 'split', 'soldout', 'drain'] as const;
type ScenarioName = (typeof SCENARIOS)[number];

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const HELLO_SERVER = fileURLToPath(new URL('./hello-server.js', import.meta.url));
const REFERENCE_SERVER = fileURLToPath(new URL('./reference-purchase-server.js', import.meta.url));
const PROFILER_PRELOAD = fileURLToPath(new URL('./cpu-profiler-preload.js', import.meta.url));
/** Most units a sale may have (the admin API's limit). */
const MAX_STOCK = 10_000_000;
/** Pause between reads of the queue length while timing a drain. */
const PENDING_POLL_MS = 50;
/** How long a queue may take to drain after a run before the run counts as failed. */
const DRAIN_TIMEOUT_MS = 180_000;

interface Options {
  readonly runs: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly threads: number;
  readonly drainOrders: number;
  /** Writer-only nodes started together for the drain (default 1). */
  readonly writers: number;
  /** SECKILL_WRITER_BATCH_SIZE for the writer-only nodes; undefined = the service's default. */
  readonly writerBatchSize: number | undefined;
  readonly only: ReadonlySet<ScenarioName>;
  readonly profile: boolean;
  /** Extra SECKILL_* settings for every seckill node (`--set KEY=VALUE`, repeatable), e.g. to compare a setting's two values. */
  readonly nodeEnv: Readonly<Record<string, string>>;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '64' },
      threads: { type: 'string', default: '2' },
      'drain-orders': { type: 'string', default: '200000' },
      writers: { type: 'string', default: '1' },
      'writer-batch-size': { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'boolean', default: false },
      set: { type: 'string', multiple: true },
    },
  });
  const nodeEnv: Record<string, string> = {};
  for (const pair of values.set ?? []) {
    const match = /^(SECKILL_[A-Z0-9_]+|NODE_OPTIONS)=(.*)$/.exec(pair);
    if (!match) throw new Error(`--set takes SECKILL_NAME=value or NODE_OPTIONS=value, not ${JSON.stringify(pair)}`);
    nodeEnv[match[1]] = match[2];
  }
  const positive = (name: string, text: string | undefined, max: number): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be a whole number from 1 to ${max}, not ${JSON.stringify(text)}`);
    return n;
  };
  const only = new Set<ScenarioName>(['baseline']);
  for (const name of (values.only ?? SCENARIOS.join(',')).split(',').map((s) => s.trim())) {
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`--only takes some of ${SCENARIOS.join(', ')}, not ${JSON.stringify(name)}`);
    only.add(name as ScenarioName);
  }
  return {
    runs: positive('runs', values.runs, 20),
    durationSeconds: positive('duration', values.duration, 600),
    warmupSeconds: positive('warmup', values.warmup, 60),
    connections: positive('connections', values.connections, 10_000),
    threads: positive('threads', values.threads, 64),
    drainOrders: positive('drain-orders', values['drain-orders'], MAX_STOCK),
    writers: positive('writers', values.writers, 16),
    writerBatchSize: values['writer-batch-size'] === undefined ? undefined : positive('writer-batch-size', values['writer-batch-size'], 10_000),
    only,
    profile: values.profile ?? false,
    nodeEnv,
  };
}

// ---------------------------------------------------------------------------------------
// Processes this run started, so that every exit path (error, Ctrl-C) stops them.

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];

function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

// Last resort: the harness's own exit hook stops Redis and MariaDB; this stops ours.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) {
    const task = cleanups.pop()!;
    await task().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
  }
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping every process this benchmark started`);
    for (const child of children) child.kill('SIGTERM');
    void cleanUp().finally(() => process.exit(130));
  });
}

const started = Date.now();
function log(line: string): void {
  process.stderr.write(`[bench +${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${line}\n`);
}

/** `node 0.95 cores 98 µs/req, redis 0.2 cores …` for the log. */
function cpuSummary(cpu: CpuUse): string {
  const parts = Object.entries(cpu.processes).map(([name, p]) => `${name} ${p.cores} cores${p.usPerRequest === null ? '' : ` ${p.usPerRequest} µs/req`}`);
  return `${parts.join(', ')}; machine ${cpu.machineCores ?? '?'} cores busy, ${cpu.otherCores ?? '?'} of them other people's`;
}

/** `evalsha 25.1 µs/req, xadd 3.2 µs/req …`: Redis's own time per request (or order), top commands. */
function redisSummary(stats: readonly RedisCommandStat[] | undefined, requests: number): string {
  if (!stats || requests <= 0) return '';
  return stats
    .slice(0, 6)
    .map((s) => `${s.command} ${(s.usec / requests).toFixed(1)} (${(s.calls / requests).toFixed(2)} calls)`)
    .join(', ');
}

/** Stops a `seckill start` process: SIGTERM (a clean stop, which also writes a CPU profile), SIGKILL after 15 s. */
async function stopApp(app: AppProcess): Promise<void> {
  const timer = setTimeout(() => app.child.kill('SIGKILL'), 15_000);
  try {
    await app.kill('SIGTERM');
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------
// Results

interface PurchaseRun {
  readonly saleId: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly requests: number;
  readonly status: Readonly<Record<string, number>>;
  readonly errors: WrkResult['errors'];
  readonly warmupStatus: Readonly<Record<string, number>>;
  /** Tokens sent a second time because the pool ran out (must be 0 for a clean run). */
  readonly tokensReused: number;
  /** 2xx answers wrk counted in warm-up and measurement together. */
  readonly answered2xx: number;
  /** Distinct order ids in those answers: acceptances the database must end up holding. */
  readonly accepted: number;
  readonly db: SaleRecord;
  /** live orders − stock (or sold − stock), when positive. */
  readonly oversold: number;
  /** Accepted order ids not in the database after the writer drained, plus orders it refused. */
  readonly lost: number;
  readonly lostExamples: readonly string[];
  /** Orders persisted whose answer wrk did not see (in flight when it stopped): not losses. */
  readonly unobserved: number;
  readonly maxWriterLagSeconds: number | null;
  readonly maxPending: number | null;
  /** From the end of the measurement until the sale's queue was empty. */
  readonly drainTailSeconds: number | null;
  /** CPU of the server, Redis and MariaDB during the measurement (cores, µs per request). */
  readonly cpu: CpuUse;
  /** Redis `INFO commandstats` over the measurement (Redis lines only). */
  readonly redisCommandStats?: readonly RedisCommandStat[];
  readonly loadAverage: number;
  /** req/s of the baseline measured just before this run, and this run's ratio to it. */
  readonly pairedBaselineRps: number;
  readonly pairedRatio: number;
}

interface Figures {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

interface ScenarioResult {
  readonly name: ScenarioName;
  readonly label: string;
  readonly runs: readonly PurchaseRun[] | readonly BaselineRun[] | readonly ReferenceRun[];
  readonly median: Figures;
  /**
   * Median over the runs of (req/s ÷ req/s of the baseline measured just before that run);
   * 1 for the baseline itself.
   */
  readonly ratio: number;
  /** median req/s ÷ median req/s of the baseline line (measured at the start of the run). */
  readonly ratioToBaselineLine?: number;
}

interface BaselineRun {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly requests: number;
  readonly status: Readonly<Record<string, number>>;
  readonly cpu: CpuUse;
  readonly loadAverage: number;
}

interface DrainRun {
  readonly saleId: number;
  readonly orders: number;
  /** Purchases answered 2xx while filling the queue through the api-only node. */
  readonly filled: number;
  /** Orders in the queue when the writer started (`pending` of the sale's stats). */
  readonly queued: number;
  readonly fillRequestsPerSecond: number;
  readonly fillP99Ms: number;
  /** From the writer's first visible progress until the queue was empty. */
  readonly seconds: number;
  readonly ordersPerSecond: number;
  /** From spawning the writer-only node (includes its start-up) until the queue was empty. */
  readonly totalSeconds: number;
  readonly db: SaleRecord;
  /** Accepted order ids not in the database after the drain, plus orders it refused. */
  readonly lost: number;
  readonly oversold: number;
  /** Reads of the api node's `seckill_orders_pending` while timing the drain. */
  readonly pendingPolls: number;
  /** How long one `GET …/stats` took with the queue full (nothing in the database yet) and after the drain. */
  readonly statsMs: { readonly beforeDrain: number; readonly afterDrain: number };
  /** CPU of the writer node, MariaDB, Redis and the api node during the drain (µs per order). */
  readonly cpu: CpuUse;
  /** Redis `INFO commandstats` over the drain. */
  readonly redisCommandStats: readonly RedisCommandStat[];
  readonly loadAverage: number;
}

interface DrainResult {
  readonly runs: readonly DrainRun[];
  readonly medianOrdersPerSecond: number;
}

function figures(runs: readonly { requestsPerSecond: number; p50Ms: number; p99Ms: number }[]): Figures {
  return {
    requestsPerSecond: round(median(runs.map((r) => r.requestsPerSecond)), 0),
    p50Ms: round(median(runs.map((r) => r.p50Ms))),
    p99Ms: round(median(runs.map((r) => r.p99Ms))),
  };
}

// ---------------------------------------------------------------------------------------
// Pieces of a run

interface Bench {
  readonly options: Options;
  /** Environment that makes a Node process record a CPU profile under --profile; empty otherwise. */
  readonly profileEnv: (name: string) => Record<string, string>;
  readonly wrk: string;
  readonly dir: string;
  readonly adminToken: string;
  readonly jwtSecret: string;
  /** Token files: warm-up (also used by the baseline), measurement, and exactly N for the drain. */
  readonly warmTokens: { file: string; count: number };
  mainTokens: { file: string; count: number };
  drainTokens: { file: string; count: number };
  /** The bare fastify server, kept running so a baseline can be measured next to every run. */
  hello?: { readonly url: string; readonly child: ChildProcess };
}

/** Starts one of the bench's own servers (`script <port>`, prints `listening <url>`). */
async function startBenchServer(script: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [script, String(port)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output += d));
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.startsWith('listening ')) resolve(line.slice('listening '.length));
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}: ${output}`)));
  });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${script} did not start in 10 s`)), 10_000).unref());
  return { url: await Promise.race([ready, timeout]), child };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Waits until the sale's queue is empty (stats `pending` is 0); returns the seconds waited. */
async function waitDrained(client: AppClient, saleId: number, timeoutMs = DRAIN_TIMEOUT_MS): Promise<number> {
  const begin = performance.now();
  for (;;) {
    const stats = await client.stats(saleId);
    if (stats.status === 200 && stats.body.pending === 0) return (performance.now() - begin) / 1000;
    if (performance.now() - begin > timeoutMs) {
      throw new Error(`sale ${saleId} still has queued orders after ${timeoutMs / 1000} s: ${JSON.stringify(stats.body)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One warm-up and one measurement of the bare fastify server (started on first use, kept running). */
async function measureBaseline(bench: Bench): Promise<BaselineRun> {
  const { options } = bench;
  if (!bench.hello) {
    const hello = await startBenchServer(HELLO_SERVER, bench.profileEnv('baseline'));
    bench.hello = hello;
    cleanups.push(() => stopChild(hello.child));
  }
  const { hello } = bench;
  const common = { url: hello.url, path: '/', tokenFile: bench.warmTokens.file, threads: options.threads, connections: options.connections, track };
  await runWrk(bench.wrk, { ...common, durationSeconds: options.warmupSeconds });
  const load = loadavg()[0];
  const cpu = watchCpu({ node: hello.child.pid });
  const r = await runWrk(bench.wrk, { ...common, durationSeconds: options.durationSeconds });
  return {
    ...wrkFigures(r),
    cpu: cpu(r.requests, { wrk: r.cpuSeconds }),
    loadAverage: round(load),
  };
}

/** The figures of one wrk measurement that every line reports. */
function wrkFigures(r: WrkResult): Pick<BaselineRun, 'requestsPerSecond' | 'p50Ms' | 'p90Ms' | 'p99Ms' | 'maxMs' | 'requests' | 'status'> {
  return { requestsPerSecond: round(r.requestsPerSecond, 0), p50Ms: r.p50Ms, p90Ms: r.p90Ms, p99Ms: r.p99Ms, maxMs: r.maxMs, requests: r.requests, status: r.status };
}

async function baselineRuns(bench: Bench): Promise<ScenarioResult> {
  const runs: BaselineRun[] = [];
  for (let i = 1; i <= bench.options.runs; i++) {
    const r = await measureBaseline(bench);
    runs.push(r);
    log(`baseline run ${i}: ${thousands(r.requestsPerSecond)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms; cpu ${cpuSummary(r.cpu)}`);
  }
  return { name: 'baseline', label: 'baseline: fastify hello world', runs, median: figures(runs), ratio: 1 };
}

/** One measurement of the reference route, with the baseline measured just before it. */
interface ReferenceRun extends BaselineRun {
  readonly pairedBaselineRps: number;
  readonly pairedRatio: number;
}

/**
 * The brief's yardstick (bench/reference-purchase-server.ts: fastify + HS256 + one ioredis
 * Lua call per purchase) on the private Redis, measured like the purchase lines: a baseline
 * just before each run, new buyers every time, warm-up first.
 */
async function referenceRuns(bench: Bench, redis: RedisServer): Promise<ScenarioResult> {
  const { options } = bench;
  const runs: ReferenceRun[] = [];
  for (let i = 1; i <= options.runs; i++) {
    const server = await startBenchServer(REFERENCE_SERVER, {
      ...bench.profileEnv('reference'),
      BENCH_REDIS_URL: redis.url,
      BENCH_JWT_SECRET: bench.jwtSecret,
      BENCH_KEY_PREFIX: `seckill-bench-reference-${i}:`,
    });
    try {
      const paired = await measureBaseline(bench);
      const common = { url: server.url, path: '/api/sales/1/purchase', threads: options.threads, connections: options.connections, track };
      await runWrk(bench.wrk, { ...common, tokenFile: bench.warmTokens.file, durationSeconds: options.warmupSeconds });
      const load = loadavg()[0];
      const cpu = watchCpu({ node: server.child.pid, redis: redis.pid });
      const r = await runWrk(bench.wrk, { ...common, tokenFile: bench.mainTokens.file, durationSeconds: options.durationSeconds });
      const run: ReferenceRun = {
        ...wrkFigures(r),
        cpu: cpu(r.requests, { wrk: r.cpuSeconds }),
        loadAverage: round(load),
        pairedBaselineRps: paired.requestsPerSecond,
        pairedRatio: round(r.requestsPerSecond / paired.requestsPerSecond),
      };
      runs.push(run);
      log(
        `reference run ${i}: ${thousands(r.requestsPerSecond)} req/s (${run.pairedRatio}× the baseline's ${thousands(paired.requestsPerSecond)} req/s just before), ` +
          `p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, status ${JSON.stringify(r.status)}; cpu ${cpuSummary(run.cpu)}`,
      );
    } finally {
      await stopChild(server.child);
    }
  }
  return { name: 'reference', label: 'reference: fastify+JWT+Lua', runs, median: figures(runs), ratio: round(median(runs.map((r) => r.pairedRatio))) };
}

/** A node started for one measurement, and how to stop it. */
interface RunTarget extends SeckillTarget {
  /** Set for the sold-out line: the sale whose one unit is already sold, and that order. */
  readonly soldOut?: { readonly saleId: number; readonly orderId: string };
  stop(): Promise<void>;
}

interface Servers {
  readonly redis: RedisServer;
  readonly mariadb: DatabaseServer;
}

interface SeckillTarget {
  readonly app: AppProcess;
  readonly client: AppClient;
  readonly databaseUrl: string;
  /** Processes whose CPU is watched during each measurement. */
  readonly pids: Readonly<Record<string, number | undefined>>;
  /** The private Redis, whose command statistics are read after each measurement. */
  readonly redisUrl?: string;
  /** The node whose `/metrics` tells the writer's lag, when it is not `app` (a writer-only node). */
  readonly writerUrl?: string;
}

/**
 * Three (or --runs) measurements of the purchase route on a node; each on a fresh sale, so
 * the same token pool means new buyers every time, and each checked against the database
 * once its queue has drained.
 */
async function purchaseRuns(
  bench: Bench,
  name: ScenarioName,
  label: string,
  baseline: Figures,
  startTarget: (run: number) => Promise<RunTarget>,
): Promise<ScenarioResult> {
  const { options } = bench;
  const runs: PurchaseRun[] = [];
  for (let i = 1; i <= options.runs; i++) {
    const target = await startTarget(i);
    try {
      // The machine is shared: other people's load comes and goes within minutes. A
      // baseline measured right before each run, on the same machine state, gives a ratio
      // that such swings barely move; the scenario's ratio is the median of these.
      const paired = await measureBaseline(bench);
      const run = await purchaseRun(bench, target, name, i, paired);
      runs.push(run);
    } finally {
      await target.stop();
    }
  }
  const medians = figures(runs);
  return {
    name,
    label,
    runs,
    median: medians,
    ratio: round(median(runs.map((r) => r.pairedRatio))),
    ratioToBaselineLine: round(medians.requestsPerSecond / baseline.requestsPerSecond),
  };
}

/** One measurement on a node of its own: warm-up, measurement, drain, checks. */
async function purchaseRun(bench: Bench, target: RunTarget, name: ScenarioName, i: number, paired: BaselineRun): Promise<PurchaseRun> {
  const { options } = bench;
  const soldOutSale = target.soldOut?.saleId;
  // The sold-out sale's one unit was bought before the run, outside wrk.
  const firstOrderId = target.soldOut?.orderId;
  const saleId = soldOutSale ?? (await target.client.createSale(Math.min(MAX_STOCK, bench.warmTokens.count + bench.mainTokens.count + 1)));
  const path = `/api/sales/${saleId}/purchase`;
  const common = { url: target.app.url, path, threads: options.threads, connections: options.connections, track };
  const sampler = soldOutSale === undefined ? new MetricsSampler(target.writerUrl ?? target.app.url) : undefined;
  const ordersFile = join(bench.dir, `orders-${name}-${i}`);
  const warm = await runWrk(bench.wrk, { ...common, tokenFile: bench.warmTokens.file, durationSeconds: options.warmupSeconds, ordersFile: `${ordersFile}-warm` });
  const load = loadavg()[0];
  if (target.redisUrl) await resetRedisStats(target.redisUrl);
  const cpu = watchCpu(target.pids);
  const r = await runWrk(bench.wrk, { ...common, tokenFile: bench.mainTokens.file, durationSeconds: options.durationSeconds, ordersFile: `${ordersFile}-main` });
  const cpuUse = cpu(r.requests, { wrk: r.cpuSeconds });
  const redisStats = target.redisUrl ? await readRedisStats(target.redisUrl) : undefined;
  const tail = await waitDrained(target.client, saleId);
  const lag = await sampler?.stop();
  const ids = [...readOrderIdFiles(`${ordersFile}-warm`, options.threads), ...readOrderIdFiles(`${ordersFile}-main`, options.threads), ...(firstOrderId ? [firstOrderId] : [])];
  const [db, check] = await Promise.all([readSale(target.databaseUrl, saleId), checkAccepted(target.databaseUrl, saleId, ids)]);
  const answered2xx = accepted(warm) + accepted(r) + (firstOrderId ? 1 : 0);
  const run: PurchaseRun = {
    saleId,
    ...wrkFigures(r),
    errors: r.errors,
    warmupStatus: warm.status,
    tokensReused: warm.reused + r.reused,
    answered2xx,
    accepted: check.accepted,
    db,
    oversold: Math.max(0, db.live - db.stock, db.sold - db.stock),
    lost: check.lost + db.rejected,
    lostExamples: check.lostExamples,
    unobserved: check.unobserved,
    maxWriterLagSeconds: lag?.maxWriterLagSeconds ?? null,
    maxPending: lag?.maxPending ?? null,
    drainTailSeconds: soldOutSale === undefined ? round(tail) : null,
    cpu: cpuUse,
    redisCommandStats: redisStats,
    loadAverage: round(load),
    pairedBaselineRps: paired.requestsPerSecond,
    pairedRatio: round(r.requestsPerSecond / paired.requestsPerSecond),
  };
  log(
    `${name} run ${i}: ${thousands(r.requestsPerSecond)} req/s (${run.pairedRatio}× the baseline's ${thousands(paired.requestsPerSecond)} req/s just before), p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, status ${JSON.stringify(r.status)}` +
      (r.errors.timeout + r.errors.connect + r.errors.read + r.errors.write > 0 ? `, socket errors ${JSON.stringify(r.errors)}` : '') +
      `; oversold ${run.oversold}, lost ${run.lost}` +
      (run.maxWriterLagSeconds !== null ? `, max writer lag ${run.maxWriterLagSeconds} s, max pending ${run.maxPending}, drained ${run.drainTailSeconds} s after the load` : '') +
      (run.tokensReused > 0 ? `; WARNING: ${run.tokensReused} tokens were sent twice (pool too small)` : '') +
      `; cpu ${cpuSummary(cpuUse)}` +
      (redisStats ? `; redis µs/req by command: ${redisSummary(redisStats, r.requests)}` : ''),
  );
  return run;
}

/**
 * Spawns a `seckill start` that runs only the writer role. It is not waited for: the drain
 * timing starts at the spawn, and its start-up is reported apart. Every node serves health
 * and metrics, so each writer gets a port of its own in `env` (the default 8080 may be
 * taken, and two writers would collide on it).
 */
function startWriterProcess(env: Record<string, string> & { SECKILL_PORT: string }): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [CLI, 'start'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      SECKILL_LOG_LEVEL: 'warn',
      SECKILL_HOST: '127.0.0.1',
      ...env,
      SECKILL_ROLES: 'writer',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  return { child, output: () => output };
}

/**
 * Writer throughput into MariaDB: an api-only node takes N purchases (nothing drains them),
 * then a writer-only node starts and we time how long the queue takes to empty.
 */
async function drainRuns(
  bench: Bench,
  servers: Servers,
  freshBackends: (run: number) => Promise<{ env: Record<string, string>; databaseUrl: string; drop: () => Promise<void> }>,
): Promise<DrainResult> {
  const { options, profileEnv } = bench;
  const secrets = { SECKILL_ADMIN_TOKEN: bench.adminToken, SECKILL_JWT_SECRET: bench.jwtSecret };
  const runs: DrainRun[] = [];
  for (let i = 1; i <= options.runs; i++) {
    // A fresh database and key prefix per run: the writer shares each read among every sale
    // registered under its prefix, so sales left from earlier runs would shrink its batches.
    const backends = await freshBackends(i);
    const { databaseUrl } = backends;
    const appEnv = { ...backends.env, ...secrets, ...options.nodeEnv };
    const api = await startAppProcess({ ...appEnv, ...profileEnv('api-only'), SECKILL_ROLES: 'api' });
    track(api.child);
    cleanups.push(() => stopApp(api));
    const client = new AppClient(api.url, bench.adminToken, bench.jwtSecret);
    try {
      const orders = bench.drainTokens.count;
      const saleId = await client.createSale(orders);
      // Each token is sent once; wrk is ended as soon as the queue holds every order (or
      // has stopped growing for 3 s, when some purchases failed).
      let lastPending = -1;
      let lastChange = performance.now();
      const fillOrders = join(bench.dir, `orders-drain-${i}`);
      const fill = await runWrk(bench.wrk, {
        url: api.url,
        path: `/api/sales/${saleId}/purchase`,
        tokenFile: bench.drainTokens.file,
        threads: options.threads,
        connections: options.connections,
        durationSeconds: 600,
        onExhausted: 'idle',
        ordersFile: fillOrders,
        until: async () => {
          const pending = (await client.stats(saleId)).body.pending ?? 0;
          if (pending !== lastPending) {
            lastPending = pending;
            lastChange = performance.now();
          }
          return pending >= orders || performance.now() - lastChange > 3000;
        },
        track,
      });
      const filled = accepted(fill);
      const statsBeforeAsked = performance.now();
      const before = await client.stats(saleId);
      const statsBeforeMs = performance.now() - statsBeforeAsked;
      log(
        `drain run ${i}: queued ${thousands(before.body.pending ?? 0)} orders through the api-only node at ${thousands(fill.requestsPerSecond)} req/s ` +
          `(p99 ${fill.p99Ms} ms, status ${JSON.stringify(fill.status)}); starting a writer-only node`,
      );
      const from0 = before.body.pending ?? 0;
      const load = loadavg()[0];
      const writerEnv = {
        ...appEnv,
        ...profileEnv('writer'),
        ...(options.writerBatchSize ? { SECKILL_WRITER_BATCH_SIZE: String(options.writerBatchSize) } : {}),
      };
      await resetRedisStats(servers.redis.url);
      const spawnedAt = performance.now();
      const ports = await Promise.all(Array.from({ length: options.writers }, () => freePort()));
      const writers = ports.map((port, w) => startWriterProcess({ ...writerEnv, SECKILL_PORT: String(port), SECKILL_WORKER_INDEX: String(w) }));
      const cpu = watchCpu({
        ...Object.fromEntries(writers.map((w, n) => [n === 0 ? 'writer' : `writer ${n + 1}`, w.child.pid])),
        mariadb: servers.mariadb.pid,
        redis: servers.redis.pid,
        'api (stats polls)': api.child.pid,
      });
      let firstProgress: { at: number; pending: number } | undefined;
      let emptyAt: number | undefined;
      let cpuUse: CpuUse | undefined;
      let polls = 0;
      try {
        // Timed with the api node's `seckill_orders_pending` (an XLEN in Redis), not with
        // `GET …/stats`: stats also counts the sale's orders in MariaDB, which on a sale of
        // 200,000 orders takes long enough to slow the very writer being timed (see
        // statsMs). Stats confirms the end.
        for (;;) {
          const pending = metricValue(await (await fetch(`${api.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text(), 'seckill_orders_pending');
          polls++;
          const now = performance.now();
          if (pending === undefined) throw new Error(`the api node's /metrics has no seckill_orders_pending`);
          if (firstProgress === undefined && pending < from0) firstProgress = { at: now, pending };
          if (pending === 0) {
            emptyAt = now;
            // Before the writer stops: its CPU time is gone with its /proc entry.
            cpuUse = cpu(from0);
            break;
          }
          const dead = writers.find((w) => w.child.exitCode !== null);
          if (dead) throw new Error(`a writer-only node exited with ${dead.child.exitCode}:\n${dead.output()}`);
          if (now - spawnedAt > DRAIN_TIMEOUT_MS) throw new Error(`the queue of sale ${saleId} still held ${pending} orders after ${DRAIN_TIMEOUT_MS / 1000} s`);
          await new Promise((resolve) => setTimeout(resolve, PENDING_POLL_MS));
        }
      } finally {
        await Promise.all(writers.map((w) => stopChild(w.child)));
      }
      const redisStats = await readRedisStats(servers.redis.url);
      const statsAsked = performance.now();
      const after = await client.stats(saleId);
      const statsAfterMs = performance.now() - statsAsked;
      if (after.body.pending !== 0) throw new Error(`/metrics said the queue was empty but the stats of sale ${saleId} say ${JSON.stringify(after.body)}`);
      const [db, check] = await Promise.all([readSale(databaseUrl, saleId), checkAccepted(databaseUrl, saleId, readOrderIdFiles(fillOrders, options.threads))]);
      // The first sample that shows progress already hides some; counting from it, with the
      // orders still queued then, leaves the start-up out without inflating the rate.
      const from = firstProgress ?? { at: spawnedAt, pending: before.body.pending ?? orders };
      const seconds = (emptyAt - from.at) / 1000;
      const run: DrainRun = {
        saleId,
        orders,
        filled,
        fillRequestsPerSecond: round(fill.requestsPerSecond, 0),
        fillP99Ms: fill.p99Ms,
        seconds: round(seconds, 3),
        ordersPerSecond: round(from.pending / seconds, 0),
        totalSeconds: round((emptyAt - spawnedAt) / 1000, 3),
        queued: from0,
        db,
        lost: check.lost + db.rejected,
        oversold: Math.max(0, db.live - db.stock, db.sold - db.stock),
        pendingPolls: polls,
        statsMs: { beforeDrain: round(statsBeforeMs), afterDrain: round(statsAfterMs) },
        cpu: cpuUse!,
        redisCommandStats: redisStats,
        loadAverage: round(load),
      };
      runs.push(run);
      log(
        `drain run ${i}: ${thousands(run.ordersPerSecond)} orders/s (${thousands(from.pending)} orders in ${run.seconds} s; ` +
          `${run.totalSeconds} s including the writer's start-up); oversold ${run.oversold}, lost ${run.lost}; ` +
          `cpu ${cpuSummary(run.cpu)}; redis µs/order by command: ${redisSummary(redisStats, from0)}; one stats call took ${run.statsMs.afterDrain} ms after the drain`,
      );
    } finally {
      await stopApp(api);
      await backends.drop();
    }
  }
  return { runs, medianOrdersPerSecond: round(median(runs.map((r) => r.ordersPerSecond)), 0) };
}

/** The first `count` lines of a token file, as a file of its own. */
async function headOfFile(from: string, to: string, count: number): Promise<void> {
  const out = createWriteStream(to);
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(from) })) {
    if (n++ >= count) break;
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}



// ---------------------------------------------------------------------------------------
// Report

interface Report {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly seconds: number;
  readonly command: string;
  readonly profiled: boolean;
  /** The code measured: src/ and test/ change under other hands, so the commit alone does not say it. */
  readonly source: { readonly commit: string; readonly uncommittedFiles: number };
  readonly machine: Record<string, unknown>;
  readonly settings: Record<string, unknown>;
  readonly targets: typeof TARGETS;
  readonly scenarios: Partial<Record<Exclude<ScenarioName, 'drain'>, ScenarioResult>>;
  readonly drain?: DrainResult;
  readonly verdicts: readonly { readonly target: string; readonly measured: string; readonly met: boolean }[];
  readonly profiles?: readonly ProfileSummary[];
}

function verdicts(report: Omit<Report, 'verdicts'>): Report['verdicts'] {
  const out: { target: string; measured: string; met: boolean }[] = [];
  const { redis, split, soldout, embedded } = report.scenarios;
  for (const s of [redis, split]) {
    if (s) out.push({ target: `${s.label} ≥ ${TARGETS.redisInStockRatio}× baseline`, measured: `${s.ratio}×`, met: s.ratio >= TARGETS.redisInStockRatio });
  }
  if (soldout) out.push({ target: `sold out ≥ ${TARGETS.soldOutRatio}× baseline`, measured: `${soldout.ratio}×`, met: soldout.ratio >= TARGETS.soldOutRatio });
  for (const s of [embedded, redis, split, soldout]) {
    if (s) out.push({ target: `${s.label}: p99 ≤ ${TARGETS.p99Ms} ms`, measured: `${s.median.p99Ms} ms`, met: s.median.p99Ms <= TARGETS.p99Ms });
  }
  if (report.drain) {
    out.push({ target: `writer drain ≥ ${thousands(TARGETS.drainOrdersPerSecond)} orders/s`, measured: `${thousands(report.drain.medianOrdersPerSecond)} orders/s`, met: report.drain.medianOrdersPerSecond >= TARGETS.drainOrdersPerSecond });
  }
  for (const s of [embedded, redis, split]) {
    if (!s) continue;
    const lag = Math.max(...(s.runs as PurchaseRun[]).map((r) => r.maxWriterLagSeconds ?? Number.POSITIVE_INFINITY));
    out.push({ target: `${s.label}: orders persisted within ${TARGETS.persistedWithinSeconds} s (max writer lag)`, measured: `${lag} s`, met: lag <= TARGETS.persistedWithinSeconds });
  }
  for (const s of [embedded, redis, split, soldout]) {
    if (!s) continue;
    const runs = s.runs as PurchaseRun[];
    const oversold = runs.reduce((sum, r) => sum + (r.oversold ?? Number.NaN), 0);
    const lost = runs.reduce((sum, r) => sum + (r.lost ?? Number.NaN), 0);
    out.push({ target: `${s.label}: oversold 0, lost 0`, measured: `oversold ${oversold}, lost ${lost}`, met: oversold === 0 && lost === 0 });
  }
  if (report.drain) {
    const oversold = report.drain.runs.reduce((sum, r) => sum + (r.oversold ?? Number.NaN), 0);
    const lost = report.drain.runs.reduce((sum, r) => sum + (r.lost ?? Number.NaN), 0);
    out.push({ target: 'writer drain: oversold 0, lost 0', measured: `oversold ${oversold}, lost ${lost}`, met: oversold === 0 && lost === 0 });
  }
  return out;
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/** Median cores used by other people's processes during some runs, for the table. */
function others(runs: readonly { cpu: CpuUse }[]): string {
  const values = runs.map((r) => r.cpu.otherCores).filter((v): v is number => v !== null);
  return values.length === 0 ? '—' : median(values).toFixed(2);
}

function formatTable(report: Report): string {
  const lines: string[] = [];
  const s = report.settings;
  lines.push('');
  lines.push(
    `Seckill benchmark ${report.startedAt} (commit ${report.source.commit}` +
      `${report.source.uncommittedFiles > 0 ? ` + ${report.source.uncommittedFiles} uncommitted files in src/ test/` : ''}): ` +
      `${report.machine.cpus} CPUs, Node ${report.machine.node}, wrk ${report.machine.wrk}, ` +
      `${s.connections} connections, ${s.threads} threads, ${s.durationSeconds} s per measurement, medians of ${s.runs}` +
      (report.profiled ? '  [PROFILED: not comparable]' : ''),
  );
  lines.push('');
  const header = `${pad('', 38)}${pad('req/s', 10, true)}${pad('p50 ms', 9, true)}${pad('p99 ms', 9, true)}${pad('ratio', 8, true)}${pad('node µs/req', 13, true)}${pad('redis+db µs', 13, true)}${pad('others', 8, true)}   target`;
  lines.push(header);
  lines.push('-'.repeat(header.length + 40));
  /** CPU µs per request of the writer-only node of the api+writer line. */
  const writerUs = (sc: ScenarioResult): string => median((sc.runs as readonly { cpu: CpuUse }[]).map((r) => r.cpu.processes.writer?.usPerRequest ?? 0)).toFixed(0);
  const row = (n: string, sc: ScenarioResult | undefined, target: string): void => {
    if (!sc) return;
    const m = sc.median;
    // CPU microseconds per request, medians over the runs: what each answer costs, whatever the load.
    const runs = sc.runs as readonly { cpu: CpuUse }[];
    const us = (names: string[]): string => {
      const values = runs.map((r) => names.reduce((sum, name) => sum + (r.cpu.processes[name]?.usPerRequest ?? 0), 0));
      return values.every((v) => v === 0) ? '—' : median(values).toFixed(0);
    };
    lines.push(
      `${pad(`${n} ${sc.label}`, 38)}${pad(thousands(m.requestsPerSecond), 10, true)}${pad(m.p50Ms.toFixed(2), 9, true)}${pad(m.p99Ms.toFixed(2), 9, true)}` +
        `${pad(`${sc.ratio.toFixed(2)}×`, 8, true)}${pad(us(['node']), 13, true)}${pad(us(['redis', 'mariadb']), 13, true)}${pad(others(runs), 8, true)}   ${target}`,
    );
  };
  const mark = (met: boolean): string => (met ? 'met' : 'MISSED');
  const { baseline, embedded, reference, redis, split, soldout } = report.scenarios;
  row('1', baseline, '');
  if (embedded) row('2', embedded, `p99 ≤ ${TARGETS.p99Ms} ms: ${mark(embedded.median.p99Ms <= TARGETS.p99Ms)} (no ratio target)`);
  if (reference) {
    const vs = (sc: ScenarioResult | undefined): string => (sc ? `; line ${sc === redis ? 3 : '3b'} = ${(sc.ratio / reference.ratio).toFixed(2)}× this` : '');
    row('3r', reference, `the brief's yardstick (≈ 0.68× there)${vs(redis)}${vs(split)}`);
  }
  if (redis) row('3', redis, `≥ ${TARGETS.redisInStockRatio}×: ${mark(redis.ratio >= TARGETS.redisInStockRatio)}; p99 ≤ ${TARGETS.p99Ms} ms: ${mark(redis.median.p99Ms <= TARGETS.p99Ms)}`);
  if (split) row('3b', split, `≥ ${TARGETS.redisInStockRatio}×: ${mark(split.ratio >= TARGETS.redisInStockRatio)}; p99 ≤ ${TARGETS.p99Ms} ms: ${mark(split.median.p99Ms <= TARGETS.p99Ms)} (writer µs/req ${writerUs(split)})`);
  if (soldout) row('4', soldout, `≥ ${TARGETS.soldOutRatio}×: ${mark(soldout.ratio >= TARGETS.soldOutRatio)}; p99 ≤ ${TARGETS.p99Ms} ms: ${mark(soldout.median.p99Ms <= TARGETS.p99Ms)}`);
  if (report.drain) {
    const d = report.drain;
    const us = (match: (name: string) => boolean): string =>
      median(d.runs.map((r) => Object.entries(r.cpu.processes).reduce((sum, [name, p]) => sum + (match(name) ? (p.usPerRequest ?? 0) : 0), 0))).toFixed(0);
    lines.push(
      `${pad(`5 writer drain into MariaDB`, 38)}${pad(thousands(d.medianOrdersPerSecond), 10, true)}${pad('orders/s', 18, true)}${pad('', 8)}` +
        `${pad(us((n) => n.startsWith('writer')), 13, true)}${pad(us((n) => n === 'redis' || n === 'mariadb'), 13, true)}${pad(others(d.runs), 8, true)}   ` +
        `≥ ${thousands(TARGETS.drainOrdersPerSecond)}/s: ${mark(d.medianOrdersPerSecond >= TARGETS.drainOrdersPerSecond)} (${thousands(d.runs[0]?.orders ?? 0)} queued; µs per order)`,
    );
  }
  lines.push(
    '  node µs/req: CPU time of the server process per answer (writer process per order on line 5); redis+db µs: of redis-server and mariadbd;',
  );
  lines.push(`  others: cores busy with other people's processes meanwhile (median; the machine has ${report.machine.cpus}). Medians of ${s.runs} runs.`);
  lines.push('');
  const h2 = `${pad('6 integrity and persistence, per run', 38)}${pad('2xx', 10, true)}${pad('persisted', 11, true)}${pad('oversold', 10, true)}${pad('lost', 6, true)}${pad('max lag s', 11, true)}${pad('max pending', 13, true)}${pad('drained after s', 17, true)}`;
  lines.push(h2);
  lines.push('-'.repeat(h2.length));
  const fmt = (v: number | null | undefined, digits = 0): string => (v === null || v === undefined ? '—' : digits > 0 ? v.toFixed(digits) : thousands(v));
  for (const sc of [embedded, redis, split, soldout]) {
    if (!sc) continue;
    (sc.runs as PurchaseRun[]).forEach((r, i) => {
      lines.push(
        `${pad(`  ${sc.label} #${i + 1}`, 38)}${pad(fmt(r.accepted), 10, true)}${pad(fmt(r.db?.persisted), 11, true)}${pad(fmt(r.oversold), 10, true)}${pad(fmt(r.lost), 6, true)}` +
          `${pad(fmt(r.maxWriterLagSeconds, 3), 11, true)}${pad(fmt(r.maxPending), 13, true)}${pad(fmt(r.drainTailSeconds, 2), 17, true)}`,
      );
    });
  }
  for (const [i, r] of (report.drain?.runs ?? []).entries()) {
    lines.push(`${pad(`  writer drain #${i + 1}`, 38)}${pad(fmt(r.filled), 10, true)}${pad(fmt(r.db?.persisted), 11, true)}${pad(fmt(r.oversold), 10, true)}${pad(fmt(r.lost), 6, true)}${pad('—', 11, true)}${pad(fmt(r.orders), 13, true)}${pad(fmt(r.totalSeconds, 2), 17, true)}`);
  }
  lines.push(`  targets: oversold 0, lost 0, max writer lag ≤ ${TARGETS.persistedWithinSeconds} s (accepted orders persisted within ${TARGETS.persistedWithinSeconds} s at full load)`);
  lines.push('');
  lines.push('Verdicts:');
  for (const v of report.verdicts) lines.push(`  ${v.met ? 'met   ' : 'MISSED'}  ${v.target} — measured ${v.measured}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseOptions();
  const startedAt = new Date();
  const wrk = await ensureWrk(log);
  const dir = mkdtempSync(join(tmpdir(), 'seckill-bench-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const profileDir = options.profile ? join(RESULTS_DIR, 'profiles', startedAt.toISOString().replace(/[:.]/g, '-')) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  const bench: Bench = {
    options,
    profileEnv: (name): Record<string, string> => {
      if (!profileDir) return {};
      mkdirSync(join(profileDir, name), { recursive: true });
      return { NODE_OPTIONS: `--import=${PROFILER_PRELOAD}`, BENCH_CPU_PROF_DIR: join(profileDir, name) };
    },
    wrk,
    dir,
    adminToken: randomBytes(24).toString('hex'),
    jwtSecret: randomBytes(32).toString('hex'),
    warmTokens: { file: join(dir, 'tokens-warm.txt'), count: 0 },
    mainTokens: { file: join(dir, 'tokens-main.txt'), count: 0 },
    drainTokens: { file: join(dir, 'tokens-drain.txt'), count: 0 },
  };

  const needsServers = (['reference', 'redis', 'split', 'soldout', 'drain'] as const).some((name) => options.only.has(name));
  const secrets = { SECKILL_ADMIN_TOKEN: bench.adminToken, SECKILL_JWT_SECRET: bench.jwtSecret };
  log(`machine: ${cpus().length} CPUs (${cpus()[0]?.model}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  // Started before the baseline so their start-up CPU is not in any measurement.
  const serversStarting = needsServers
    ? Promise.all([startRedis(), startMariaDb()]).then(([redis, mariadb]) => {
        cleanups.push(() => redis.stop());
        cleanups.push(() => mariadb.stop());
        return { redis, mariadb };
      })
    : undefined;
  let servers: Servers | undefined;

  // Warm-up tokens: enough for the warm-up at the baseline's rate; the baseline reuses them
  // (a hello-world server does not care who is calling).
  const warmCount = Math.max(20_000, options.warmupSeconds * 45_000);
  let ms = await writeTokenFile(bench.warmTokens.file, bench.jwtSecret, 'bw-', warmCount);
  bench.warmTokens.count = warmCount;
  log(`minted ${thousands(warmCount)} warm-up tokens in ${(ms / 1000).toFixed(1)} s`);
  if (serversStarting) servers = await serversStarting;

  const scenarios: Report['scenarios'] = {};
  log('1/5 baseline: fastify hello world');
  const baseline = await baselineRuns(bench);
  scenarios.baseline = baseline;

  // No purchase route can answer faster than a bare fastify server, so the baseline's best
  // rate bounds how many new buyers one measurement can use.
  const bestBaseline = Math.max(...(baseline.runs as BaselineRun[]).map((r) => r.requestsPerSecond));
  const mainCount = Math.min(MAX_STOCK - warmCount - 1, Math.ceil(bestBaseline * options.durationSeconds * 1.25));
  const drainCount = options.only.has('drain') ? options.drainOrders : 0;
  const poolCount = Math.max(mainCount, drainCount + 1);
  ms = await writeTokenFile(bench.mainTokens.file, bench.jwtSecret, 'bm-', poolCount);
  bench.mainTokens = { file: bench.mainTokens.file, count: poolCount };
  log(`minted ${thousands(poolCount)} purchase tokens in ${(ms / 1000).toFixed(1)} s`);
  if (drainCount > 0) {
    // wrk calls request() once before the run to check it (script_verify_request) and
    // never sends that request: one token more makes the queue hold exactly N orders.
    await headOfFile(bench.mainTokens.file, bench.drainTokens.file, drainCount + 1);
    bench.drainTokens = { file: bench.drainTokens.file, count: drainCount };
  }

  const { profileEnv } = bench;

  // Every measurement gets a node of its own with empty state (data folder, or database and
  // Redis key prefix): runs are then alike, and nothing one leaves behind (sales still
  // registered in Redis, a grown orders table) slows the next. See docs/benchmarks.md.
  const client = (app: AppProcess): AppClient => new AppClient(app.url, bench.adminToken, bench.jwtSecret);
  const startNode = async (env: Record<string, string>, profileName: string): Promise<AppProcess> => {
    const app = await startAppProcess({ ...env, ...secrets, ...options.nodeEnv, ...profileEnv(profileName) });
    track(app.child);
    cleanups.push(() => stopApp(app));
    return app;
  };

  if (options.only.has('embedded')) {
    log('2/5 purchase in stock, embedded (SQLite + in-process stock), `seckill start` with defaults');
    scenarios.embedded = await purchaseRuns(bench, 'embedded', 'purchase in stock, embedded', baseline.median, async (run) => {
      const dataDir = join(dir, `embedded-${run}`);
      const app = await startNode({ SECKILL_DATA_DIR: dataDir }, 'embedded');
      return {
        app,
        client: client(app),
        databaseUrl: `sqlite:${join(dataDir, 'seckill.db')}`,
        pids: { node: app.child.pid },
        stop: () => stopApp(app),
      };
    });
  }

  let drain: DrainResult | undefined;
  if (servers) {
    const { redis, mariadb } = servers;
    /** Environment of a node on a fresh database and Redis key prefix of its own. */
    const freshBackends = async (label: string): Promise<{ env: Record<string, string>; databaseUrl: string; drop: () => Promise<void> }> => {
      const databaseUrl = await mariadb.createDatabase(`seckill_bench_${label}`);
      const env = {
        SECKILL_REDIS_URL: redis.url,
        SECKILL_REDIS_KEY_PREFIX: `seckill-bench-${label}:`,
        SECKILL_DATABASE_URL: databaseUrl,
        SECKILL_DATA_DIR: join(dir, label),
      };
      return { env, databaseUrl, drop: () => mariadb.dropDatabase(new URL(databaseUrl).pathname.slice(1)) };
    };
    /**
     * A node on fresh backends; with `split`, two: one that only serves the API and one that
     * only writes orders (`SECKILL_ROLES`, the CLI's `--role`), so batch writes never
     * share the API's event loop.
     */
    const redisTarget = async (label: string, profileName: string, split = false): Promise<RunTarget> => {
      const backends = await freshBackends(label);
      const app = await startNode(split ? { ...backends.env, SECKILL_ROLES: 'api' } : backends.env, profileName);
      const writer = split ? await startNode({ ...backends.env, SECKILL_ROLES: 'writer' }, `${profileName}-writer`) : undefined;
      return {
        app,
        client: client(app),
        databaseUrl: backends.databaseUrl,
        pids: { node: app.child.pid, ...(writer ? { writer: writer.child.pid } : {}), redis: redis.pid, mariadb: mariadb.pid },
        redisUrl: redis.url,
        writerUrl: writer?.url,
        async stop() {
          await stopApp(app);
          if (writer) await stopApp(writer);
          await backends.drop();
        },
      };
    };
    if (options.only.has('reference')) {
      log('3r/5 reference: bare fastify route, HS256 token, one ioredis Lua call per purchase (bench/reference-purchase-server.ts)');
      scenarios.reference = await referenceRuns(bench, redis);
    }
    if (options.only.has('redis')) {
      log('3/5 purchase in stock, Redis + MariaDB');
      scenarios.redis = await purchaseRuns(bench, 'redis', 'purchase in stock, Redis+MariaDB', baseline.median, (run) => redisTarget(`instock_${run}`, 'redis'));
    }
    if (options.only.has('split')) {
      log('3b/5 purchase in stock, Redis + MariaDB, an api-only node and a writer-only node');
      scenarios.split = await purchaseRuns(bench, 'split', 'in stock, Redis+MariaDB, api+writer', baseline.median, (run) =>
        redisTarget(`split_${run}`, 'split', true),
      );
    }
    if (options.only.has('soldout')) {
      log('4/5 sold out (stock 1, already sold), Redis + MariaDB');
      scenarios.soldout = await purchaseRuns(bench, 'soldout', 'sold out, Redis+MariaDB', baseline.median, async (run) => {
        const target = await redisTarget(`soldout_${run}`, 'soldout');
        try {
          const saleId = await target.client.createSale(1);
          const first = await target.client.purchase(saleId, 'bench-first-buyer');
          if (first.status !== 202) throw new Error(`buying the one unit of sale ${saleId} answered ${first.status} ${JSON.stringify(first.body)}`);
          await waitDrained(target.client, saleId);
          return { ...target, soldOut: { saleId, orderId: first.body.orderId! } };
        } catch (err) {
          await target.stop();
          throw err;
        }
      });
    }
    if (options.only.has('drain')) {
      log(
        `5/5 writer drain: ${thousands(drainCount)} orders queued by an api-only node, drained by ${options.writers} writer-only node(s) into MariaDB` +
          (options.writerBatchSize ? ` (SECKILL_WRITER_BATCH_SIZE=${options.writerBatchSize})` : ''),
      );
      drain = await drainRuns(bench, servers, (run) => freshBackends(`drain_${run}`));
    }
  }

  const finishedAt = new Date();
  const partial: Omit<Report, 'verdicts'> = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    seconds: round((finishedAt.getTime() - startedAt.getTime()) / 1000, 1),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    profiled: options.profile,
    source: await sourceState(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      node: process.version,
      wrk: await wrkVersion(wrk),
      redis: needsServers ? await toolVersion('redis-server', ['--version'], /v=(\S+)/) : undefined,
      mariadb: needsServers ? await toolVersion('mariadbd', ['--version'], /Ver (\S+)/) : undefined,
      loadAverageAtEnd: loadavg().map((l) => round(l)),
    },
    settings: {
      runs: options.runs,
      durationSeconds: options.durationSeconds,
      warmupSeconds: options.warmupSeconds,
      connections: options.connections,
      threads: options.threads,
      drainOrders: drainCount,
      writers: options.writers,
      writerBatchSize: options.writerBatchSize ?? 'default',
      nodeSettings: options.nodeEnv,
      warmTokens: bench.warmTokens.count,
      purchaseTokens: bench.mainTokens.count,
      seckill: 'seckill start with defaults (rate limit 5/user/s, durability leader, writer batch 1000, order writer on the API\'s event loop) plus SECKILL_DATA_DIR and fixed secrets; Redis+MariaDB lines add SECKILL_REDIS_URL and SECKILL_DATABASE_URL; the api+writer line runs two such nodes, SECKILL_ROLES=api and SECKILL_ROLES=writer; the reference line is bench/reference-purchase-server.ts, not seckill',
    },
    targets: TARGETS,
    scenarios,
    drain,
  };
  let profiles: ProfileSummary[] | undefined;
  if (profileDir) {
    profiles = [];
    for (const sub of readdirSync(profileDir)) {
      for (const file of readdirSync(join(profileDir, sub)).filter((f) => f.endsWith('.cpuprofile'))) {
        profiles.push(summarizeCpuProfile(join(profileDir, sub, file)));
      }
    }
  }
  const report: Report = { ...partial, verdicts: verdicts(partial), profiles };

  mkdirSync(RESULTS_DIR, { recursive: true });
  const isPartial = options.only.size < SCENARIOS.length || options.writers !== 1 || options.writerBatchSize !== undefined;
  const isQuick = options.runs < 3 || options.durationSeconds < 5;
  const name =
    `${startedAt.toISOString().replace(/[:.]/g, '-')}${options.profile ? '-profiled' : ''}` +
    `${isPartial ? '-partial' : ''}${isQuick ? '-quick' : ''}.json`;
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(join(RESULTS_DIR, name), json);
  // latest.json holds the reference numbers: a complete run with the default set-up, not a
  // profiled one (slower by design), an experiment with some lines or other writers, or a
  // quick check with fewer or shorter runs.
  const reference = !options.profile && !isPartial && !isQuick;
  if (reference) writeFileSync(join(RESULTS_DIR, 'latest.json'), json);

  process.stdout.write(`${formatTable(report)}\n`);
  if (profiles) {
    process.stdout.write('\nCPU profiles of the seckill processes (self time):\n');
    for (const p of profiles) process.stdout.write(`${formatProfileSummary(p)}\n`);
  }
  process.stdout.write(`\nResults: ${join(RESULTS_DIR, name)}${reference ? ' (and latest.json)' : ''}; took ${report.seconds} s\n`);
  return 0;
}

main()
  .catch((err: unknown) => {
    // After Ctrl-C the run in progress fails because its processes were stopped: not news.
    if (!interrupted) log(`FAILED: ${(err as Error).stack ?? String(err)}`);
    return 1;
  })
  .then(async (code) => {
    await cleanUp();
    for (const child of children) child.kill('SIGKILL');
    process.exit(interrupted ? 130 : code);
  });
