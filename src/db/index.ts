/**
 * The database part: what the rest of Seckill may import from `src/db`.
 */
export { openDatabase, openDatabaseBackend } from './open-database.js';
export type { DatabaseBackend } from './dialects/database-backend.js';
export type { SeckillTables } from './tables.js';
export type { OpenDatabaseOptions } from './open-database.js';
export { LIVE_STATUSES } from './seckill-database.js';
export type {
  AcceptedOrder,
  CancelOutcome,
  DatabaseDialect,
  MigrationOutcome,
  NewSale,
  Order,
  PayOutcome,
  PersistResult,
  RejectReason,
  Sale,
  SaleOrderCounts,
  SeckillDatabase,
  StoredOrderStatus,
  UnreleasedOrder,
} from './seckill-database.js';
