import { open } from 'node:fs/promises';

/**
 * Reading a MariaDB/MySQL binary log (format v4) just far enough to archive it: where
 * its last complete event ends (a file still being written may end mid-event) and when
 * its events happened. Only the 19-byte event headers are read; the tools interpret the
 * rest.
 */

/** The four bytes every binary log starts with. */
const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const HEADER_BYTES = 19;
const CHUNK_BYTES = 1 << 20;

/** Event types that end a transaction or are a statement of their own: they mark a point in time worth reporting. */
const QUERY_EVENT = 2;
const XID_EVENT = 16;

/** One event header. */
export interface BinlogEvent {
  /** Byte offset of the event in the file. */
  readonly offset: number;
  /** Unix seconds (the server's clock when the statement started); 0 for artificial events. */
  readonly timestamp: number;
  readonly type: number;
  readonly length: number;
}

/** True for events that commit a transaction or are a statement on their own (DDL). */
export function isTransactionBoundary(event: BinlogEvent): boolean {
  return event.type === XID_EVENT || event.type === QUERY_EVENT;
}

/**
 * Calls `onEvent` for each complete event from `from` (0 = the file's start, checking the
 * magic) and returns the offset just past the last complete one. `onEvent` returning
 * false stops the walk early (the offset returned is then that event's).
 *
 * @throws Error when the file is not a binary log or an event header is impossible.
 */
export async function walkBinlogEvents(path: string, from: number, onEvent: (event: BinlogEvent) => boolean | void): Promise<number> {
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    let offset = from;
    if (offset === 0) {
      const magic = Buffer.alloc(BINLOG_MAGIC.length);
      const { bytesRead } = await file.read(magic, 0, magic.length, 0);
      if (bytesRead < magic.length) return 0;
      if (!magic.equals(BINLOG_MAGIC)) throw new Error(`${path} is not a binary log (it does not start with the binlog magic bytes)`);
      offset = BINLOG_MAGIC.length;
    }
    const chunk = Buffer.alloc(CHUNK_BYTES);
    while (offset + HEADER_BYTES <= size) {
      const { bytesRead } = await file.read(chunk, 0, Math.min(CHUNK_BYTES, size - offset), offset);
      let at = 0;
      while (at + HEADER_BYTES <= bytesRead) {
        const length = chunk.readUInt32LE(at + 9);
        if (length < HEADER_BYTES) throw new Error(`${path} has an impossible event length ${length} at byte ${offset + at}; the file is damaged`);
        if (offset + at + length > size) return offset + at;
        const event = { offset: offset + at, timestamp: chunk.readUInt32LE(at), type: chunk.readUInt8(at + 4), length };
        if (onEvent(event) === false) return event.offset;
        at += length;
      }
      // A chunk that ends inside an event (or its header): continue from that event.
      if (at === 0) return offset;
      offset += at;
    }
    return offset;
  } finally {
    await file.close();
  }
}

/**
 * What is known of a binary log being archived, advanced as the file grows; cheap to
 * call every few seconds because it only reads what is new.
 */
export class BinlogScan {
  /** Offset past the last complete event seen. */
  completeBytes = 0;
  /** Unix seconds of the earliest non-artificial event. */
  firstEventAt: number | undefined;
  /** Unix seconds of the latest non-artificial event. */
  lastEventAt: number | undefined;

  /** Reads the events written since the last call. A file that shrank (rewritten by a restarted archiver) is scanned anew. */
  async advance(path: string, currentSize: number): Promise<void> {
    if (currentSize < this.completeBytes) {
      this.completeBytes = 0;
      this.firstEventAt = undefined;
      this.lastEventAt = undefined;
    }
    this.completeBytes = await walkBinlogEvents(path, this.completeBytes, (event) => {
      if (event.timestamp === 0) return;
      this.firstEventAt ??= event.timestamp;
      this.lastEventAt = Math.max(this.lastEventAt ?? 0, event.timestamp);
    });
  }
}

/**
 * The sequence number of a binary log name (`mariadb-bin.000042` → 42), or undefined
 * when the name has no numeric extension.
 */
export function binlogSequence(name: string): number | undefined {
  const match = /\.(\d{6,})$/.exec(name);
  return match === null ? undefined : Number(match[1]);
}
