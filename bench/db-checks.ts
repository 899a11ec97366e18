import BetterSqlite3 from 'better-sqlite3';
import { createConnection } from 'mysql2/promise';

/** One sale as the database holds it, read straight from its tables (not through the API). */
export interface SaleRecord {
  readonly stock: number;
  /** `sales.sold`, the counter the guarded update keeps. */
  readonly sold: number;
  /** Orders that hold a unit: status created or paid. */
  readonly live: number;
  /** Every order row of the sale, whatever its status. */
  readonly persisted: number;
  /** Accepted orders the database refused (`rejected_orders`); each one is an acceptance not kept. */
  readonly rejected: number;
}

const QUERIES = {
  sale: 'SELECT stock, sold FROM sales WHERE id = ?',
  orders: "SELECT COUNT(*) AS persisted, COALESCE(SUM(CASE WHEN status IN ('created', 'paid') THEN 1 ELSE 0 END), 0) AS live FROM orders WHERE sale_id = ?",
  rejected: 'SELECT COUNT(*) AS rejected FROM rejected_orders WHERE sale_id = ?',
} as const;

/**
 * Reads a sale's counts directly from the database behind `databaseUrl` (`sqlite:<path>` or
 * `mysql://…`), on a connection of its own: the benchmark's invariant checks should not
 * trust the service they check.
 */
export async function readSale(databaseUrl: string, saleId: number): Promise<SaleRecord> {
  if (databaseUrl.startsWith('sqlite:')) {
    // Read-only: a second reader on a WAL database never blocks the server's writer.
    const db = new BetterSqlite3(databaseUrl.slice('sqlite:'.length), { readonly: true, fileMustExist: true });
    try {
      const sale = db.prepare(QUERIES.sale).get(saleId) as { stock: number; sold: number } | undefined;
      if (!sale) throw new Error(`sale ${saleId} is not in ${databaseUrl}`);
      const orders = db.prepare(QUERIES.orders).get(saleId) as { persisted: number; live: number };
      const rejected = db.prepare(QUERIES.rejected).get(saleId) as { rejected: number };
      return { stock: sale.stock, sold: sale.sold, live: Number(orders.live), persisted: Number(orders.persisted), rejected: Number(rejected.rejected) };
    } finally {
      db.close();
    }
  }
  const url = new URL(databaseUrl);
  const connection = await createConnection({
    host: url.hostname,
    port: Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.slice(1),
  });
  try {
    const [[sale]] = (await connection.query(QUERIES.sale, [saleId])) as unknown as [{ stock: number; sold: number }[]];
    if (!sale) throw new Error(`sale ${saleId} is not in the database`);
    const [[orders]] = (await connection.query(QUERIES.orders, [saleId])) as unknown as [{ persisted: number; live: number }[]];
    const [[rejected]] = (await connection.query(QUERIES.rejected, [saleId])) as unknown as [{ rejected: number }[]];
    return {
      stock: Number(sale.stock),
      sold: Number(sale.sold),
      live: Number(orders.live),
      persisted: Number(orders.persisted),
      rejected: Number(rejected.rejected),
    };
  } finally {
    await connection.end();
  }
}

/**
 * The ids of every order row of a sale (any status), straight from the database: the set
 * each accepted order id must be in once the writer has drained.
 */
export async function readOrderIds(databaseUrl: string, saleId: number): Promise<Set<string>> {
  const sql = 'SELECT id FROM orders WHERE sale_id = ?';
  if (databaseUrl.startsWith('sqlite:')) {
    const db = new BetterSqlite3(databaseUrl.slice('sqlite:'.length), { readonly: true, fileMustExist: true });
    try {
      return new Set((db.prepare(sql).pluck().all(saleId) as string[]).map(String));
    } finally {
      db.close();
    }
  }
  const url = new URL(databaseUrl);
  const connection = await createConnection({
    host: url.hostname,
    port: Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.slice(1),
  });
  try {
    const [rows] = (await connection.query(sql, [saleId])) as unknown as [{ id: string }[]];
    return new Set(rows.map((row) => String(row.id)));
  } finally {
    await connection.end();
  }
}

/** What the accepted order ids of a run came to, against the database. */
export interface AcceptanceCheck {
  /** Distinct order ids answered 2xx. */
  readonly accepted: number;
  /** Accepted ids the database does not hold after the writer drained (I3 says: 0). */
  readonly lost: number;
  /** Up to 5 of them, to look up. */
  readonly lostExamples: readonly string[];
  /**
   * Orders the database holds whose answer wrk never saw: requests in flight when wrk
   * stopped. Not a loss (the buyer's retry returns the same order), just unobserved.
   */
  readonly unobserved: number;
}

/** Compares accepted order ids with the sale's rows in the database. */
export async function checkAccepted(databaseUrl: string, saleId: number, acceptedIds: Iterable<string>): Promise<AcceptanceCheck> {
  const stored = await readOrderIds(databaseUrl, saleId);
  const accepted = new Set(acceptedIds);
  const lostIds = [...accepted].filter((id) => !stored.has(id));
  return {
    accepted: accepted.size,
    lost: lostIds.length,
    lostExamples: lostIds.slice(0, 5),
    unobserved: stored.size - (accepted.size - lostIds.length),
  };
}
