import { Writable } from 'node:stream';
import type { CensusTally } from './census-tally.js';

/** Most of a line kept to recognise it; INSERT values past this are scanned as they stream. */
const HEAD_LIMIT = 64 * 1024;
/** Longest value kept of a field the sale snapshot reads (ids, counts, statuses are short). */
const VALUE_LIMIT = 64;
/** Fields of a row the sale snapshot reads at most (sales: id, stock, sold). */
const SLOTS = 3;

const INSERT_HEAD = /^(?:INSERT(?:\s+IGNORE)?|REPLACE)\s+INTO\s+`((?:[^`]|``)+)`\s*(?:\(([^)]*)\))?\s*VALUES\s*/;
const CREATE_TABLE = /^CREATE TABLE\s+(?:IF NOT EXISTS\s+)?`((?:[^`]|``)+)`\s*\(/;
const COLUMN_LINE = /^\s+`((?:[^`]|``)+)`\s/;
const VALUES = Buffer.from('VALUES', 'latin1');

const NEWLINE = 0x0a;
const DOUBLE_QUOTE = 0x22;
const SINGLE_QUOTE = 0x27;
const OPEN = 0x28;
const CLOSE = 0x29;
const COMMA = 0x2c;
const SPACE = 0x20;
const SEMICOLON = 0x3b;
const BACKSLASH = 0x5c;

type State = 'head' | 'skip' | 'values';

/** What the rows of the table being read feed besides its count. */
const enum Snapshot {
  None = 0,
  Sales = 1,
  Orders = 2,
}

/** The statuses an order row holds, as constants: no string is made per row. */
const STATUSES = ['created', 'paid', 'expired', 'cancelled'].map((status) => ({ status, bytes: Buffer.from(status, 'latin1') }));

/** Where `byte` next occurs in `chunk` from `from`, or the chunk's length when it does not. */
function next(chunk: Buffer, byte: number, from: number): number {
  const at = chunk.indexOf(byte, from);
  return at === -1 ? chunk.length : at;
}

function names(list: string): string[] {
  return list.split(',').map((c) => c.trim().replace(/^`|`$/g, '').replace(/``/g, '`'));
}

/**
 * Counts the rows of a MariaDB/MySQL logical dump (`mariadb-dump`, `mysqldump`): the
 * `INSERT INTO \`t\` VALUES (…),(…);` statements are scanned byte by byte, minding quoted
 * strings with backslash escapes and doubled quotes, so a value holding `),(` is not taken
 * for a row boundary. Only a statement's head is read as text; the values stay bytes, and
 * only the few fields the sale snapshot needs (a sale's id, stock and sold; an order's sale
 * and status) are kept, in a fixed buffer, so the scan allocates nothing per row: it sees
 * every byte of a dump of millions of rows. Column positions come from the dump's own
 * `CREATE TABLE` (or the INSERT's column list). A statement is never held whole.
 */
export class InsertStatementCensus extends Writable {
  readonly #tally: CensusTally;
  readonly #columns = new Map<string, string[]>();
  #state: State = 'head';
  #head = '';
  /** The table whose CREATE TABLE is being read, with its columns so far. */
  #creating: { table: string; columns: string[] } | undefined;
  // Inside VALUES; kept across chunks, since a chunk may end anywhere in a statement.
  #table = '';
  #snapshot = Snapshot.None;
  /** Field positions of the kept values, by slot (−1: none). */
  readonly #wanted = new Int32Array(SLOTS).fill(-1);
  #depth = 0;
  #quote = 0;
  #escape = false;
  #field = 0;
  /** The slot of the field being read, or −1 when it is not kept. */
  #slot = -1;
  /** Bytes of each slot's value; its length in #lengths (−1 until a row set it). */
  readonly #kept = new Uint8Array(SLOTS * VALUE_LIMIT);
  readonly #lengths = new Int32Array(SLOTS).fill(-1);

