import { existsSync, statSync } from 'node:fs';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { SaleSnapshot } from './backup-manifest.js';
import { serverAddress } from './engines/server-address.js';
import { postgresToolEnv } from './engines/tool-environment.js';
import { findPostgresTool } from './engines/tool-locator.js';
import { runTool, ToolFailedError } from './engines/tool-process.js';
import type { DatabaseBackend } from '../db/dialects/database-backend.js';
import { openDatabaseBackend, sqliteFileOf } from '../db/open-database.js';
import type { SeckillTables } from '../db/tables.js';

/**
 * Facts about a database that backups record and drills check, the same on SQLite,
 * MariaDB/MySQL and PostgreSQL: row counts, the per-sale snapshot, the flash-sale
 * invariants (DESIGN.md I1, I2 and the payment rules) and the engine's own integrity check.
 * Every count or check is one SQL statement, so it reads one consistent state even while
 * the service writes.
 */

/** The application's tables; kysely's migration tables are bookkeeping, not data. */
export const APPLICATION_TABLES = ['sales', 'orders', 'payments', 'rejected_orders'] as const;

/** One invariant as found in a database. */
export interface InvariantCheck {
  readonly name: string;
  readonly ok: boolean;
  /** What was checked, or which sales/orders break it (the first few). */
  readonly detail: string;
}

/** Every invariant check of {@link checkInvariants}; `ok` when all hold. */
export interface InvariantReport {
  readonly ok: boolean;
  readonly checks: readonly InvariantCheck[];
}

/** The verdict of the engine's own consistency check (`CHECK TABLE`, `pg_amcheck`, `PRAGMA integrity_check`). */
export interface EngineIntegrity {
  readonly ok: boolean;
  readonly detail: string;
  /** The check that ran; absent when none could. */
  readonly tool?: string;
}

/** How many offending ids a failed check names. */
const NAMED_OFFENDERS = 5;
/** Offending rows fetched per check: enough to say "5 of 100+". */
const OFFENDER_LIMIT = 100;
/** pg_amcheck reads every page; on a scratch restore that is minutes at most. */
const PG_AMCHECK_TIMEOUT_MS = 30 * 60_000;

/**
 * Rows per application table, read in one statement.
 *
 * @example
 * await countRows('sqlite:data/seckill.db'); // { sales: 2, orders: 1500, payments: 900, rejected_orders: 3 }
 */
export async function countRows(url: string): Promise<Record<string, number>> {
  return withBackend(url, async ({ db }) => {
    const counts = sql.join(
      APPLICATION_TABLES.map((table) => sql`(select count(*) from ${sql.table(table)}) as ${sql.ref(table)}`),
    );
    const { rows } = await sql<Record<string, unknown>>`select ${counts}`.execute(db);
    const row = rows[0] ?? {};
    return Object.fromEntries(APPLICATION_TABLES.map((table) => [table, Number(row[table])]));
  });
}

/** Every sale's stock, sold and live (created + paid) orders, by sale id. */
export async function snapshotSales(url: string): Promise<SaleSnapshot[]> {
  return withBackend(url, async ({ db }) => {
    const { rows } = await sql<{ id: unknown; stock: unknown; sold: unknown; live: unknown }>`
      select s.id, s.stock, s.sold,
        (select count(*) from orders o where o.sale_id = s.id and o.status in ('created', 'paid')) as live
      from sales s order by s.id`.execute(db);
    return rows.map((row) => ({
      saleId: Number(row.id),
      stock: Number(row.stock),
      sold: Number(row.sold),
      liveOrders: Number(row.live),
    }));
  });
}

/**
 * Whether the database holds no tables or views at all (kysely's migration tables count:
 * a migrated but empty database is not a restore target). A SQLite URL whose file is
 * missing or zero bytes long is empty, and is not created by asking.
 */
export async function isEmptyDatabase(url: string): Promise<boolean> {
  const file = sqliteFile(url);
  if (file !== undefined && (!existsSync(file) || statSync(file).size === 0)) return true;
  return withBackend(url, async ({ dialect, db }) => {
    const query =
      dialect === 'sqlite'
        ? sql<{ n: unknown }>`select count(*) as n from sqlite_master where type in ('table', 'view') and name not like 'sqlite_%'`
        : dialect === 'mysql'
          ? sql<{ n: unknown }>`select count(*) as n from information_schema.tables where table_schema = database()`
          : sql<{ n: unknown }>`
              select count(*) as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
                and n.nspname <> 'information_schema' and n.nspname not like 'pg\_%'`;
    const { rows } = await query.execute(db);
    return Number(rows[0]?.n) === 0;
  });
}

