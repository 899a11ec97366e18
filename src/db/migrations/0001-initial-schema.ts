import { sql } from 'kysely';
import type { CreateTableBuilder, Kysely, Migration } from 'kysely';
import type { SchemaOptions } from './schema-options.js';

/**
 * Sales, orders, payments and rejected orders. Every time is a BIGINT of milliseconds since
 * the epoch, so the three databases store and return the same numbers.
 */
export function initialSchema(options: SchemaOptions): Migration {
  const { dialect, tableOptions } = options;
  const finish = <T extends string, C extends string>(table: CreateTableBuilder<T, C>): CreateTableBuilder<T, C> =>
    tableOptions === undefined ? table : table.modifyEnd(tableOptions);

  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await finish(
        db.schema
          .createTable('sales')
          // SQLite wants exactly `integer primary key autoincrement`; PostgreSQL spells it serial.
          .addColumn('id', dialect === 'postgres' ? 'serial' : 'integer', (col) =>
            dialect === 'postgres' ? col.primaryKey() : col.primaryKey().autoIncrement(),
          )
          .addColumn('name', 'varchar(200)', (col) => col.notNull())
          .addColumn('stock', 'integer', (col) => col.notNull())
          .addColumn('sold', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('starts_at', 'bigint', (col) => col.notNull())
          .addColumn('ends_at', 'bigint', (col) => col.notNull())
          .addColumn('payment_window_seconds', 'integer', (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          // I1 held by the schema itself: even a faulty query cannot oversell.
          .addCheckConstraint('sales_sold_within_stock', sql`sold >= 0 and sold <= stock`),
      ).execute();

      await finish(
        db.schema
          .createTable('orders')
          .addColumn('id', 'varchar(64)', (col) => col.primaryKey())
          .addColumn('sale_id', 'integer', (col) => col.notNull())
          .addColumn('user_id', 'varchar(128)', (col) => col.notNull())
          .addColumn('status', 'varchar(16)', (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .addColumn('expires_at', 'bigint', (col) => col.notNull())
          .addColumn('paid_at', 'bigint')
          .addColumn('cancelled_at', 'bigint')
          .addColumn('released_at', 'bigint')
          .addColumn('reason', 'varchar(32)')
          // Table-level, because MySQL ignores a REFERENCES written on the column.
          .addForeignKeyConstraint('orders_sale_fk', ['sale_id'], 'sales', ['id'])
          // I2: one order per user per sale.
          .addUniqueConstraint('orders_sale_user_unique', ['sale_id', 'user_id'])
          .addCheckConstraint('orders_status_known', sql`status in ('created', 'paid', 'expired', 'cancelled')`),
      ).execute();
      // One index for both lifecycle scans, since every index slows the order writer's insert:
      // expiry reads (created, null, expires_at <= now), as a created order is never
      // released, and the release loop reads (expired | cancelled, null).
      await db.schema
        .createIndex('orders_lifecycle_idx')
        .on('orders')
        .columns(['status', 'released_at', 'expires_at'])
        .execute();

      await finish(
        db.schema
          .createTable('payments')
          .addColumn('order_id', 'varchar(64)', (col) => col.primaryKey())
          .addColumn('amount_cents', 'bigint')
          .addColumn('reference', 'varchar(128)')
          .addColumn('paid_at', 'bigint', (col) => col.notNull())
          .addForeignKeyConstraint('payments_order_fk', ['order_id'], 'orders', ['id']),
      ).execute();

      await finish(
        db.schema
          .createTable('rejected_orders')
          .addColumn('id', 'varchar(64)', (col) => col.primaryKey())
          .addColumn('sale_id', 'integer', (col) => col.notNull())
          .addColumn('user_id', 'varchar(128)', (col) => col.notNull())
          .addColumn('reason', 'varchar(32)', (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .addColumn('released_at', 'bigint')
          .addForeignKeyConstraint('rejected_orders_sale_fk', ['sale_id'], 'sales', ['id'])
          .addCheckConstraint('rejected_orders_reason_known', sql`reason in ('sold_out', 'duplicate_user')`),
      ).execute();
      await db.schema.createIndex('rejected_orders_sale_idx').on('rejected_orders').column('sale_id').execute();
      await db.schema.createIndex('rejected_orders_released_idx').on('rejected_orders').column('released_at').execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const table of ['rejected_orders', 'payments', 'orders', 'sales']) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
