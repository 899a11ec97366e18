import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import type { LogPosition } from '../backup-manifest.js';

/**
 * How much of the dump's start and end is kept to read the position from: `mariadb-dump`
 * writes the binlog file and position before the first table and MariaDB's GTID after the
 * last, each within a few hundred bytes of the edge.
 */
const EDGE_BYTES = 64 * 1024;

const FILE_AND_POSITION =
  /^(?:-- )?CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)',\s*(?:MASTER|SOURCE)_LOG_POS=(\d+)/m;
/** MariaDB (`--gtid`): `-- SET GLOBAL gtid_slave_pos='0-1-42';`. */
const MARIADB_GTID = /^(?:-- )?SET GLOBAL gtid_slave_pos='([^']*)'/m;
/** MySQL with GTIDs on: `SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*\/ 'uuid:1-42';`, possibly commented out. */
const MYSQL_GTID = /SET @@GLOBAL\.GTID_PURGED=(?:\/\*!80000 '\+'\*\/ )?'([^']*)'/;

/**
 * Reads the binlog position a `mariadb-dump`/`mysqldump --master-data=2` (or `--source-data=2`)
 * wrote into its comments: `-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin.000001',
 * MASTER_LOG_POS=960;`, and the GTID when there is one. Undefined when the dump has none
 * (the server writes no binlog).
 */
export function parseDumpPosition(text: string): LogPosition | undefined {
  const filePosition = FILE_AND_POSITION.exec(text);
  if (filePosition === null) return undefined;
  const gtid = MARIADB_GTID.exec(text)?.[1] ?? MYSQL_GTID.exec(text)?.[1];
  return {
    kind: 'binlog',
    file: filePosition[1] as string,
    position: Number(filePosition[2]),
    ...(gtid === undefined || gtid === '' ? {} : { gtid }),
  };
}

/**
 * Passes a SQL dump through unchanged while keeping its first and last 64 KiB, so the
 * position can be read at the end without holding the dump in memory.
 */
export class DumpPositionReader extends Transform {
  #head = Buffer.alloc(0);
  /** The last chunks, holding at least the last 64 KiB; kept by reference, not copied. */
  readonly #tail: Buffer[] = [];
  #tailBytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#head.length < EDGE_BYTES) {
      this.#head = Buffer.concat([this.#head, chunk.subarray(0, EDGE_BYTES - this.#head.length)]);
    }
    this.#tail.push(chunk);
    this.#tailBytes += chunk.length;
    while (this.#tail.length > 1 && this.#tailBytes - (this.#tail[0] as Buffer).length >= EDGE_BYTES) {
      this.#tailBytes -= (this.#tail.shift() as Buffer).length;
    }
    callback(null, chunk);
  }

  /** The position found in the dump read so far; call after the stream ended. */
  position(): LogPosition | undefined {
    const tail = Buffer.concat(this.#tail);
    return parseDumpPosition(`${this.#head.toString('utf8')}\n${tail.subarray(Math.max(0, tail.length - EDGE_BYTES)).toString('utf8')}`);
  }
}
