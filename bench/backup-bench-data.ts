/**
 * The data set of `npm run bench:backup`: a MariaDB database holding N orders (1,000,000 by
 * default) spread over a few sales, as the service would have left it after a busy day,
 * and valid for every check a drill makes.
 */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import { openDatabase } from '../src/db/index.js';

/** Options of {@link loadOrders}. */
export interface LoadOptions {
  /** Orders in all (rows of `orders`). */
  readonly orders: number;
  /** Sales they are spread over. */
  readonly sales: number;
  /** Progress lines. */
  readonly log: (line: string) => void;
}

/** One sale as loaded. */
export interface LoadedSale {
  readonly id: number;
  readonly stock: number;
  readonly sold: number;
  readonly orders: number;
}

/** What {@link loadOrders} put into the database. */
export interface LoadedData {
  readonly sales: readonly LoadedSale[];
  /** Rows per application table, counted after the load. */
  readonly rowCounts: Readonly<Record<string, number>>;
  /** Orders by status. */
  readonly statuses: Readonly<Record<string, number>>;
  /** Wall time of the load (schema, sales, rows), seconds. */
  readonly seconds: number;
  /** Bytes of data and indexes of the application tables (information_schema, InnoDB estimates). */
  readonly dataBytes: number;
}

/** Payment window of every sale (the service's default). */
const PAYMENT_WINDOW_SECONDS = 900;
/** Rows of each of the two digit tables: their cross join numbers at most DIGITS² orders per sale. */
const DIGITS = 1000;
/** Most orders one sale may get. */
export const MAX_ORDERS_PER_SALE = DIGITS * DIGITS;
/** Late buyers of the sold-out sale whose accepted orders the database refused (`rejected_orders`). */
const REJECTED = 1000;

/**
 * Creates the schema with the service's own migrations, the sales with its own
 * `createSale`, then fills `orders`, `payments` and `rejected_orders` with INSERT … SELECT
 * over generated numbers: the server writes 1,000,000 rows in seconds, where
 * `persistOrders` batches would take minutes through the client.
 *
 * The rows follow the service's rules, so a drill of a backup of them passes:
 * - order ids in the service's format (`<sale>-<time base36><tag><sequence hex>`), one
 *   order per (sale, user);
 * - per sale 60 % paid (each with exactly one payment), 8 % cancelled by the buyer, and the
 *   unpaid rest `expired` once their payment window has ended, `created` while it runs;
 *   ended orders are released (their unit went back to the stock store);
 * - `sold` = live (created + paid) orders ≤ stock; the first sale is sold out
 *   (stock = sold) and holds 1,000 `sold_out` rejections of late buyers.
 *
 * @param url - `mysql://…/<database>` of an empty database.
 */
