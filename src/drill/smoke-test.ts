import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { startNode } from '../app/seckill-node.js';
import type { SaleSnapshot } from '../backup/backup-manifest.js';
import { loadConfig } from '../config/config.js';
import type { DrillCheck } from './drill-report.js';

const SHOWN = 5;
const IN_FLIGHT = 8;

/**
 * Starts the application against the restored database, as `seckill start` would (same
 * startup, migrations, stock rebuilt from the database), and asks `GET /api/sales/:id`
 * for every sale of the manifest: each must answer 200 with the manifest's stock and
 * `remaining = stock − live orders`.
 *
 * The node is private to the drill: loopback, a port the kernel picks, the in-process
 * stock store (no Redis: the live one must not see the scratch copy's sales), fresh
 * secrets, periodic reconciling off and expiry sweeps an hour apart. Its startup still
 * writes to the scratch copy (it marks ended orders released while rebuilding stock), so
 * it runs after every data check, and the copy is thrown away anyway.
 */
export async function smokeTestSales(databaseUrl: string, sales: readonly SaleSnapshot[], log: Logger): Promise<DrillCheck> {
  const started = performance.now();
  const dataDir = await mkdtemp(join(tmpdir(), 'seckill-drill-node-'));
  try {
    const config = loadConfig({
      overrides: {
        host: '127.0.0.1',
        port: 0,
        dataDir,
        databaseUrl,
        redisUrl: '',
        roles: ['api', 'writer'],
        workers: 1,
        durability: 'leader',
        adminToken: randomBytes(24).toString('base64url'),
        jwtSecret: randomBytes(32).toString('base64url'),
        reconcileIntervalMs: 0,
        expiryIntervalMs: 3_600_000,
        logLevel: 'warn',
      },
    });
    let node: Awaited<ReturnType<typeof startNode>>;
    try {
      node = await startNode(config, { log: log.child({ drill: 'smoke-test' }), consumer: 'drill-smoke-test' });
    } catch (err) {
      return { name: 'smoke-test', ok: false, detail: `the application did not start on the restored database: ${(err as Error).message}`, durationMs: performance.now() - started };
    }
    try {
      const problems: string[] = [];
      let next = 0;
      const askOne = async (): Promise<void> => {
        while (next < sales.length) {
          const sale = sales[next++];
          const problem = await askSale(node.url, sale).catch((err: Error) => `sale ${sale.saleId}: ${err.message}`);
          if (problem) problems.push(problem);
        }
      };
      await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, sales.length) }, askOne));
      const durationMs = performance.now() - started;
      if (problems.length === 0) {
        return { name: 'smoke-test', ok: true, detail: `the API started on the restored database and answered GET /api/sales/:id for every sale (${sales.length}) with the manifest's stock and remaining units`, durationMs };
      }
      return {
        name: 'smoke-test',
        ok: false,
        detail: `the API on the restored database answered wrongly for ${problems.length} of ${sales.length} sales: ${problems.slice(0, SHOWN).join('; ')}${problems.length > SHOWN ? `; and ${problems.length - SHOWN} more` : ''}`,
        durationMs,
      };
    } finally {
      await node.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** One sale's page; a text saying what is wrong, or undefined when it is right. */
async function askSale(baseUrl: string, sale: SaleSnapshot): Promise<string | undefined> {
  const response = await fetch(`${baseUrl}/api/sales/${sale.saleId}`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  if (response.status !== 200) return `sale ${sale.saleId} answered ${response.status} ${text.slice(0, 200)}`;
  const body = JSON.parse(text) as { stock?: unknown; remaining?: unknown };
  const remaining = sale.stock - sale.liveOrders;
  if (body.stock !== sale.stock || body.remaining !== remaining) {
    return `sale ${sale.saleId} shows stock ${String(body.stock)}, remaining ${String(body.remaining)} (manifest: stock ${sale.stock}, remaining ${remaining})`;
  }
  return undefined;
}
