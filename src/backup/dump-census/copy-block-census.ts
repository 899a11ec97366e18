import { Writable } from 'node:stream';
import type { CensusTally } from './census-tally.js';

/** `COPY public.orders (id, sale_id, …) FROM stdin;` — schema optional, names maybe quoted. */
const COPY_HEADER = /^COPY\s+(?:(?:"[^"]+"|[^\s."]+)\.)?(?:"([^"]+)"|([^\s("]+))\s*\(([^)]*)\)\s+FROM\s+stdin;/;

const TAB = 9;
const NEWLINE = 10;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

interface CopyBlock {
  readonly table: string;
  /** For `sales`: id, stock, sold; for `orders`: sale_id, status (third −1). Absent for other tables. */
  readonly fields?: { readonly a: number; readonly b: number; readonly c: number };
}

/** `created`, `paid`… from their bytes, without making a string per row (millions of rows, four values). */
function statusAt(data: Buffer, from: number, to: number): string {
  const length = to - from;
  const first = data[from];
  if (length === 7 && first === 0x63) return 'created';
  if (length === 4 && first === 0x70) return 'paid';
  return from < to ? data.toString('latin1', from, to) : '';
}

/** A whole number in decimal digits in `data[from, to)`; NaN for anything else (`\N`, text). */
function integerAt(data: Buffer, from: number, to: number): number {
  if (from >= to) return Number.NaN;
  let i = from;
  const negative = data[i] === 0x2d;
  if (negative) i += 1;
  let value = 0;
  for (; i < to; i += 1) {
    const digit = data[i]! - 0x30;
    if (digit < 0 || digit > 9) return Number.NaN;
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

/**
 * Counts the rows of a PostgreSQL dump in SQL form (`pg_restore -f -` of a custom-format
 * dump, or a plain `pg_dump`): each table's data is a `COPY … FROM stdin;` block of one line
 * per row (newlines inside values are escaped as `\n`) ending in `\.`. Rows are scanned
 * byte by byte in plain JavaScript: a dump has millions of them, and a native call per row
 * would cost more than the scan.
 */
export class CopyBlockCensus extends Writable {
  readonly #tally: CensusTally;
  #partial: Buffer | undefined;
  #block: CopyBlock | undefined;
  /** Set by a scanner that stopped at a line cut by the chunk's end. */
  #needMore = false;

  constructor(tally: CensusTally) {
    super();
    this.#tally = tally;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // A line cut at the chunk's end is carried over whole to the next chunk.
    const data = this.#partial ? Buffer.concat([this.#partial, chunk]) : chunk;
    let start = 0;
    this.#needMore = false;
    while (start < data.length && !this.#needMore) {
      start = this.#block ? this.#scanRows(data, start, this.#block) : this.#scanLine(data, start);
    }
    this.#partial = start < data.length ? Buffer.from(data.subarray(start)) : undefined;
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#partial && this.#block === undefined) this.#startBlock(this.#partial.toString('utf8'));
    callback(this.#block ? new Error(`the dump ends inside the data of table ${this.#block.table}: it is truncated`) : null);
  }

  /** Outside data blocks: reads one line (a COPY header starts a block); returns the next line's start. */
  #scanLine(data: Buffer, start: number): number {
    const end = data.indexOf(NEWLINE, start);
    if (end === -1) {
      this.#needMore = true;
      return start;
    }
    if (end - start > 5 && data[start] === 0x43 /* C */ && data.toString('latin1', start, start + 5) === 'COPY ') {
      this.#startBlock(data.toString('utf8', start, end));
    }
    return end + 1;
  }

  /** Inside a data block: counts rows up to `\.` (returning what follows it) or to a cut line (returning its start). */
  #scanRows(data: Buffer, start: number, block: CopyBlock): number {
    const n = data.length;
    const a = block.fields?.a ?? -1;
    const b = block.fields?.b ?? -1;
    const c = block.fields?.c ?? -1;
    const isSales = block.table === 'sales';
    let rows = 0;
    let i = start;
    while (i < n) {
      const lineStart = i;
      if (data[i] === BACKSLASH && (i + 2 >= n || (data[i + 1] === DOT && data[i + 2] === NEWLINE))) {
        if (i + 2 >= n) {
          this.#needMore = true;
        } else {
          this.#block = undefined;
          i += 3;
        }
        break;
      }
      let field = 0;
      let fieldStart = i;
      let aFrom = 0;
      let aTo = 0;
      let bFrom = 0;
      let bTo = 0;
      let cFrom = 0;
      let cTo = 0;
      for (; i < n; i += 1) {
        const byte = data[i];
        if (byte !== TAB && byte !== NEWLINE) continue;
        if (field === a) {
          aFrom = fieldStart;
          aTo = i;
        } else if (field === b) {
          bFrom = fieldStart;
          bTo = i;
        } else if (field === c) {
          cFrom = fieldStart;
          cTo = i;
        }
        if (byte === NEWLINE) break;
        field += 1;
        fieldStart = i + 1;
      }
      if (i >= n) {
        this.#needMore = true;
        i = lineStart;
        break;
      }
      rows += 1;
      if (a >= 0) {
        if (isSales) this.#tally.sale(integerAt(data, aFrom, aTo), integerAt(data, bFrom, bTo), integerAt(data, cFrom, cTo));
        else this.#tally.order(integerAt(data, aFrom, aTo), statusAt(data, bFrom, bTo));
      }
      i += 1;
    }
    if (rows > 0) this.#tally.row(block.table, rows);
    return i;
  }

  #startBlock(header: string): void {
    const match = COPY_HEADER.exec(header);
    if (match === null) return;
    const table = match[1] ?? match[2]!;
    const columns = match[3]!.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
    this.#tally.table(table);
    const at = (name: string): number => columns.indexOf(name);
    let fields: CopyBlock['fields'];
    if (table === 'sales' && at('id') >= 0 && at('stock') >= 0 && at('sold') >= 0) fields = { a: at('id'), b: at('stock'), c: at('sold') };
    if (table === 'orders' && at('sale_id') >= 0 && at('status') >= 0) fields = { a: at('sale_id'), b: at('status'), c: -1 };
    this.#block = { table, fields };
  }
}
