import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { openArtifact } from '../src/backup/artifact-open.js';
import { CIPHER_CHUNK_SIZE } from '../src/backup/artifact-cipher.js';
import { ArtifactError } from '../src/backup/artifact-error.js';
import { sealArtifact } from '../src/backup/artifact-seal.js';
import { keyIdOf, loadBackupKey, parseKey } from '../src/backup/backup-key.js';
import type { BackupKey } from '../src/backup/backup-key.js';
import type { ArtifactRecord } from '../src/backup/backup-manifest.js';
import { listFileSet } from '../src/backup/file-set-archive.js';
import { GlobPattern } from '../src/backup/glob-pattern.js';
import { loadConfig } from '../src/config/config.js';
import { createScratchDir } from './support/scratch-dir.js';

function keyOf(bytes: Buffer): BackupKey {
  return { key: bytes, id: keyIdOf(bytes), source: 'backupKey', generated: false };
}

const KEY = keyOf(randomBytes(32));

/** Sealed bytes of `raw`, and the manifest record describing them. */
async function seal(raw: Buffer, compression: 'zstd' | 'gzip' | 'none', key: BackupKey | undefined = KEY): Promise<{ stored: Buffer; record: ArtifactRecord }> {
  const parts: Buffer[] = [];
  const collect = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      callback();
    },
  });
  const digests = await sealArtifact(Readable.from([raw]), collect, { compression, key });
  const record: ArtifactRecord = {
    name: 'database.sql.enc',
    role: 'database',
    ...digests,
    compression,
    ...(key ? { encryption: { algorithm: 'aes-256-gcm' as const, keyId: key.id } } : {}),
  };
  return { stored: Buffer.concat(parts), record };
}

async function open(stored: Buffer, record: ArtifactRecord, key: BackupKey | undefined = KEY): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of openArtifact(Readable.from([stored]), record, key)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Text that compresses like a dump does, a little over three encryption chunks. */
const DUMP = Buffer.from(
  Array.from({ length: 3000 }, (_, i) => `INSERT INTO orders VALUES ('o${i}', 1, 'user-${i}', 'created', ${1_800_000_000_000 + i});\n`).join(''),
);

describe('backup artifacts: compression and encryption', () => {
  for (const compression of ['zstd', 'gzip', 'none'] as const) {
    it(`${compression}: what is sealed opens to the same bytes, with checksums of raw and stored bytes`, async () => {
      const { stored, record } = await seal(DUMP, compression);
      assert.equal(record.rawSize, DUMP.length);
      assert.equal(record.rawSha256, createHash('sha256').update(DUMP).digest('hex'));
      assert.equal(record.size, stored.length);
      assert.equal(record.sha256, createHash('sha256').update(stored).digest('hex'));
      assert.ok(!stored.includes(Buffer.from('INSERT INTO')), 'the stored bytes are not readable text');
      assert.deepEqual(await open(stored, record), DUMP);
    });
  }

  it('seals an empty stream and opens it again', async () => {
    const { stored, record } = await seal(Buffer.alloc(0), 'zstd');
    assert.equal(record.rawSize, 0);
    assert.deepEqual(await open(stored, record), Buffer.alloc(0));
  });

  it('streams a large artifact without holding it: memory stays far below its size', async () => {
    const total = 256 * 1024 * 1024;
    const block = randomBytes(1024 * 1024);
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent >= total) this.push(null);
        else {
          sent += block.length;
          this.push(block);
        }
      },
    });
    const before = process.memoryUsage().rss;
    let peak = before;
    const sink = new Writable({
      write(_chunk, _encoding, callback) {
        peak = Math.max(peak, process.memoryUsage().rss);
        callback();
      },
    });
    const digests = await sealArtifact(source, sink, { compression: 'none', key: KEY });
    assert.equal(digests.rawSize, total);
    assert.ok(peak - before < 96 * 1024 * 1024, `memory grew by ${Math.round((peak - before) / 1048576)} MiB while sealing 256 MiB`);
  });

  it('one flipped byte anywhere fails: the chunk does not authenticate and the stored sha256 differs', async () => {
    const { stored, record } = await seal(DUMP, 'zstd');
    for (const at of [0, 10, 40, Math.floor(stored.length / 2), stored.length - 1]) {
      const damaged = Buffer.from(stored);
      damaged[at]! ^= 0x01;
      await assert.rejects(open(damaged, record), (error: unknown) => {
        assert.ok(error instanceof ArtifactError, `byte ${at}: ${String(error)}`);
        assert.match(error.message, /database\.sql\.enc/);
        assert.ok(['sha256', 'authentication', 'format', 'key'].includes(error.check), `byte ${at}: ${error.check}: ${error.message}`);
        return true;
      });
    }
  });

  it('a file cut at a chunk boundary fails authentication even with the manifest out of the way', async () => {
    const raw = randomBytes(CIPHER_CHUNK_SIZE * 3);
    const { stored, record } = await seal(raw, 'none');
    const cut = stored.subarray(0, 29 + 2 * (CIPHER_CHUNK_SIZE + 16));
    // A manifest that matches the cut file: only the cipher's final-chunk flag can catch it.
    const forged = { ...record, size: cut.length, sha256: createHash('sha256').update(cut).digest('hex') };
    await assert.rejects(open(cut, forged), (error: unknown) => error instanceof ArtifactError && error.check === 'authentication');
    await assert.rejects(open(cut, record), (error: unknown) => error instanceof ArtifactError && error.check === 'size' && /truncated/.test(error.message));
  });

  it('a wrong key is named as such, with both key ids, before any byte is decrypted', async () => {
    const { stored, record } = await seal(DUMP, 'zstd');
    const other = keyOf(randomBytes(32));
    await assert.rejects(open(stored, record, other), (error: unknown) => {
      assert.ok(error instanceof ArtifactError);
      assert.equal(error.check, 'key');
      assert.match(error.message, new RegExp(`wrong key \\(key id ${other.id}, manifest says ${KEY.id}\\)`));
      return true;
    });
    // A manifest that lies about the key: the header's key id still tells.
    await assert.rejects(open(stored, { ...record, encryption: { algorithm: 'aes-256-gcm', keyId: other.id } }, other), /wrong key/);
  });

  it('a key with the same id but other bytes fails authentication, not silently', async () => {
    const { stored, record } = await seal(DUMP, 'none');
    const impostor: BackupKey = { ...KEY, key: randomBytes(32) };
    await assert.rejects(open(stored, record, impostor), /authentication failed.*corrupt or wrong key/);
  });

  it('decoding data that is not what the manifest says fails the raw checksum', async () => {
    const { stored, record } = await seal(DUMP, 'gzip');
    await assert.rejects(open(stored, { ...record, rawSha256: '0'.repeat(64) }), (error: unknown) => error instanceof ArtifactError && error.check === 'raw-sha256');
  });

  it('a broken compressed stream inside a valid encryption is reported as a decompression failure', async () => {
    // Encrypt garbage as if it were zstd output.
    const { stored, record } = await seal(randomBytes(5000), 'none');
    const zstdRecord: ArtifactRecord = { ...record, compression: 'zstd' };
    await assert.rejects(open(stored, zstdRecord), (error: unknown) => error instanceof ArtifactError && error.check === 'decompression');
  });
});

