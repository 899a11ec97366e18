import { mintUserToken } from '../http/auth.js';
import type { ReconcileReport } from '../orders/reconciler.js';
import { callAdmin } from './admin-client.js';
import { commandConfig, commandConfigWithSecrets, serverUrl } from './cli-config.js';
import type { GlobalOptions } from './cli-config.js';

/** `seckill migrate`: brings the configured database's schema up to date. */
export async function migrateCommand(global: GlobalOptions): Promise<number> {
  const config = commandConfig(global);
  // The database drivers are the heaviest modules here; the other commands never need them.
  const { openDatabase } = await import('../db/open-database.js');
  const db = await openDatabase(config.databaseUrl);
  try {
    const outcome = await db.migrate();
    for (const name of outcome.applied) process.stdout.write(`applied ${name}\n`);
    if (outcome.error) {
      process.stderr.write(`migration failed: ${outcome.error.message}\n`);
      return 1;
    }
    process.stdout.write(outcome.applied.length === 0 ? 'schema already up to date\n' : `schema up to date (${outcome.applied.length} applied)\n`);
    return 0;
  } finally {
    await db.close();
  }
}

export interface SaleCreateOptions {
  readonly name: string;
  readonly stock: string;
  readonly startsAt?: string;
  readonly endsAt?: string;
  readonly durationMinutes?: string;
  readonly paymentWindow?: string;
  readonly url?: string;
  readonly json?: boolean;
}

/** `seckill sale create`: creates a sale through the running server, which warms its stock. */
export async function saleCreateCommand(global: GlobalOptions, options: SaleCreateOptions): Promise<number> {
  const { config } = commandConfigWithSecrets(global);
  const startsAt = options.startsAt ?? new Date().toISOString();
  const endsAt = options.endsAt ?? new Date(Date.parse(startsAt) + Number(options.durationMinutes ?? 60) * 60_000).toISOString();
  const sale = await callAdmin<Record<string, unknown>>(serverUrl(config, options.url), config.adminToken, 'POST', '/api/admin/sales', {
    name: options.name,
    stock: Number(options.stock),
    startsAt,
    endsAt,
    ...(options.paymentWindow ? { paymentWindowSeconds: Number(options.paymentWindow) } : {}),
  });
  process.stdout.write(options.json ? `${JSON.stringify(sale)}\n` : `created sale ${sale.id}: ${sale.name}, ${sale.stock} units, ${sale.startsAt} – ${sale.endsAt}\n`);
  return 0;
}

/** `seckill sale list`: the sales, newest first. */
export async function saleListCommand(global: GlobalOptions, options: { url?: string; json?: boolean }): Promise<number> {
  const { config } = commandConfigWithSecrets(global);
  const { sales } = await callAdmin<{ sales: Record<string, unknown>[] }>(serverUrl(config, options.url), config.adminToken, 'GET', '/api/admin/sales');
  if (options.json) {
    process.stdout.write(`${JSON.stringify(sales)}\n`);
    return 0;
  }
  process.stdout.write(`${'id'.padEnd(6)}${'sold/stock'.padEnd(20)}${'window'.padEnd(44)}name\n`);
  for (const s of sales) {
    process.stdout.write(`${String(s.id).padEnd(6)}${`${s.sold}/${s.stock}`.padEnd(20)}${`${s.startsAt} – ${s.endsAt}`.padEnd(44)}${s.name}\n`);
  }
  return 0;
}

/** `seckill token --user ID`: prints a user token signed with the configured secret. */
export function tokenCommand(global: GlobalOptions, options: { user: string; ttl: string }): number {
  const { config } = commandConfigWithSecrets(global);
  const ttl = Number(options.ttl);
  if (!Number.isSafeInteger(ttl) || ttl < 1) throw new Error(`--ttl must be a whole number of seconds, got ${options.ttl}`);
  process.stdout.write(`${mintUserToken(config.jwtSecret, options.user, ttl)}\n`);
  return 0;
}

/**
 * `seckill reconcile [--repair]`: compares each sale's stock state with the database through
 * the running server (which holds the stock store's connection, or the stock itself when it
 * is in-process); exits 1 when a sale is not ok.
 */
export async function reconcileCommand(global: GlobalOptions, options: { repair?: boolean; sale?: string; url?: string; json?: boolean }): Promise<number> {
  const { config } = commandConfigWithSecrets(global);
  const query = new URLSearchParams();
  if (options.repair) query.set('repair', 'true');
  if (options.sale) query.set('sale', options.sale);
  const report = await callAdmin<ReconcileReport>(serverUrl(config, options.url), config.adminToken, 'POST', `/api/admin/reconcile?${query}`);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(`${'sale'.padEnd(6)}${'health'.padEnd(9)}${'stock'.padStart(9)}${'persisted'.padStart(11)}${'pending'.padStart(9)}${'expected'.padStart(10)}${'remaining'.padStart(11)}  action\n`);
    for (const s of report.sales) {
      const action = s.error ? `error: ${s.error}` : s.repaired ? 'rebuilt' : s.health === 'ok' ? '-' : 'run with --repair';
      process.stdout.write(
        `${String(s.saleId).padEnd(6)}${s.health.padEnd(9)}${String(s.stock).padStart(9)}${String(s.persisted).padStart(11)}${String(s.pending).padStart(9)}${String(s.expected).padStart(10)}${String(s.remaining ?? 'missing').padStart(11)}  ${action}\n`,
      );
    }
    process.stdout.write(report.ok ? `all ${report.sales.length} sales ok\n` : 'some sales are not ok\n');
  }
  return report.ok ? 0 : 1;
}