export async function loadOrders(url: string, options: LoadOptions): Promise<LoadedData> {
  const started = performance.now();
  const { orders, sales: saleCount, log } = options;
  if (saleCount < 1 || orders < saleCount) throw new Error(`cannot spread ${orders} orders over ${saleCount} sales`);
  if (Math.ceil(orders / saleCount) > MAX_ORDERS_PER_SALE) {
    throw new Error(`at most ${MAX_ORDERS_PER_SALE.toLocaleString('en-US')} orders per sale: use more sales for ${orders.toLocaleString('en-US')} orders`);
  }
  const now = Date.now();
  const windowMs = PAYMENT_WINDOW_SECONDS * 1000;
  const perSale = Array.from({ length: saleCount }, (_, i) => Math.floor(orders / saleCount) + (i < orders % saleCount ? 1 : 0));
  // Orders 1 ms apart; the first 40 % of each sale's orders are past their payment window.
  const base = (n: number): number => now - windowMs - Math.round(0.4 * n);

  const db = await openDatabase(url, { poolSize: 1 });
  const saleIds: number[] = [];
  try {
    const migrated = await db.migrate();
    if (migrated.error) throw new Error(`migrating ${url} failed: ${migrated.error.message}`);
    for (const [i, n] of perSale.entries()) {
      const sale = await db.createSale({
        name: `bench sale ${i + 1}`,
        stock: n,
        startsAt: base(n) - 60_000,
        endsAt: now + 3_600_000,
        paymentWindowSeconds: PAYMENT_WINDOW_SECONDS,
        now: base(n) - 3_600_000,
      });
      saleIds.push(sale.id);
    }
  } finally {
    await db.close();
  }

  const connection = await connect(url);
  try {
    // Two tables, because MariaDB cannot open one temporary table twice in a query.
    const digits = Array.from({ length: DIGITS }, (_, i) => `(${i})`).join(',');
    for (const table of ['bench_hi', 'bench_lo']) {
      await connection.query(`CREATE TEMPORARY TABLE ${table} (n INT PRIMARY KEY) ENGINE=MEMORY`);
      await connection.query(`INSERT INTO ${table} VALUES ${digits}`);
    }
    // The process tag of newOrderId: random per "process", here per sale.
    for (const [i, saleId] of saleIds.entries()) {
      const n = perSale[i];
      const t0 = performance.now();
      await insertOrders(connection, { saleId, n, createdBase: base(n), windowMs, now, tag: randomBytes(4).toString('hex') });
      log(`sale ${saleId}: ${n.toLocaleString('en-US')} orders inserted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const t1 = performance.now();
    await connection.query(
      `INSERT INTO payments (order_id, amount_cents, reference, paid_at)
       SELECT id, 1999 + (CAST(SUBSTRING(user_id, 6) AS UNSIGNED) % 5) * 1000, CONCAT('psp-', LEFT(MD5(id), 16)), paid_at
       FROM orders WHERE status = 'paid'`,
    );
    log(`payments inserted in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    // sold = live orders, as the order writer's guarded update keeps it; the first sale sold out.
    await connection.query(
      `UPDATE sales s SET sold = (SELECT COUNT(*) FROM orders o WHERE o.sale_id = s.id AND o.status IN ('created', 'paid'))`,
    );
    await connection.query('UPDATE sales SET stock = sold WHERE id = ?', [saleIds[0]]);
    await insertRejected(connection, { saleId: saleIds[0], n: perSale[0], createdBase: base(perSale[0]), tag: randomBytes(4).toString('hex') });

    const [saleRows] = await connection.query('SELECT id, stock, sold FROM sales ORDER BY id');
    const [statusRows] = await connection.query('SELECT status, COUNT(*) AS n FROM orders GROUP BY status ORDER BY status');
    const [countRows] = await connection.query(
      `SELECT (SELECT COUNT(*) FROM sales) AS sales, (SELECT COUNT(*) FROM orders) AS orders,
              (SELECT COUNT(*) FROM payments) AS payments, (SELECT COUNT(*) FROM rejected_orders) AS rejected_orders`,
    );
    // information_schema's sizes are InnoDB statistics, stale right after a bulk load.
    await connection.query('ANALYZE TABLE sales, orders, payments, rejected_orders');
    const [sizeRows] = await connection.query(
      `SELECT COALESCE(SUM(data_length + index_length), 0) AS bytes FROM information_schema.tables
       WHERE table_schema = DATABASE() AND table_name IN ('sales', 'orders', 'payments', 'rejected_orders')`,
    );
    const counts = (countRows as Record<string, unknown>[])[0];
    return {
      sales: (saleRows as { id: number; stock: number; sold: number }[]).map((row, i) => ({ id: row.id, stock: row.stock, sold: row.sold, orders: perSale[i] })),
      rowCounts: Object.fromEntries(Object.entries(counts).map(([table, n]) => [table, Number(n)])),
      statuses: Object.fromEntries((statusRows as { status: string; n: unknown }[]).map((row) => [row.status, Number(row.n)])),
      seconds: (performance.now() - started) / 1000,
      dataBytes: Number((sizeRows as { bytes: unknown }[])[0].bytes),
    };
  } finally {
    await connection.end();
  }
}

/**
 * Lets InnoDB write the load's dirty pages out before anything is timed, so the first
 * measured dump does not compete with that background flushing. Waits at most `timeoutMs`.
 *
 * @returns dirty pages left when it stopped waiting.
 */
export async function settle(url: string, timeoutMs: number): Promise<number> {
  const connection = await connect(url);
  const dirty = async (): Promise<number> => {
    const [rows] = await connection.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'");
    return Number((rows as { Value: string }[])[0]?.Value ?? 0);
  };
  try {
    const [rows] = await connection.query(
      'SELECT @@GLOBAL.innodb_max_dirty_pages_pct AS pct, @@GLOBAL.innodb_io_capacity AS io, @@GLOBAL.innodb_io_capacity_max AS ioMax',
    );
    const previous = (rows as { pct: unknown; io: unknown; ioMax: unknown }[])[0];
    // At the default io_capacity (200 pages/s) the page cleaner takes minutes over a
    // million orders; the private server's disk is whatever /tmp is on, so let it go fast.
    await connection.query('SET GLOBAL innodb_io_capacity_max = 50000');
    await connection.query('SET GLOBAL innodb_io_capacity = 20000');
    await connection.query('SET GLOBAL innodb_max_dirty_pages_pct = 0');
    try {
      const deadline = performance.now() + timeoutMs;
      let left = await dirty();
      while (left > 100 && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        left = await dirty();
      }
      return left;
    } finally {
      await connection.query(`SET GLOBAL innodb_max_dirty_pages_pct = ${Number(previous.pct)}`);
      await connection.query(`SET GLOBAL innodb_io_capacity = ${Number(previous.io)}`);
      await connection.query(`SET GLOBAL innodb_io_capacity_max = ${Number(previous.ioMax)}`);
    }
  } finally {
    await connection.end();
  }
}

async function connect(url: string): Promise<Connection> {
  const parsed = new URL(url);
  return createConnection({
    host: parsed.hostname,
    port: Number(parsed.port),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: parsed.pathname.slice(1),
    connectTimeout: 10_000,
  });
}

/** `<sale>-<created_at base36, 9 wide><tag><seq hex, 8 wide>`, as newOrderId makes them. */
function orderIdSql(saleId: number, tag: string, createdAt: string, seq: string): string {
  return `CONCAT('${saleId}-', LPAD(LOWER(CONV(${createdAt}, 10, 36)), 9, '0'), '${tag}', LPAD(LOWER(HEX(${seq})), 8, '0'))`;
}

async function insertOrders(
  connection: Connection,
  o: { saleId: number; n: number; createdBase: number; windowMs: number; now: number; tag: string },
): Promise<void> {
  // Interleaved by sequence rather than in blocks, as a real sale's would be.
  const status = `CASE WHEN s.seq % 100 < 60 THEN 'paid' WHEN s.seq % 100 >= 92 THEN 'cancelled'
                       WHEN s.created_at + ${o.windowMs} <= ${o.now} THEN 'expired' ELSE 'created' END`;
  await connection.query(
    `INSERT INTO orders (id, sale_id, user_id, status, created_at, expires_at, paid_at, cancelled_at, released_at, reason)
     SELECT ${orderIdSql(o.saleId, o.tag, 't.created_at', 't.seq')}, ${o.saleId}, CONCAT('user-', LPAD(t.seq, 7, '0')),
            t.status, t.created_at, t.created_at + ${o.windowMs},
            CASE WHEN t.status = 'paid' THEN t.created_at + 2000 + t.seq % 60000 END,
            CASE WHEN t.status = 'cancelled' THEN t.created_at + 1000 + t.seq % 30000 END,
            CASE t.status WHEN 'cancelled' THEN t.created_at + 1020 + t.seq % 30000
                          WHEN 'expired' THEN t.created_at + ${o.windowMs} + 300 + t.seq % 700 END,
            NULL
     FROM (SELECT s.seq, s.created_at, ${status} AS status
           FROM (SELECT hi.n * ${DIGITS} + lo.n AS seq, ${o.createdBase} + hi.n * ${DIGITS} + lo.n AS created_at
                 FROM bench_hi hi CROSS JOIN bench_lo lo
                 WHERE hi.n * ${DIGITS} + lo.n < ${o.n}) s) t
     ORDER BY t.seq`,
  );
}

async function insertRejected(connection: Connection, o: { saleId: number; n: number; createdBase: number; tag: string }): Promise<void> {
  await connection.query(
    `INSERT INTO rejected_orders (id, sale_id, user_id, reason, created_at, released_at)
     SELECT ${orderIdSql(o.saleId, o.tag, 't.created_at', 't.seq')}, ${o.saleId}, CONCAT('late-user-', LPAD(t.seq, 7, '0')), 'sold_out', t.created_at, t.created_at + 100
     FROM (SELECT ${o.n} + lo.n AS seq, ${o.createdBase} + ${o.n} + lo.n AS created_at FROM bench_lo lo WHERE lo.n < ${REJECTED}) t`,
  );
}
