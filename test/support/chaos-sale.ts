import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createPool } from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import pg from 'pg';
import type { AppClient } from './app-client.js';

/** One HTTP attempt of a purchase, as the buyer saw it. */
export interface Attempt {
  readonly user: string;
  /** ms since the sale started. */
  readonly startedAt: number;
  readonly endedAt: number;
  /** HTTP status, or `network` when no answer came (refused, reset, timeout). */
  readonly status: number | 'network';
  readonly orderId?: string;
  readonly code?: string;
}

/** Whether a buyer would retry this answer: no answer at all, or a server error. */
export function isFailure(status: number | 'network'): boolean {
  return status === 'network' || status >= 500;
}

/** Options for {@link runSale}. */
export interface SaleOptions {
  readonly client: AppClient;
  readonly saleId: number;
  readonly buyers: number;
  /** Most purchases in flight at once. */
  readonly concurrency: number;
  /** Most purchases started per second, so the sale lasts long enough for the fault. */
  readonly ratePerSecond: number;
  /** Attempts per buyer (the first one included) before the buyer gives up. */
  readonly maxAttempts?: number;
  /** Pause before a retry, as a polite client does. */
  readonly retryDelayMs?: number;
  /** Runs the fault once this many buyers have been answered; awaited before runSale resolves. */
  readonly fault?: { readonly afterAnswers: number; readonly inject: () => Promise<void> };
}

/** What happened during the sale, from the buyers' side. */
export interface SaleOutcome {
  readonly attempts: readonly Attempt[];
  /** Last answer per buyer (after retries). */
  readonly finalByUser: ReadonlyMap<string, Attempt>;
  /** Every distinct order id each buyer was given in a 2xx answer. */
  readonly orderIdsByUser: ReadonlyMap<string, ReadonlySet<string>>;
  /** ms from the start of the sale to the fault, and how long injecting it took. */
  readonly faultAt?: number;
  readonly faultTookMs?: number;
  readonly durationMs: number;
}

/**
 * Sells to `buyers` distinct users through the balancer, paced and bounded, each buyer
 * retrying a network error or 5xx like a real client (same user, bounded attempts), and
 * injects the fault mid-sale.
 */