  constructor(tally: CensusTally) {
    super();
    this.#tally = tally;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      let i = 0;
      while (i < chunk.length) {
        if (this.#state === 'skip') {
          const newline = chunk.indexOf(NEWLINE, i);
          if (newline === -1) return callback();
          i = newline + 1;
          this.#state = 'head';
        } else if (this.#state === 'head') {
          i = this.#readHead(chunk, i);
        } else {
          i = this.#readValues(chunk, i);
        }
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#state === 'head' && this.#head !== '') this.#endLine();
    callback(this.#state === 'values' ? new Error(`the dump ends inside an INSERT of table ${this.#table}: it is truncated`) : null);
  }

  /** Reads a line's start as text; returns where to go on (the first value byte of an INSERT). */
  #readHead(chunk: Buffer, from: number): number {
    const newline = chunk.indexOf(NEWLINE, from);
    const end = newline === -1 ? chunk.length : newline;
    const take = Math.min(end, from + HEAD_LIMIT - this.#head.length);
    const before = this.#head.length;
    let upTo = take;
    const first = before > 0 ? this.#head.charCodeAt(0) : chunk[from];
    if (this.#creating === undefined && (first === 0x49 /* I */ || first === 0x52) /* R */) {
      // An INSERT line is a megabyte of values: read as text only its head, up to VALUES.
      const values = chunk.indexOf(VALUES, from);
      if (values !== -1 && values + VALUES.length <= take) upTo = values + VALUES.length;
    }
    this.#head += chunk.toString('latin1', from, upTo);
    let insert = this.#creating === undefined ? INSERT_HEAD.exec(this.#head) : null;
    if (insert === null && upTo < take) {
      // "VALUES" was part of a name: read the head as far as any other line.
      this.#head += chunk.toString('latin1', upTo, take);
      insert = INSERT_HEAD.exec(this.#head);
    }
    if (insert !== null) {
      this.#startValues(insert[1]!.replace(/``/g, '`'), insert[2]);
      this.#head = '';
      // The head before this chunk did not match, so the match ends inside this chunk.
      return from + insert[0].length - before;
    }
    if (take < end) {
      // A line this long that is not an INSERT matters to no count.
      this.#head = '';
      this.#state = 'skip';
      return take;
    }
    if (newline === -1) return chunk.length;
    this.#endLine();
    return newline + 1;
  }

  #endLine(): void {
    const line = this.#head;
    this.#head = '';
    if (this.#creating !== undefined) {
      if (line.startsWith(')')) {
        this.#columns.set(this.#creating.table, this.#creating.columns);
        this.#tally.table(this.#creating.table);
        this.#creating = undefined;
        return;
      }
      const column = COLUMN_LINE.exec(line);
      if (column !== null) this.#creating.columns.push(column[1]!.replace(/``/g, '`'));
      return;
    }
    const create = CREATE_TABLE.exec(line);
    if (create !== null) this.#creating = { table: create[1]!.replace(/``/g, '`'), columns: [] };
  }

  #startValues(table: string, columnList: string | undefined): void {
    const columns = columnList !== undefined ? names(columnList) : this.#columns.get(table);
    const at = (name: string): number => columns?.indexOf(name) ?? -1;
    this.#table = table;
    this.#snapshot = Snapshot.None;
    this.#wanted.fill(-1);
    // A row short of a kept field reads as NaN, never as a value left from another row.
    this.#lengths.fill(-1);
    if (table === 'sales' || table === 'orders') {
      const wanted = table === 'sales' ? [at('id'), at('stock'), at('sold')] : [at('sale_id'), at('status')];
      if (wanted.some((position) => position < 0)) {
        throw new Error(`cannot read the columns of table ${table} from the dump (no CREATE TABLE before its INSERT)`);
      }
      this.#wanted.set(wanted);
      this.#snapshot = table === 'sales' ? Snapshot.Sales : Snapshot.Orders;
    }
    this.#state = 'values';
    this.#depth = 0;
    this.#quote = 0;
    this.#escape = false;
    this.#slot = -1;
  }

  /** The kept value of `slot` as a number, as `Number()` reads its text (NaN when the row had no such field). */
  #number(slot: number): number {
    const length = this.#lengths[slot]!;
    if (length < 0) return Number.NaN;
    const kept = this.#kept;
    const from = slot * VALUE_LIMIT;
    const to = from + length;
    let i = from;
    const negative = kept[i] === 0x2d;
    if (negative) i += 1;
    // Plain decimal digits, short enough to be exact: the usual case, without a string.
    if (i < to && to - i <= 15) {
      let value = 0;
      for (; i < to; i += 1) {
        const digit = kept[i]! - 0x30;
        if (digit < 0 || digit > 9) break;
        value = value * 10 + digit;
      }
      if (i === to) return negative ? -value : value;
    }
    return Number(Buffer.from(kept.buffer, kept.byteOffset + from, length).toString('latin1'));
  }

