import { readFileSync } from 'node:fs';

/** One entry of a summary: self time of a function or of a whole package. */
export interface ProfileEntry {
  readonly name: string;
  readonly selfMs: number;
  readonly percent: number;
}

/** Where a `.cpuprofile` (written by `node --cpu-prof`) spent its time. */
export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** Self time by function (`name file:line`), largest first. */
  readonly functions: readonly ProfileEntry[];
  /** Self time by origin: a node_modules package, `seckill src/<folder>`, `node internals`, `(idle)`, `(gc)`… */
  readonly origins: readonly ProfileEntry[];
  /**
   * Busy time (idle left out) by what the process was doing, judged from the whole stack:
   * a socket write under ioredis counts as the Redis client, under `reply.send` as sending
   * the response. Percentages are of busy time.
   */
  readonly activities: readonly ProfileEntry[];
}

interface CpuProfileNode {
  readonly id: number;
  readonly children?: readonly number[];
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

type CallFrame = CpuProfileNode['callFrame'];

/**
 * Activities, tried on each frame from the sampled one towards the root; the first that
 * matches names the sample. Order matters: the JWT check runs inside fastify's handler, and
 * socket writes are attributed by whoever called them.
 */
const ACTIVITIES: readonly (readonly [string, (f: CallFrame) => boolean])[] = [
  ['JWT verification (fast-jwt, incl. its token cache)', (f) => f.url.includes('fast-jwt') || f.functionName === 'userOf'],
  ['order id (crypto.randomBytes)', (f) => f.functionName === 'newOrderId'],
  ['Redis client (ioredis: write, parse)', (f) => /ioredis|redis-parser/.test(f.url)],
  ['metrics (prom-client)', (f) => f.url.includes('prom-client')],
  ['database client (kysely, mysql2, better-sqlite3)', (f) => /kysely|mysql2|better-sqlite3|sql-escaper/.test(f.url)],
  ['seckill orders/stock/db code', (f) => /dist\/src\/(orders|stock|db)\//.test(f.url)],
  ['sending the response (reply.send → socket write)', (f) => f.functionName === 'onSendEnd' || (f.functionName === 'end' && f.url.includes('_http_outgoing'))],
  ['fastify (routing, hooks, handler)', (f) => /fastify|find-my-way|avvio|ajv|fast-json-stringify|toad-cache/.test(f.url) || /dist\/src\/http\//.test(f.url)],
  ['HTTP parsing (node:http)', (f) => /_http_(server|common|incoming)/.test(f.url) || f.functionName.startsWith('parserOn')],
];

/** Which code a profile frame belongs to, coarse enough to see who pays. */
function originOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const src = /\/dist\/(src\/[^/]+|bench|test)\//.exec(url);
  if (src) return `seckill ${src[1]}`;
  if (url.startsWith('node:')) return 'node internals';
  return url;
}

function shortUrl(url: string): string {
  const pkg = /node_modules\/(.*)$/.exec(url);
  if (pkg) return pkg[1];
  const dist = /\/dist\/(.*)$/.exec(url);
  if (dist) return dist[1];
  return url.replace(/^file:\/\//, '');
}

function activityOf(node: CpuProfileNode, byId: ReadonlyMap<number, CpuProfileNode>, parentOf: ReadonlyMap<number, number>): string {
  const leaf = node.callFrame.functionName;
  if (leaf === '(garbage collector)') return 'garbage collector';
  if (leaf === '(program)') return '(program: V8 and native code outside JS)';
  for (let id: number | undefined = node.id; id !== undefined; id = parentOf.get(id)) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) break;
    for (const [name, matches] of ACTIVITIES) if (matches(frame)) return name;
  }
  return 'other (event loop, timers, node internals)';
}

function top(map: Map<string, number>, total: number, limit: number): ProfileEntry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => ({ name, selfMs: Math.round(us / 100) / 10, percent: Math.round((us / total) * 1000) / 10 }));
}

/**
 * Summarises a V8 CPU profile by self time (time in the function itself, not its callees):
 * the question it answers is "which code is the CPU actually running".
 */
export function summarizeCpuProfile(file: string, limit = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  const byActivity = new Map<string, number>();
  let total = 0;
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const us = profile.timeDeltas[i] ?? 0;
    if (!node || us <= 0) continue;
    total += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = url === '' ? functionName || '(anonymous)' : `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const origin = originOf(url, functionName);
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + us);
    if (functionName === '(idle)') continue;
    busy += us;
    const activity = activityOf(node, byId, parentOf);
    byActivity.set(activity, (byActivity.get(activity) ?? 0) + us);
  }
  return {
    file,
    totalMs: Math.round(total / 1000),
    functions: top(byFunction, total, limit),
    origins: top(byOrigin, total, limit),
    activities: top(byActivity, busy, limit),
  };
}

/** The summary as indented text lines, for the console. */
export function formatProfileSummary(summary: ProfileSummary, limit = 15): string {
  const line = (e: ProfileEntry): string => `    ${e.percent.toFixed(1).padStart(5)}%  ${String(e.selfMs).padStart(8)} ms  ${e.name}`;
  return [
    `  ${summary.file} (${summary.totalMs} ms sampled)`,
    '   by activity (% of busy time, idle left out):',
    ...summary.activities.slice(0, limit).map(line),
    '   by origin (self time):',
    ...summary.origins.slice(0, limit).map(line),
    '   by function (self time):',
    ...summary.functions.slice(0, limit).map(line),
  ].join('\n');
}

// `node dist/bench/cpu-profile-summary.js file.cpuprofile…` summarises profiles by hand.
if (import.meta.url === `file://${process.argv[1]}`) {
  for (const file of process.argv.slice(2)) process.stdout.write(`${formatProfileSummary(summarizeCpuProfile(file, 30), 30)}\n`);
}
