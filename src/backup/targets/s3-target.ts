import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import type { BackupTarget } from '../backup-target.js';
import { checkedKey, checkedPrefix } from './target-key.js';

/** Where an S3 target points, parsed from its URL. */
export interface S3Location {
  readonly bucket: string;
  /** Key prefix inside the bucket: empty or ending in `/`. */
  readonly prefix: string;
  readonly region: string;
  readonly endpoint?: string;
  readonly forcePathStyle: boolean;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/**
 * Parses `s3://[accessKey:secret@]bucket[/prefix][?endpoint=…&region=…&forcePathStyle=true]`.
 * Without credentials in the URL the SDK's usual chain applies (AWS_* variables, instance
 * roles). With `endpoint` (MinIO, Ceph, Garage…) path-style addressing is used.
 *
 * @example
 * parseS3Url('s3://AKIA…:secret@backups/seckill?endpoint=http://127.0.0.1:9000&region=us-east-1');
 */
export function parseS3Url(url: string): S3Location {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`backup target URL ${redactS3Url(url)} is not a valid URL; use s3://key:secret@bucket/prefix?endpoint=…&region=…`);
  }
  const bucket = parsed.hostname;
  if (parsed.protocol !== 's3:' || bucket === '') {
    throw new Error(`backup target URL ${redactS3Url(url)} names no bucket; use s3://key:secret@bucket/prefix?endpoint=…&region=…`);
  }
  const path = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '');
  const endpoint = parsed.searchParams.get('endpoint') ?? undefined;
  const accessKeyId = decodeURIComponent(parsed.username);
  const secretAccessKey = decodeURIComponent(parsed.password);
  return {
    bucket,
    prefix: path === '' ? '' : `${path}/`,
    region: parsed.searchParams.get('region') ?? 'us-east-1',
    endpoint,
    forcePathStyle: endpoint !== undefined || parsed.searchParams.get('forcePathStyle') === 'true',
    credentials: accessKeyId !== '' ? { accessKeyId, secretAccessKey } : undefined,
  };
}

/** The URL without its secret, for messages. */
export function redactS3Url(url: string): string {
  return url.replace(/^(s3:\/\/[^:@/]*:)[^@]*@/, '$1***@');
}

class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/** Multipart part size: 8 MiB × 4 parts in flight bounds the memory an upload holds. */
const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 4;

function errorName(error: unknown): string | undefined {
  return (error as { name?: string }).name;
}

/**
 * A backup target in S3-compatible object storage. Uploads are streaming multipart
 * uploads: an object appears only when the upload completes, and a failed one is aborted,
 * so a half-uploaded artifact is never listed.
 */
export class S3Target implements BackupTarget {
  readonly name: string;
  readonly location: string;
  readonly #where: S3Location;
  readonly #client: S3Client;

  constructor(name: string, url: string) {
    this.name = name;
    this.#where = parseS3Url(url);
    const { bucket, prefix, endpoint } = this.#where;
    this.location = `s3://${bucket}/${prefix}${endpoint ? ` at ${endpoint}` : ''}`;
    this.#client = new S3Client({
      region: this.#where.region,
      endpoint,
      forcePathStyle: this.#where.forcePathStyle,
      credentials: this.#where.credentials,
      // S3-compatible stores differ in the newer checksum headers; our own SHA-256 checks the bytes.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 300_000 },
    });
  }

  #key(key: string): string {
    return `${this.#where.prefix}${checkedKey(key)}`;
  }

  #fail(action: string, error: unknown): Error {
    return new Error(`${action} on target ${this.name} (${this.location}) failed: ${(error as Error).message || errorName(error) || String(error)}`);
  }

  async put(key: string, body: Readable): Promise<number> {
    const counter = new ByteCounter();
    body.once('error', (error) => counter.destroy(error));
    body.pipe(counter);
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#where.bucket, Key: this.#key(key), Body: counter },
      partSize: PART_SIZE,
      queueSize: PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
      return counter.bytes;
    } catch (error) {
      body.destroy();
      throw this.#fail(`uploading ${key}`, error);
    }
  }

  async get(key: string): Promise<Readable> {
    try {
      const object = await this.#client.send(new GetObjectCommand({ Bucket: this.#where.bucket, Key: this.#key(key) }));
      return object.Body as Readable;
    } catch (error) {
      if (errorName(error) === 'NoSuchKey' || errorName(error) === 'NotFound') {
        throw new Error(`${key} does not exist on target ${this.name} (${this.location})`);
      }
      throw this.#fail(`reading ${key}`, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    checkedPrefix(prefix);
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#where.bucket, Prefix: `${this.#where.prefix}${prefix}`, ContinuationToken: token }),
        );
        for (const object of page.Contents ?? []) {
          if (object.Key !== undefined) keys.push(object.Key.slice(this.#where.prefix.length));
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (error) {
      throw this.#fail('listing', error);
    }
    return keys.sort();
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.#where.bucket, Key: this.#key(key) }));
      return true;
    } catch (error) {
      if (errorName(error) === 'NotFound' || errorName(error) === 'NoSuchKey') return false;
      throw this.#fail(`checking ${key}`, error);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    // DeleteObjects takes at most 1000 keys per request.
    for (let start = 0; start < keys.length; start += 1000) {
      const batch = keys.slice(start, start + 1000).map((key) => ({ Key: this.#key(key) }));
      let errors;
      try {
        ({ Errors: errors } = await this.#client.send(
          new DeleteObjectsCommand({ Bucket: this.#where.bucket, Delete: { Objects: batch, Quiet: true } }),
        ));
      } catch (error) {
        throw this.#fail('deleting', error);
      }
      const failed = (errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        throw new Error(
          `deleting on target ${this.name} (${this.location}) failed for ${failed.length} key(s): ` +
            failed.slice(0, 3).map((e) => `${e.Key}: ${e.Code} ${e.Message ?? ''}`.trim()).join('; '),
        );
      }
    }
  }

  /** Closes the client's connections, so a command can exit promptly. */
  close(): void {
    this.#client.destroy();
  }
}
