import { mintUserToken } from '../http/auth.js';
import { callAdmin } from './admin-client.js';
import { commandConfigWithSecrets, serverUrl } from './cli-config.js';
import type { GlobalOptions } from './cli-config.js';

export interface DemoOptions {
  readonly buyers: string;
  readonly stock: string;
  readonly concurrency: string;
  readonly url?: string;
  readonly json?: boolean;
}

/** What the crowd saw and what the server ended up with. */
export interface DemoSummary {
  readonly saleId: number;
  readonly buyers: number;
  readonly stock: number;
  /** Live orders in the database after the writer drained. */
  readonly sold: number;
  /** Purchases answered with a non-2xx status, by status. */
  readonly rejected: Record<string, number>;
  /** Live orders beyond stock: must be 0. */
  readonly oversold: number;
  /** Users who were given more than one order id: must be 0. */
  readonly duplicates: number;
  /** Order ids answered 2xx that the server does not know (or not as live): must be 0. */
  readonly lost: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * `seckill demo`: a crowd of distinct buyers rushes a fresh sale on a running server, then
 * the result is checked from the outside: nothing oversold, nobody twice, nothing lost.
 */
export async function demoCommand(global: GlobalOptions, options: DemoOptions): Promise<number> {
  const { config } = commandConfigWithSecrets(global);
  const base = serverUrl(config, options.url);
  const buyers = Number(options.buyers);
  const stock = Number(options.stock);
  const concurrency = Number(options.concurrency);
  for (const [name, value] of Object.entries({ buyers, stock, concurrency })) {
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number`);
  }
  const say = (line: string): void => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };

  const now = Date.now();
  const sale = await callAdmin<{ id: number }>(base, config.adminToken, 'POST', '/api/admin/sales', {
    name: `demo ${new Date(now).toISOString()}`,
    stock,
    startsAt: new Date(now - 1000).toISOString(),
    endsAt: new Date(now + 3_600_000).toISOString(),
  });
  say(`sale ${sale.id}: ${stock} units; ${buyers} buyers, ${concurrency} at a time, against ${base}`);

  const tokens = Array.from({ length: buyers }, (_, i) => mintUserToken(config.jwtSecret, `demo-${sale.id}-${i}`, 3600));
  const granted = new Map<number, Set<string>>();
  const rejected: Record<string, number> = {};
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < buyers) {
      const i = next++;
      const t0 = performance.now();
      try {
        const response = await fetch(`${base}/api/sales/${sale.id}/purchase`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens[i]}` },
        });
        const body = (await response.json()) as { orderId?: string; code?: string };
        if (response.status === 200 || response.status === 202) {
          const ids = granted.get(i) ?? new Set<string>();
          ids.add(body.orderId!);
          granted.set(i, ids);
        } else {
          const key = `${response.status} ${body.code ?? ''}`.trim();
          rejected[key] = (rejected[key] ?? 0) + 1;
        }
      } catch (err) {
        const key = `network ${(err as Error).message}`;
        rejected[key] = (rejected[key] ?? 0) + 1;
      }
      latencies.push(performance.now() - t0);
      if ((i + 1) % Math.max(1, Math.floor(buyers / 10)) === 0) say(`  ${i + 1}/${buyers} requests sent`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;

  say('waiting for the order writer to record every accepted order…');
  type Stats = { created: number; paid: number; pending: number | null };
  let stats = await callAdmin<Stats>(base, config.adminToken, 'GET', `/api/admin/sales/${sale.id}/stats`);
  for (let waited = 0; (stats.pending ?? 0) > 0 && waited < 30_000; waited += 200) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    stats = await callAdmin<Stats>(base, config.adminToken, 'GET', `/api/admin/sales/${sale.id}/stats`);
  }

  let lost = 0;
  for (const ids of granted.values()) {
    for (const orderId of ids) {
      const order = await callAdmin<{ status: string }>(base, config.adminToken, 'GET', `/api/orders/${orderId}`).catch(() => undefined);
      if (!order || order.status === 'pending' || order.status === 'cancelled') lost++;
    }
  }
  const sold = stats.created + stats.paid;
  latencies.sort((a, b) => a - b);
  const summary: DemoSummary = {
    saleId: sale.id,
    buyers,
    stock,
    sold,
    rejected,
    oversold: Math.max(0, sold - stock),
    duplicates: [...granted.values()].filter((ids) => ids.size > 1).length,
    lost,
    seconds: Number(seconds.toFixed(3)),
    requestsPerSecond: Math.round(buyers / seconds),
    latencyMs: {
      p50: Number(percentile(latencies, 50).toFixed(2)),
      p99: Number(percentile(latencies, 99).toFixed(2)),
      max: Number((latencies.at(-1) ?? 0).toFixed(2)),
    },
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    say('');
    say(`sold        ${sold} of ${stock}`);
    say(`rejected    ${Object.entries(rejected).map(([k, v]) => `${v} × ${k}`).join(', ') || 'none'}`);
    say(`oversold    ${summary.oversold}`);
    say(`duplicates  ${summary.duplicates}`);
    say(`lost        ${summary.lost}`);
    say(`throughput  ${summary.requestsPerSecond} requests/s (${summary.seconds} s)`);
    say(`latency     p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms, max ${summary.latencyMs.max} ms`);
  }
  return summary.oversold === 0 && summary.duplicates === 0 && summary.lost === 0 ? 0 : 1;
}