describe('backup key', () => {
  it('reads a key as hex or base64 and refuses anything else', () => {
    const bytes = randomBytes(32);
    assert.deepEqual(parseKey(bytes.toString('hex')), bytes);
    assert.deepEqual(parseKey(bytes.toString('base64')), bytes);
    assert.deepEqual(parseKey(`${bytes.toString('base64url')}\n`), bytes);
    assert.equal(parseKey('too short'), undefined);
    assert.equal(parseKey(randomBytes(16).toString('hex')), undefined);
  });

  it('generates <dataDir>/backup.key once, mode 0600, and says so; a restore never generates one', () => {
    const dataDir = createScratchDir('backup-key');
    const config = loadConfig({ overrides: { dataDir } });
    assert.throws(() => loadBackupKey(config, { create: false }), /no backup key/);
    const first = loadBackupKey(config, { create: true });
    assert.equal(first.generated, true);
    assert.equal(first.path, join(dataDir, 'backup.key'));
    assert.equal(statSync(first.path).mode & 0o777, 0o600);
    const again = loadBackupKey(config, { create: true });
    assert.equal(again.generated, false);
    assert.equal(again.id, first.id);
    assert.match(first.id, /^[0-9a-f]{16}$/);
  });

  it('prefers backupKey over backupKeyFile and names a bad key file', () => {
    const dir = createScratchDir('backup-key');
    const file = join(dir, 'key');
    writeFileSync(file, 'not a key');
    const bytes = randomBytes(32);
    assert.equal(loadBackupKey(loadConfig({ overrides: { dataDir: dir, backupKey: bytes.toString('hex'), backupKeyFile: file } }), { create: false }).id, keyIdOf(bytes));
    assert.throws(() => loadBackupKey(loadConfig({ overrides: { dataDir: dir, backupKeyFile: file } }), { create: false }), new RegExp(`${file}.*64 hex digits`));
  });
});

describe('file sets', () => {
  it('globs: * stays in a folder, ** spans folders, braces and classes work, dotfiles match', () => {
    const cases: [string, string, boolean][] = [
      ['*.json', 'package.json', true],
      ['*.json', 'dist/package.json', false],
      ['dist/**', 'dist/src/cli/main.js', true],
      ['**/*.lua', 'dist/src/stock/redis/lua/ack-2.lua', true],
      ['**/*.lua', 'ack-2.lua', true],
      ['data/{secrets,seckill}.json', 'data/secrets.json', true],
      ['data/{secrets,seckill}.json', 'data/other.json', false],
      ['conf/[ab].env', 'conf/b.env', true],
      ['conf/[!ab].env', 'conf/b.env', false],
      ['*', '.env', true],
      ['a?c', 'abc', true],
      ['a?c', 'a/c', false],
    ];
    for (const [glob, path, expected] of cases) assert.equal(new GlobPattern(glob).matches(path), expected, `${glob} vs ${path}`);
  });

  it('lists included files relative to the root and skips excluded folders whole', async () => {
    const root = join(createScratchDir('file-set'), 'app');
    for (const file of ['package.json', 'dist/a.js', 'dist/sub/b.js', 'node_modules/x/index.js', 'data/secrets.json', 'data/backups/old.enc', 'notes.txt']) {
      mkdirSync(join(root, file, '..'), { recursive: true });
      writeFileSync(join(root, file), file);
    }
    const listing = await listFileSet({ name: 'app', root, include: ['*.json', 'dist/**', 'data/**', 'node_modules/**'], exclude: ['node_modules/**', 'data/backups/**'] });
    assert.deepEqual(listing.files, ['data/secrets.json', 'dist/a.js', 'dist/sub/b.js', 'package.json']);
  });
});