  /** The kept value of `slot` as text; a known status without making a string. */
  #status(slot: number): string {
    const length = this.#lengths[slot]!;
    if (length <= 0) return '';
    const kept = this.#kept;
    const from = slot * VALUE_LIMIT;
    for (const known of STATUSES) {
      const bytes = known.bytes;
      if (bytes.length !== length) continue;
      let i = 0;
      while (i < length && kept[from + i] === bytes[i]) i += 1;
      if (i === length) return known.status;
    }
    return Buffer.from(kept.buffer, kept.byteOffset + from, length).toString('latin1');
  }

  #endRow(): void {
    if (this.#snapshot === Snapshot.Sales) this.#tally.sale(this.#number(0), this.#number(1), this.#number(2));
    else this.#tally.order(this.#number(0), this.#status(1));
  }

  /** Walks VALUES tuples from `from`; returns where the statement ended, or the chunk's end. */
  #readValues(chunk: Buffer, from: number): number {
    // State in locals and no calls per byte: this loop sees every byte of the dump.
    let depth = this.#depth;
    let quote = this.#quote;
    let escape = this.#escape;
    let field = this.#field;
    let slot = this.#slot;
    const kept = this.#kept;
    const lengths = this.#lengths;
    const wanted = this.#wanted;
    const w0 = wanted[0]!;
    const w1 = wanted[1]!;
    const w2 = wanted[2]!;
    const snapshot = this.#snapshot !== Snapshot.None;
    let at = slot < 0 ? 0 : slot * VALUE_LIMIT + lengths[slot]!;
    let limit = slot < 0 ? 0 : (slot + 1) * VALUE_LIMIT;
    let rows = 0;
    const n = chunk.length;
    // Where the next of these bytes is, from the last search (n: none left in this chunk).
    let nextBackslash = -1;
    let nextSingle = -1;
    let nextDouble = -1;
    let nextOpen = -1;
    let nextClose = -1;
    const lastWanted = Math.max(w0, w1, w2);
    let end = n;
    let i = from;
    for (; i < n; i += 1) {
      let b = chunk[i]!;
      if (quote !== 0) {
        if (escape) {
          // The byte after a backslash is taken as it is (`\'` is a quote, `\\` a backslash).
          escape = false;
          if (at < limit) kept[at++] = b;
          continue;
        }
        if (slot < 0) {
          // A string no count reads: jump to its closing quote or the backslash before it
          // (indexOf is native; a byte loop in JavaScript costs more on all but tiny strings).
          const close = chunk.indexOf(quote, i);
          if (nextBackslash < i) nextBackslash = next(chunk, BACKSLASH, i);
          if (nextBackslash < close || close === -1) {
            if (nextBackslash === n) {
              i = n;
              break;
            }
            i = nextBackslash;
            b = BACKSLASH;
          } else {
            i = close;
            b = quote;
          }
        }
        // A doubled quote ('') closes and at once reopens: counts come out the same.
        if (b === BACKSLASH) escape = true;
        else if (b === quote) quote = 0;
        else if (at < limit) kept[at++] = b;
        continue;
      }
      if (field > lastWanted && depth === 1) {
        // No kept field is left in this row: jump to the next byte that matters (a quote, a
        // parenthesis), past the numbers and commas between; fields need no counting now.
        if (nextSingle < i) nextSingle = next(chunk, SINGLE_QUOTE, i);
        if (nextDouble < i) nextDouble = next(chunk, DOUBLE_QUOTE, i);
        if (nextOpen < i) nextOpen = next(chunk, OPEN, i);
        if (nextClose < i) nextClose = next(chunk, CLOSE, i);
        i = Math.min(nextSingle, nextDouble, nextOpen, nextClose);
        if (i === n) break;
        b = chunk[i]!;
      }
      if (b > COMMA) {
        // Digits, letters (NULL), hex: part of an unquoted value. `;` ends the statement.
        if (b === SEMICOLON && depth === 0) {
          this.#state = 'skip';
          end = i + 1;
          break;
        }
        if (at < limit && depth > 0) kept[at++] = b;
        continue;
      }
      if (depth === 0) {
        if (b === OPEN) {
          depth = 1;
          field = 0;
          slot = w0 === 0 ? 0 : w1 === 0 ? 1 : w2 === 0 ? 2 : -1;
          at = slot < 0 ? 0 : slot * VALUE_LIMIT;
          limit = slot < 0 ? 0 : at + VALUE_LIMIT;
        }
        continue;
      }
      if (b === COMMA) {
        if (depth === 1) {
          if (slot >= 0) lengths[slot] = at - slot * VALUE_LIMIT;
          field += 1;
          slot = w0 === field ? 0 : w1 === field ? 1 : w2 === field ? 2 : -1;
          at = slot < 0 ? 0 : slot * VALUE_LIMIT;
          limit = slot < 0 ? 0 : at + VALUE_LIMIT;
        }
      } else if (b === CLOSE) {
        depth -= 1;
        if (depth === 0) {
          if (slot >= 0) lengths[slot] = at - slot * VALUE_LIMIT;
          slot = -1;
          at = 0;
          limit = 0;
          rows += 1;
          if (snapshot) this.#endRow();
        }
      } else if (b === SINGLE_QUOTE || b === DOUBLE_QUOTE) {
        quote = b;
      } else if (b === OPEN) {
        depth += 1;
      } else if (b !== SPACE && at < limit) {
        kept[at++] = b;
      }
    }
    if (slot >= 0) lengths[slot] = at - slot * VALUE_LIMIT;
    if (rows > 0) this.#tally.row(this.#table, rows);
    this.#depth = depth;
    this.#quote = quote;
    this.#escape = escape;
    this.#field = field;
    this.#slot = slot;
    return end;
  }
}
