import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;

function entrySize(header: Buffer): number {
  // GNU base-256 for sizes beyond the 11 octal digits (files over 8 GiB).
  if ((header[124] ?? 0) & 0x80) {
    let size = 0;
    for (let i = 125; i < 136; i++) size = size * 256 + (header[i] ?? 0);
    return size;
  }
  const octal = header.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim();
  return octal === '' ? 0 : Number.parseInt(octal, 8);
}

function entryName(header: Buffer): string {
  const name = header.toString('utf8', 0, 100).replace(/\0.*$/s, '');
  const prefix = header.toString('latin1', 257, 263) === 'ustar\0' ? header.toString('utf8', 345, 500).replace(/\0.*$/s, '') : '';
  return prefix === '' ? name : `${prefix}/${name}`;
}

/**
 * Passes a tar stream through unchanged while keeping the contents of a few named
 * entries (the base backup's `backup_label` and `backup_manifest`), so their facts are
 * read without unpacking or holding the archive. Of each wanted entry at most
 * `keepBytes` are kept: the tail, where the manifest has its WAL range.
 */
export class TarEntryPicker extends Transform {
  /** Contents of the wanted entries seen so far. */
  readonly picked = new Map<string, Buffer>();
  readonly #wanted: ReadonlySet<string>;
  readonly #keepBytes: number;
  #header = Buffer.alloc(0);
  #blockBytesLeft = 0;
  #dataBytesLeft = 0;
  #capturing: { name: string; chunks: Buffer[]; bytes: number } | undefined;

  constructor(wanted: readonly string[], keepBytes = 1 << 20) {
    super();
    this.#wanted = new Set(wanted);
    this.#keepBytes = keepBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#consume(chunk);
    callback(null, chunk);
  }

  #consume(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#blockBytesLeft > 0) {
        const take = Math.min(this.#blockBytesLeft, chunk.length - at);
        const data = Math.min(take, this.#dataBytesLeft);
        if (this.#capturing !== undefined && data > 0) this.#keep(chunk.subarray(at, at + data));
        this.#dataBytesLeft -= data;
        this.#blockBytesLeft -= take;
        at += take;
        if (this.#blockBytesLeft === 0) this.#finishEntry();
        continue;
      }
      const take = Math.min(BLOCK - this.#header.length, chunk.length - at);
      this.#header = Buffer.concat([this.#header, chunk.subarray(at, at + take)]);
      at += take;
      if (this.#header.length < BLOCK) continue;
      const header = this.#header;
      this.#header = Buffer.alloc(0);
      // Two zero blocks end the archive.
      if (header.every((byte) => byte === 0)) continue;
      const size = entrySize(header);
      const name = entryName(header);
      this.#dataBytesLeft = size;
      this.#blockBytesLeft = Math.ceil(size / BLOCK) * BLOCK;
      this.#capturing = this.#wanted.has(name) ? { name, chunks: [], bytes: 0 } : undefined;
      if (this.#blockBytesLeft === 0) this.#finishEntry();
    }
  }

  #keep(data: Buffer): void {
    const capture = this.#capturing;
    if (capture === undefined) return;
    capture.chunks.push(Buffer.from(data));
    capture.bytes += data.length;
    while (capture.bytes - (capture.chunks[0]?.length ?? 0) >= this.#keepBytes) {
      capture.bytes -= capture.chunks.shift()?.length ?? 0;
    }
  }

  #finishEntry(): void {
    if (this.#capturing !== undefined) this.picked.set(this.#capturing.name, Buffer.concat(this.#capturing.chunks));
    this.#capturing = undefined;
  }
}
