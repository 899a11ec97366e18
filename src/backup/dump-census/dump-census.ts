import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { APPLICATION_TABLES, countRows, snapshotSales } from '../database-census.js';
import { findPostgresTool } from '../engines/tool-locator.js';
import type { EngineName } from '../backup-manifest.js';
import { ProcessFilter } from '../process-filter.js';
import { CensusTally } from './census-tally.js';
import type { DumpCensus } from './census-tally.js';
import { CopyBlockCensus } from './copy-block-census.js';
import { InsertStatementCensus } from './insert-statement-census.js';

/** Bytes looked at to tell the dump's format. */
const SNIFF_BYTES = 16;
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const PGDUMP_MAGIC = Buffer.from('PGDMP', 'latin1');

/** What a census of a dump needs to know. */
export interface DumpCensusOptions {
  readonly engine: EngineName;
  /** A folder for a SQLite dump's copy (as big as the database: not a small tmpfs). */
  readonly scratchDir: string;
}

/**
 * Counts rows and takes the sale snapshot from the dump itself, as it streams past, so the
 * manifest describes exactly the snapshot that was dumped even while the service sold
 * meanwhile (a second query on the live database would see a later state):
 *
 * - SQLite: the online-backup file is copied aside and counted with the same queries the
 *   drill uses on the restored database;
 * - PostgreSQL: a custom-format dump is turned into SQL by `pg_restore -f -` (no server
 *   involved) and its `COPY` blocks are counted; a plain dump is counted directly;
 * - MariaDB/MySQL logical dumps: the `INSERT` tuples are counted.
 *
 * Physical dumps (`mariabackup`'s xbstream) cannot be read without preparing them: `result`
 * resolves to undefined and the caller counts the live database instead, saying so. The
 * sink never fails the stream it reads; a census failure rejects `result` instead.
 */
export class DumpCensusSink extends Writable {
  readonly result: Promise<DumpCensus | undefined>;
  readonly #options: DumpCensusOptions;
  #resolve!: (census: DumpCensus | undefined) => void;
  #reject!: (error: Error) => void;
  #sniffed: Buffer[] = [];
  #sniffedBytes = 0;
  #downstream: Writable | undefined;
  #finishing: Promise<DumpCensus | undefined> | undefined;
  #failed = false;
  #settled = false;

  constructor(options: DumpCensusOptions) {
    super();
    this.#options = options;
    this.result = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The caller may only look at the result after the dump; never an unhandled rejection.
    this.result.catch(() => undefined);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#failed) return callback();
    if (this.#downstream === undefined && this.#finishing === undefined) {
      this.#sniffed.push(chunk);
      this.#sniffedBytes += chunk.length;
      if (this.#sniffedBytes < SNIFF_BYTES) return callback();
      const head = Buffer.concat(this.#sniffed);
      this.#sniffed = [];
      void this.#start(head)
        .then(() => this.#forward(head, callback))
        .catch((error: Error) => {
          this.#fail(error);
          callback();
        });
      return;
    }
    this.#forward(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    void (async () => {
      if (this.#failed) return;
      if (this.#downstream === undefined && this.#finishing === undefined) {
        const head = Buffer.concat(this.#sniffed);
        await this.#start(head);
        await new Promise<void>((resolve) => this.#forward(head, () => resolve()));
      }
      this.#downstream?.end();
      const census = await this.#finishing;
      this.#settled = true;
      this.#resolve(census);
    })()
      .catch((error: Error) => this.#fail(error))
      .finally(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Stopped before its end (the dump failed): the census of half a dump means nothing.
    this.#fail(error ?? new Error('the dump stopped before its end'));
    callback(error);
  }

  #forward(chunk: Buffer, callback: (error?: Error | null) => void): void {
    const downstream = this.#downstream;
    if (downstream === undefined || this.#failed || chunk.length === 0) return callback();
    downstream.write(chunk, (error) => {
      if (error) this.#fail(error);
      callback();
    });
  }

  #fail(error: Error): void {
    if (this.#failed || this.#settled) return;
    this.#failed = true;
    this.#downstream?.destroy();
    this.#reject(error);
  }

  async #start(head: Buffer): Promise<void> {
    const { engine } = this.#options;
    const tally = new CensusTally();
    if (head.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)) {
      const folder = await mkdtemp(join(this.#options.scratchDir, '.seckill-census-'));
      const file = createWriteStream(join(folder, 'dump.sqlite'));
      this.#downstream = file;
      this.#finishing = new Promise<void>((resolve, reject) => {
        file.once('finish', resolve);
        file.once('error', reject);
      })
        .then(async () => {
          const url = `sqlite:${join(folder, 'dump.sqlite')}`;
          return { rowCounts: await countRows(url), sales: await snapshotSales(url) };
        })
        .finally(() => rm(folder, { recursive: true, force: true }));
    } else if (engine === 'postgres' && head.subarray(0, PGDUMP_MAGIC.length).equals(PGDUMP_MAGIC)) {
      const pgRestore = findPostgresTool('pg_restore');
      if (pgRestore === undefined) throw new Error('pg_restore is not installed, so the dump cannot be counted; install postgresql-client');
      // No --dbname: pg_restore writes the SQL it would run to stdout and touches no server.
      const converter = new ProcessFilter(pgRestore, ['--data-only', '--file=-'], { label: 'pg_restore (counting the dump)' });
      this.#downstream = converter;
      this.#finishing = pipeline(converter, new CopyBlockCensus(tally)).then(() => onlyApplicationTables(tally.result()));
    } else if (engine === 'postgres' && isText(head)) {
      const census = new CopyBlockCensus(tally);
      this.#downstream = census;
      this.#finishing = finished(census).then(() => onlyApplicationTables(tally.result()));
    } else if (engine === 'mysql' && isText(head)) {
      const census = new InsertStatementCensus(tally);
      this.#downstream = census;
      this.#finishing = finished(census).then(() => onlyApplicationTables(tally.result()));
    } else {
      this.#finishing = Promise.resolve(undefined);
    }
    // Failures surface through `result`; keep them from being unhandled meanwhile.
    this.#finishing.catch((error: Error) => this.#fail(error));
  }
}

function finished(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('finish', resolve);
    stream.once('error', reject);
  });
}

/** A SQL dump starts with printable text (comments, SET statements). */
function isText(head: Buffer): boolean {
  return head.length > 0 && [...head].every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128);
}

/** The same tables the drill counts in the restored database (`countRows`), each present. */
function onlyApplicationTables(census: DumpCensus): DumpCensus {
  const rowCounts = Object.fromEntries(APPLICATION_TABLES.map((table) => [table, census.rowCounts[table] ?? 0]));
  return { rowCounts, sales: census.sales };
}

/** Row counts and sale snapshot of one dump. */
export type { DumpCensus } from './census-tally.js';
