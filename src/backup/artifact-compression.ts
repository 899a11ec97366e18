import { createGunzip, createGzip } from 'node:zlib';
import type { Duplex } from 'node:stream';
import type { ArtifactRecord } from './backup-manifest.js';
import { ProcessFilter } from './process-filter.js';

/** How an artifact's bytes are compressed before encryption. */
export type Compression = ArtifactRecord['compression'];

/** The file name suffix of each compression. */
export const COMPRESSION_SUFFIX: Readonly<Record<Compression, string>> = { zstd: '.zst', gzip: '.gz', none: '' };

/**
 * A compressing stream, or undefined for `none`. zstd runs as the `zstd` command (level 3,
 * all cores), since Node 20's zlib has no zstd; gzip runs in-process.
 */
export function compressor(compression: Compression): Duplex | undefined {
  switch (compression) {
    case 'zstd':
      return new ProcessFilter('zstd', ['-q', '-c', '-3', '-T0']);
    case 'gzip':
      return createGzip({ level: 6 });
    case 'none':
      return undefined;
  }
}

/** The matching decompressing stream, or undefined for `none`. */
export function decompressor(compression: Compression): Duplex | undefined {
  switch (compression) {
    case 'zstd':
      return new ProcessFilter('zstd', ['-q', '-d', '-c'], { label: 'zstd decompression' });
    case 'gzip':
      return createGunzip();
    case 'none':
      return undefined;
  }
}
