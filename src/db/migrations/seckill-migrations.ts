import type { Migration, MigrationProvider } from 'kysely';
import { initialSchema } from './0001-initial-schema.js';
import type { SchemaOptions } from './schema-options.js';

/** Table kysely records applied migrations in; named for us so a backup shows whose it is. */
export const MIGRATION_TABLE = 'seckill_migration';
/** Table kysely locks so two processes never migrate at once. */
export const MIGRATION_LOCK_TABLE = 'seckill_migration_lock';

/**
 * Lists the migrations in code rather than reading the folder, because the program runs
 * from dist/ where only compiled files exist. Names sort in the order they must run; a new
 * migration gets the next number and an entry here, and an applied one is never edited.
 */
export class SeckillMigrationProvider implements MigrationProvider {
  readonly #options: SchemaOptions;

  constructor(options: SchemaOptions) {
    this.#options = Object.freeze({ ...options });
  }

  async getMigrations(): Promise<Record<string, Migration>> {
    return {
      '0001-initial-schema': initialSchema(this.#options),
    };
  }
}