/**
 * Checks the flash-sale invariants on a database: live orders ≤ stock and sold = live
 * orders per sale, one order per (sale, user), exactly one payment per paid order, no
 * payment without a paid order, and no order both accepted and rejected. Reports every
 * check rather than stopping at the first failure.
 *
 * @example
 * const report = await checkInvariants(restoredUrl);
 * if (!report.ok) console.log(report.checks.filter((check) => !check.ok));
 */
export async function checkInvariants(url: string): Promise<InvariantReport> {
  return withBackend(url, async ({ db }) => {
    const checks = await Promise.all(INVARIANTS.map((invariant) => invariant(db)));
    return { ok: checks.every((check) => check.ok), checks };
  });
}

/**
 * Runs the engine's own consistency check: `CHECK TABLE` on every table (MariaDB/MySQL),
 * `pg_amcheck` on the database (PostgreSQL, when installed; it installs the `amcheck`
 * extension when missing, so point it at restored copies rather than the live primary),
 * `PRAGMA integrity_check` (SQLite).
 */
export async function engineIntegrity(url: string): Promise<EngineIntegrity> {
  return withBackend(url, async ({ dialect, db }) => {
    switch (dialect) {
      case 'sqlite':
        return sqliteIntegrity(db);
      case 'mysql':
        return mysqlIntegrity(db);
      case 'postgres':
        return postgresIntegrity(url);
    }
  });
}

type Db = Kysely<SeckillTables>;
type Invariant = (db: Db) => Promise<InvariantCheck>;

const INVARIANTS: readonly Invariant[] = [
  async (db) => {
    const { rows } = await sql<{ id: unknown; stock: unknown; live: unknown }>`
      select id, stock, live from (
        select s.id, s.stock,
          (select count(*) from orders o where o.sale_id = s.id and o.status in ('created', 'paid')) as live
        from sales s) per_sale
      where live > stock order by id limit ${OFFENDER_LIMIT}`.execute(db);
    return verdict('live orders ≤ stock (no oversell)', 'every sale', rows, (row) => `sale ${row.id}: ${row.live} live orders, stock ${row.stock}`);
  },
  async (db) => {
    const { rows } = await sql<{ id: unknown; sold: unknown; live: unknown }>`
      select id, sold, live from (
        select s.id, s.sold,
          (select count(*) from orders o where o.sale_id = s.id and o.status in ('created', 'paid')) as live
        from sales s) per_sale
      where live <> sold order by id limit ${OFFENDER_LIMIT}`.execute(db);
    return verdict('sold = live orders', 'every sale', rows, (row) => `sale ${row.id}: sold ${row.sold}, ${row.live} live orders`);
  },
  async (db) => {
    const { rows } = await sql<{ sale_id: unknown; user_id: unknown; n: unknown }>`
      select sale_id, user_id, count(*) as n from orders group by sale_id, user_id having count(*) > 1
      order by sale_id, user_id limit ${OFFENDER_LIMIT}`.execute(db);
    return verdict('one order per user per sale', 'every (sale, user)', rows, (row) => `sale ${row.sale_id}, user ${row.user_id}: ${row.n} orders`);
  },
  async (db) => {
    const { rows } = await sql<{ id: unknown; n: unknown }>`
      select id, n from (
        select o.id, (select count(*) from payments p where p.order_id = o.id) as n
        from orders o where o.status = 'paid') paid
      where n <> 1 order by id limit ${OFFENDER_LIMIT}`.execute(db);
    return verdict('every paid order has exactly one payment', 'every paid order', rows, (row) => `order ${row.id}: ${row.n} payments`);
  },
  async (db) => {
    const { rows } = await sql<{ order_id: unknown; status: unknown }>`
      select p.order_id, o.status from payments p left join orders o on o.id = p.order_id
      where o.id is null or o.status <> 'paid' order by p.order_id limit ${OFFENDER_LIMIT}`.execute(db);
    return verdict('no payment without a paid order', 'every payment', rows, (row) =>
      row.status === null ? `payment of order ${row.order_id}: no such order` : `payment of order ${row.order_id}: the order is ${row.status}`,
    );
  },
  async (db) => {
    const { rows } = await sql<{ id: unknown }>`
      select o.id from orders o join rejected_orders r on r.id = o.id order by o.id limit ${OFFENDER_LIMIT}`.execute(db);
    return verdict('no order both accepted and rejected', 'every order id', rows, (row) => `order ${row.id}`);
  },
];

