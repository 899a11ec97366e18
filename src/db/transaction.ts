import type { Transaction } from 'kysely';
import type { DatabaseBackend } from './dialects/database-backend.js';
import type { SeckillTables } from './tables.js';

/** A transaction on the Seckill schema. */
export type SeckillTransaction = Transaction<SeckillTables>;

/** Runs of a transaction the server aborted to break a deadlock before the error is passed on. */
const MAX_TRANSACTION_ATTEMPTS = 3;

/**
 * Runs `work` in one transaction, again from the start when the server aborted it to
 * break a deadlock; any other error (a lost connection too) is passed on, and the
 * transaction has then been rolled back whole. `work` must therefore build its result
 * from what it reads, never from state left by an earlier run.
 */
export async function inTransaction<T>(
  backend: DatabaseBackend,
  work: (trx: SeckillTransaction) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await backend.db.transaction().execute(work);
    } catch (error) {
      if (attempt >= MAX_TRANSACTION_ATTEMPTS || !backend.isRetryableConflict(error)) throw error;
    }
  }
}

/**
 * Locks the sale's row until the transaction ends and returns its stock and sold. Every
 * transaction that changes `sold` or inserts orders of a sale calls this first, so writers
 * of one sale take their locks in one order (sale, then orders) and queue instead of
 * deadlocking, and what a writer reads after it stays true until it commits. SQLite has
 * no row locks: its transactions begin IMMEDIATE and so hold the whole file's write lock.
 */
export async function lockSale(
  backend: DatabaseBackend,
  trx: SeckillTransaction,
  saleId: number,
): Promise<{ stock: number; sold: number }> {
  let query = trx.selectFrom('sales').select(['stock', 'sold']).where('id', '=', saleId);
  if (backend.rowLocks) query = query.forUpdate();
  const sale = await query.executeTakeFirst();
  if (sale === undefined) throw new Error(`sale ${saleId} does not exist; create it before writing its orders`);
  return { stock: Number(sale.stock), sold: Number(sale.sold) };
}