export async function runSale(options: SaleOptions): Promise<SaleOutcome> {
  const { client, saleId } = options;
  const maxAttempts = options.maxAttempts ?? 20;
  const retryDelayMs = options.retryDelayMs ?? 100;
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const attempts: Attempt[] = [];
  const finalByUser = new Map<string, Attempt>();
  const orderIdsByUser = new Map<string, Set<string>>();
  let answered = 0;
  let faultAt: number | undefined;
  let faultTookMs: number | undefined;
  let faultRun: Promise<void> | undefined;
  const intervalMs = 1000 / options.ratePerSecond;
  let next = 0;

  const buy = async (user: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const startedAt = now();
      let record: Attempt;
      try {
        const answer = await client.purchase(saleId, user);
        record = { user, startedAt, endedAt: now(), status: answer.status, orderId: answer.body?.orderId, code: answer.body?.code };
      } catch {
        record = { user, startedAt, endedAt: now(), status: 'network' };
      }
      attempts.push(record);
      if (record.orderId && typeof record.status === 'number' && record.status >= 200 && record.status < 300) {
        const ids = orderIdsByUser.get(user) ?? new Set<string>();
        ids.add(record.orderId);
        orderIdsByUser.set(user, ids);
      }
      if (!isFailure(record.status) || attempt >= maxAttempts) {
        finalByUser.set(user, record);
        return;
      }
      await sleep(retryDelayMs);
    }
  };

  const worker = async (): Promise<void> => {
    while (next < options.buyers) {
      const index = next++;
      // Pacing: buyer i starts no earlier than i / rate seconds into the sale.
      const due = index * intervalMs - now();
      if (due > 0) await sleep(due);
      await buy(`buyer-${saleId}-${index}`);
      answered++;
      if (options.fault && faultRun === undefined && answered >= options.fault.afterAnswers) {
        faultAt = now();
        faultRun = options.fault.inject().then(() => {
          faultTookMs = now() - (faultAt ?? 0);
        });
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  await faultRun;
  return { attempts, finalByUser, orderIdsByUser, faultAt, faultTookMs, durationMs: now() };
}

/**
 * The longest stretch of failed purchases: failed attempts whose [start, end] intervals
 * overlap or lie within `gapMs` of each other form one window; 0 when none failed.
 */
export function longestFailureWindowMs(attempts: readonly Attempt[], gapMs = 250): number {
  const failed = attempts.filter((a) => isFailure(a.status)).sort((a, b) => a.startedAt - b.startedAt);
  let longest = 0;
  let start = Number.NaN;
  let end = Number.NaN;
  for (const a of failed) {
    if (Number.isNaN(start) || a.startedAt > end + gapMs) {
      start = a.startedAt;
      end = a.endedAt;
    } else {
      end = Math.max(end, a.endedAt);
    }
    longest = Math.max(longest, end - start);
  }
  return Math.round(longest);
}

/** The invariants of DESIGN.md checked from the outside, plus what the buyers saw. */
export interface ChaosResult {
  readonly scenario: string;
  readonly buyers: number;
  readonly stock: number;
  readonly requestsSent: number;
  /** Attempts by HTTP status (`network` = no answer). */
  readonly answersByStatus: Record<string, number>;
  /** Attempts answered with a network error or 5xx (each one was retried). */
  readonly failedAnswers: number;
  /** Buyers whose last attempt still failed. */
  readonly gaveUp: number;
  readonly liveOrders: number;
  readonly oversold: number;
  readonly duplicates: number;
  readonly lost: number;
  readonly stranded: number;
  /** The longest window of failed purchases: the measured RTO. */
  readonly rtoMs: number;
  readonly faultAtMs?: number;
  /** How long injecting the fault took (until HAProxy saw the result). */
  readonly faultTookMs?: number;
  readonly durationMs: number;
  /** HAProxy's own view: connection retries and redispatches it did for the buyers. */
  readonly balancer?: { readonly retries: number; readonly redispatches: number };
  /** Timings of the fault worth reading next to the RTO, e.g. how soon a node was marked down. */
  readonly notes?: string;
}

/** What the database holds for one sale, as {@link checkSale} compares it with the buyers' answers. */
interface PersistedSale {
  /** Orders not cancelled or expired. */
  readonly live: number;
  /** Users with more than one order. */
  readonly duplicateUsers: number;
  /** Every order id of the sale. */
  readonly persisted: Set<string>;
  /** The sale's `sold` counter. */
  readonly sold: number;
}

const PERSISTED_SALE_SQL = {
  live: "SELECT COUNT(*) AS n FROM orders WHERE sale_id = ? AND status IN ('created', 'paid')",
  duplicates: 'SELECT COUNT(*) AS n FROM (SELECT user_id FROM orders WHERE sale_id = ? GROUP BY user_id HAVING COUNT(*) > 1) d',
  ids: 'SELECT id FROM orders WHERE sale_id = ?',
  sold: 'SELECT sold FROM sales WHERE id = ?',
} as const;

/** Reads a sale's orders straight from MariaDB/MySQL (`mysql:`, `mariadb:`) or PostgreSQL (`postgres:`, `postgresql:`). */
async function readPersistedSale(databaseUrl: string, saleId: number): Promise<PersistedSale> {
  let query: (sql: string) => Promise<Record<string, unknown>[]>;
  let close: () => Promise<void>;
  if (/^postgres(ql)?:/.test(databaseUrl)) {
    const pgClient = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
    pgClient.on('error', () => undefined);
    await pgClient.connect();
    // The one parameter of each statement is the sale id; PostgreSQL numbers its placeholders.
    query = async (sql) => (await pgClient.query(sql.replace('?', '$1'), [saleId])).rows as Record<string, unknown>[];
    close = () => pgClient.end();
  } else {
    const pool = createPool({ uri: databaseUrl.replace(/^mariadb:/, 'mysql:'), connectionLimit: 1 });
    query = async (sql) => (await pool.query<RowDataPacket[]>(sql, [saleId]))[0];
    close = () => pool.end();
  }
  try {
    const liveRows = await query(PERSISTED_SALE_SQL.live);
    const dupRows = await query(PERSISTED_SALE_SQL.duplicates);
    const idRows = await query(PERSISTED_SALE_SQL.ids);
    const saleRows = await query(PERSISTED_SALE_SQL.sold);
    return {
      live: Number(liveRows[0].n),
      duplicateUsers: Number(dupRows[0].n),
      persisted: new Set(idRows.map((r) => String(r.id))),
      sold: Number(saleRows[0].sold),
    };
  } finally {
    await close();
  }
}

/**
 * Waits until the writers have drained the sale, then compares the buyers' answers with
 * the database and the sale's stats: oversold (live orders beyond stock), duplicates (a
 * user with two orders, or given two order ids), lost (an order id answered 2xx that is
 * not in the database) and stranded (remaining ≠ stock − live orders). `databaseUrl` may be
 * MariaDB/MySQL or PostgreSQL.
 */
export async function checkSale(
  scenario: string,
  client: AppClient,
  databaseUrl: string,
  saleId: number,
  stock: number,
  buyers: number,
  outcome: SaleOutcome,
  extra: Pick<ChaosResult, 'balancer' | 'notes'> = {},
): Promise<ChaosResult> {
  await client.drained(saleId, 30_000);
  const { live, duplicateUsers, persisted, sold } = await readPersistedSale(databaseUrl, saleId);
  const answered = new Set<string>();
  let givenTwoIds = 0;
  for (const ids of outcome.orderIdsByUser.values()) {
    if (ids.size > 1) givenTwoIds++;
    for (const id of ids) answered.add(id);
  }
  const lost = [...answered].filter((id) => !persisted.has(id)).length;
  const stats = await client.stats(saleId);
  if (stats.status !== 200) throw new Error(`stats answered ${stats.status} ${JSON.stringify(stats.body)}`);
  const remaining = stats.body.remaining ?? Number.NaN;
  const answersByStatus: Record<string, number> = {};
  for (const a of outcome.attempts) answersByStatus[String(a.status)] = (answersByStatus[String(a.status)] ?? 0) + 1;
  return {
    scenario,
    buyers,
    stock,
    requestsSent: outcome.attempts.length,
    answersByStatus,
    failedAnswers: outcome.attempts.filter((a) => isFailure(a.status)).length,
    gaveUp: [...outcome.finalByUser.values()].filter((a) => isFailure(a.status)).length,
    liveOrders: live,
    oversold: Math.max(0, live - stock, sold - stock),
    duplicates: duplicateUsers + givenTwoIds,
    lost,
    stranded: Math.abs(remaining - (stock - live)),
    rtoMs: longestFailureWindowMs(outcome.attempts),
    faultAtMs: outcome.faultAt === undefined ? undefined : Math.round(outcome.faultAt),
    faultTookMs: outcome.faultTookMs === undefined ? undefined : Math.round(outcome.faultTookMs),
    durationMs: Math.round(outcome.durationMs),
    ...extra,
  };
}

/** The results as a Markdown table, one row per scenario. */
export function formatResults(results: readonly ChaosResult[]): string {
  const header = ['scenario', 'buyers', 'stock', 'requests sent', 'answers by status', 'failed answers', 'gave up', 'live orders', 'oversold', 'duplicates', 'lost', 'stranded', 'RTO (failed window)', 'fault at / took', 'sale took', 'HAProxy retries / redispatches', 'notes'];
  const rows = results.map((r) => [
    r.scenario,
    String(r.buyers),
    String(r.stock),
    String(r.requestsSent),
    Object.entries(r.answersByStatus).sort().map(([s, n]) => `${s}: ${n}`).join(', '),
    String(r.failedAnswers),
    String(r.gaveUp),
    String(r.liveOrders),
    String(r.oversold),
    String(r.duplicates),
    String(r.lost),
    String(r.stranded),
    `${r.rtoMs} ms`,
    r.faultAtMs === undefined ? '-' : `${r.faultAtMs} ms / ${r.faultTookMs ?? '?'} ms`,
    `${r.durationMs} ms`,
    r.balancer ? `${r.balancer.retries} / ${r.balancer.redispatches}` : '-',
    r.notes ?? '',
  ]);
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/** Where the suite writes its results table (generated, never edited by hand). */
export const CHAOS_RESULTS_DOC = fileURLToPath(new URL('../../../docs/chaos-results.md', import.meta.url));

/**
 * Whether this is the full chaos run (`npm run chaos`, which sets CHAOS_FULL=1) rather
 * than the short version inside `npm test`: scenarios size their sale and fault from it.
 */
export const CHAOS_FULL = process.env.CHAOS_FULL === '1';

/**
 * Writes one tier's results (e.g. `api-nodes`, `redis`, `postgres`, `mariadb`) into
 * docs/chaos-results.md, replacing that tier's previous section and keeping the others,
 * so the page always shows the latest run of every tier.
 */
export function recordChaosResults(tier: string, title: string, results: readonly ChaosResult[]): void {
  if (results.length === 0) return;
  const begin = `<!-- chaos:${tier} -->`;
  const end = `<!-- /chaos:${tier} -->`;
  const section = [
    begin,
    `## ${title}`,
    '',
    `Run ${new Date().toISOString()} (${CHAOS_FULL ? 'full: npm run chaos' : 'short version inside npm test'}), on ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}.`,
    '',
    formatResults(results),
    end,
  ].join('\n');
  let doc: string;
  try {
    doc = readFileSync(CHAOS_RESULTS_DOC, 'utf8');
  } catch {
    doc = [
      '# Chaos suite results',
      '',
      'Generated by the chaos suite (`npm run chaos`, and its short version in `npm test`);',
      'each tier rewrites its own section on every run. Do not edit by hand. What the',
      'columns mean and how each fault is injected: docs/failover.md.',
      '',
    ].join('\n');
  }
  const at = doc.indexOf(begin);
  const stop = doc.indexOf(end);
  doc = at >= 0 && stop > at ? doc.slice(0, at) + section + doc.slice(stop + end.length) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(CHAOS_RESULTS_DOC, doc);
}