function verdict<Row>(name: string, scope: string, offenders: readonly Row[], describe: (row: Row) => string): InvariantCheck {
  if (offenders.length === 0) return { name, ok: true, detail: `holds for ${scope}` };
  const named = offenders.slice(0, NAMED_OFFENDERS).map(describe).join('; ');
  const count = offenders.length >= OFFENDER_LIMIT ? `${OFFENDER_LIMIT} or more` : String(offenders.length);
  const more = offenders.length > NAMED_OFFENDERS ? ` (and more: ${count} in all)` : '';
  return { name, ok: false, detail: `broken: ${named}${more}` };
}

async function sqliteIntegrity(db: Db): Promise<EngineIntegrity> {
  const tool = 'PRAGMA integrity_check';
  const { rows } = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(db);
  const messages = rows.map((row) => row.integrity_check);
  const ok = messages.length === 1 && messages[0] === 'ok';
  return { ok, tool, detail: ok ? 'integrity_check: ok' : `integrity_check found: ${messages.slice(0, NAMED_OFFENDERS).join('; ')}` };
}

async function mysqlIntegrity(db: Db): Promise<EngineIntegrity> {
  const tool = 'CHECK TABLE';
  const { rows: tables } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = database() and table_type = 'BASE TABLE' order by table_name`.execute(db);
  if (tables.length === 0) return { ok: true, tool, detail: 'no tables to check' };
  const { rows } = await sql<{ Table: string; Msg_type: string; Msg_text: string }>`
    check table ${sql.join(tables.map((table) => sql.table(table.name)))}`.execute(db);
  const problems: string[] = [];
  for (const table of tables) {
    const messages = rows.filter((row) => row.Table.endsWith(`.${table.name}`));
    const fine = messages.some((row) => row.Msg_type === 'status' && row.Msg_text === 'OK') && !messages.some((row) => row.Msg_type === 'error');
    if (!fine) problems.push(`${table.name}: ${messages.map((row) => `${row.Msg_type} ${row.Msg_text}`).join(', ') || 'no answer'}`);
  }
  return problems.length === 0
    ? { ok: true, tool, detail: `${tables.length} tables OK` }
    : { ok: false, tool, detail: `CHECK TABLE found problems: ${problems.slice(0, NAMED_OFFENDERS).join('; ')}` };
}

async function postgresIntegrity(url: string): Promise<EngineIntegrity> {
  const command = findPostgresTool('pg_amcheck');
  if (command === undefined) {
    return { ok: true, detail: 'skipped: pg_amcheck is not installed (it comes with postgresql-client 14 or later)' };
  }
  const address = serverAddress(url, { port: 5432, user: 'postgres' });
  try {
    const { stdout: report } = await runTool({
      name: 'pg_amcheck',
      command,
      args: ['-h', address.host, '-p', String(address.port), '-U', address.user, '--no-password', '--install-missing', '--heapallindexed', address.database],
      env: postgresToolEnv(address.password),
      timeoutMs: PG_AMCHECK_TIMEOUT_MS,
    });
    return { ok: true, tool: 'pg_amcheck', detail: report.trim() === '' ? 'pg_amcheck: no corruption found' : report.trim() };
  } catch (error) {
    if (!(error instanceof ToolFailedError)) throw error;
    // Exit code 2 is pg_amcheck's "corruption found"; anything else is a failure to check.
    const what = error.exitCode === 2 ? 'pg_amcheck found corruption' : 'pg_amcheck could not check the database';
    return { ok: false, tool: 'pg_amcheck', detail: `${what}: ${error.message}` };
  }
}

async function withBackend<T>(url: string, work: (backend: DatabaseBackend) => Promise<T>): Promise<T> {
  const backend = openDatabaseBackend(url, { poolSize: 2 });
  try {
    return await work(backend);
  } finally {
    await backend.close();
  }
}

/** The file of a `sqlite:` URL, as `openDatabaseBackend` reads it; undefined for other schemes and `:memory:`. */
function sqliteFile(url: string): string | undefined {
  return /^sqlite:/i.test(url) ? sqliteFileOf(url) : undefined;
}
