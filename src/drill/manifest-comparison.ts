import type { SaleSnapshot } from '../backup/backup-manifest.js';
import type { DrillCheck } from './drill-report.js';

const SHOWN = 5;

/**
 * Compares each sale of the restored database with the manifest's snapshot of it, taken
 * when the backup was: same sales, and per sale the same stock, `sold` and live orders.
 * A difference means the restore lost or invented orders, however consistent the
 * restored database looks on its own.
 */
export function compareSaleSnapshots(expected: readonly SaleSnapshot[], restored: readonly SaleSnapshot[]): DrillCheck {
  const found = new Map(restored.map((s) => [s.saleId, s]));
  const problems: string[] = [];
  for (const want of expected) {
    const got = found.get(want.saleId);
    found.delete(want.saleId);
    if (!got) {
      problems.push(`sale ${want.saleId} is missing`);
      continue;
    }
    const diffs = (['stock', 'sold', 'liveOrders'] as const)
      .filter((field) => got[field] !== want[field])
      .map((field) => `${field} ${got[field]} (manifest ${want[field]})`);
    if (diffs.length > 0) problems.push(`sale ${want.saleId}: ${diffs.join(', ')}`);
  }
  for (const extra of found.keys()) problems.push(`sale ${extra} is not in the manifest`);
  if (problems.length === 0) {
    return { name: 'sale-snapshot', ok: true, detail: `${expected.length === 1 ? 'the sale matches' : `${expected.length} sales match`} the manifest (stock, sold, live orders)` };
  }
  return {
    name: 'sale-snapshot',
    ok: false,
    detail:
      `${problems.length} of ${expected.length} sales differ from the manifest: ${problems.slice(0, SHOWN).join('; ')}` +
      `${problems.length > SHOWN ? `; and ${problems.length - SHOWN} more` : ''}; the backup does not hold the orders it recorded`,
  };
}

/** Compares restored row counts per table with the manifest's. */
export function compareRowCounts(expected: Readonly<Record<string, number>>, restored: Readonly<Record<string, number>>): DrillCheck {
  const problems: string[] = [];
  for (const [table, count] of Object.entries(expected)) {
    const got = restored[table];
    if (got === undefined) problems.push(`table ${table} is missing (manifest ${count} rows)`);
    else if (got !== count) problems.push(`${table} has ${got} rows (manifest ${count})`);
  }
  const summary = Object.entries(expected).map(([table, count]) => `${table} ${count}`).join(', ');
  return problems.length === 0
    ? { name: 'row-counts', ok: true, detail: `every table matches the manifest: ${summary}` }
    : { name: 'row-counts', ok: false, detail: `${problems.join('; ')}; the restored database is not the one that was backed up` };
}
