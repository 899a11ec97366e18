import { Writable } from 'node:stream';
import type { CensusTally } from './census-tally.js';

/** Most of a line kept to recognise it; INSERT values past this are parsed as they stream. */
const HEAD_LIMIT = 64 * 1024;
/** Longest value kept of a field the sale snapshot reads (ids, counts, statuses are short). */
const VALUE_LIMIT = 64;

const INSERT_HEAD = /^(?:INSERT(?:\s+IGNORE)?|REPLACE)\s+INTO\s+`((?:[^`]|``)+)`\s*(?:\(([^)]*)\))?\s*VALUES\s*/;
const CREATE_TABLE = /^CREATE TABLE\s+(?:IF NOT EXISTS\s+)?`((?:[^`]|``)+)`\s*\(/;
const COLUMN_LINE = /^\s+`((?:[^`]|``)+)`\s/;

type State = 'head' | 'skip' | 'values';

/** Which fields of a row the sale snapshot reads, by position. */
interface Wanted {
  readonly first: number;
  readonly second: number;
  readonly third: number;
}

function names(list: string): string[] {
  return list.split(',').map((c) => c.trim().replace(/^`|`$/g, '').replace(/``/g, '`'));
}

/**
 * Counts the rows of a MariaDB/MySQL logical dump (`mariadb-dump`, `mysqldump`): each
 * `INSERT INTO \`t\` VALUES (…),(…);` is walked tuple by tuple, minding quoted strings with
 * backslash escapes, so a value holding `),(` is not taken for a row boundary. Column
 * positions come from the dump's own `CREATE TABLE` (or the INSERT's column list). Values
 * stream through: a statement is never held whole.
 */
export class InsertStatementCensus extends Writable {
  readonly #tally: CensusTally;
  readonly #columns = new Map<string, string[]>();
  #state: State = 'head';
  #head = '';
  /** The table whose CREATE TABLE is being read, with its columns so far. */
  #creating: { table: string; columns: string[] } | undefined;
  // Inside VALUES:
  #table = '';
  #wanted: Wanted | undefined;
  #depth = 0;
  #quote = 0;
  #escape = false;
  #field = 0;
  #value = '';
  readonly #values: string[] = [];

  constructor(tally: CensusTally) {
    super();
    this.#tally = tally;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      let i = 0;
      while (i < chunk.length) {
        if (this.#state === 'skip') {
          const newline = chunk.indexOf(10, i);
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

  #readHead(chunk: Buffer, from: number): number {
    const newline = chunk.indexOf(10, from);
    const end = newline === -1 ? chunk.length : newline;
    const take = Math.min(end, from + HEAD_LIMIT - this.#head.length);
    this.#head += chunk.toString('latin1', from, take);
    const insert = this.#creating === undefined ? INSERT_HEAD.exec(this.#head) : null;
    if (insert !== null) {
      this.#startValues(insert[1]!.replace(/``/g, '`'), insert[2]);
      const rest = Buffer.from(this.#head.slice(insert[0].length), 'latin1');
      this.#head = '';
      this.#readValues(rest, 0);
      return take;
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
    this.#wanted = undefined;
    if (table === 'sales' || table === 'orders') {
      const wanted = table === 'sales' ? { first: at('id'), second: at('stock'), third: at('sold') } : { first: at('sale_id'), second: at('status'), third: -2 };
      if (wanted.first < 0 || wanted.second < 0 || wanted.third === -1) {
        throw new Error(`cannot read the columns of table ${table} from the dump (no CREATE TABLE before its INSERT)`);
      }
      this.#wanted = wanted;
    }
    this.#state = 'values';
    this.#depth = 0;
    this.#quote = 0;
    this.#escape = false;
  }

  #endRow(): void {
    this.#tally.row(this.#table);
    const wanted = this.#wanted;
    if (wanted === undefined) return;
    const v = this.#values;
    if (this.#table === 'sales') this.#tally.sale(Number(v[wanted.first]), Number(v[wanted.second]), Number(v[wanted.third]));
    else this.#tally.order(Number(v[wanted.first]), v[wanted.second] ?? '');
  }

  /** Walks VALUES tuples from `from`; returns where the statement ended, or the chunk's end. */
  #readValues(chunk: Buffer, from: number): number {
    // State in locals and no calls per byte or field: this loop sees every byte of the dump.
    let depth = this.#depth;
    let quote = this.#quote;
    let escape = this.#escape;
    let field = this.#field;
    let value = this.#value;
    const wanted = this.#wanted;
    const first = wanted?.first ?? -9;
    const second = wanted?.second ?? -9;
    const third = wanted?.third ?? -9;
    const values = this.#values;
    let keep = field === first || field === second || field === third;
    let end = chunk.length;
    for (let i = from; i < chunk.length; i += 1) {
      const b = chunk[i]!;
      if (quote !== 0) {
        if (escape) {
          escape = false;
          if (keep && value.length < VALUE_LIMIT) value += String.fromCharCode(b);
        } else if (!keep) {
          // Skip the string's body to its closing quote, stopping early at a backslash.
          const close = chunk.indexOf(quote, i);
          const limit = close === -1 ? chunk.length : close;
          let next = i;
          while (next < limit && chunk[next] !== 0x5c) next += 1;
          if (next === chunk.length) break;
          i = next;
          // A doubled quote ('') reopens at once: counts and depth come out the same.
          if (chunk[i] === 0x5c) escape = true;
          else quote = 0;
        } else if (b === 0x5c) {
          escape = true;
        } else if (b === quote) {
          quote = 0;
        } else if (value.length < VALUE_LIMIT) {
          value += String.fromCharCode(b);
        }
        continue;
      }
      if (depth === 0) {
        if (b === 0x28) {
          depth = 1;
          field = 0;
          value = '';
          keep = first === 0 || second === 0 || third === 0;
        } else if (b === 0x3b) {
          this.#state = 'skip';
          end = i + 1;
          break;
        }
        continue;
      }
      if (b === 0x2c) {
        if (depth === 1) {
          if (keep) values[field] = value;
          value = '';
          field += 1;
          keep = field === first || field === second || field === third;
        }
      } else if (b === 0x29) {
        depth -= 1;
        if (depth === 0) {
          if (keep) values[field] = value;
          value = '';
          this.#endRow();
        }
      } else if (b === 0x27 || b === 0x22) {
        quote = b;
      } else if (b === 0x28) {
        depth += 1;
      } else if (keep && b !== 0x20 && value.length < VALUE_LIMIT) {
        value += String.fromCharCode(b);
      }
    }
    this.#depth = depth;
    this.#quote = quote;
    this.#escape = escape;
    this.#field = field;
    this.#value = value;
    return end;
  }
}
