import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SeckillConfig } from '../config/config.js';

/** File in the data folder that holds the generated backup key when none is configured. */
export const GENERATED_KEY_FILE = 'backup.key';

/** The AES-256 key that encrypts backup artifacts, and where it came from. */
export interface BackupKey {
  readonly key: Buffer;
  /** First 16 hex digits of SHA-256(key): names the key in manifests and headers without revealing it. */
  readonly id: string;
  readonly source: 'backupKey' | 'backupKeyFile' | 'generated';
  /** The file the key was read from or generated into. */
  readonly path?: string;
  /** True when this call created the key file: the operator must copy it off this machine now. */
  readonly generated: boolean;
}

/** The id of a key: what manifests record instead of the key. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** A 32-byte key written as 64 hex digits or base64 (with or without padding); undefined otherwise. */
export function parseKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-f]{64}$/i.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    const bytes = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === 32) return bytes;
  }
  return undefined;
}

function fromFile(path: string, source: BackupKey['source'], generated: boolean): BackupKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the backup key file ${path}: ${(error as Error).message}; check backupKeyFile (SECKILL_BACKUP_KEY_FILE)`);
  }
  const key = parseKey(text);
  if (key === undefined) {
    throw new Error(`the backup key file ${path} does not hold a 32-byte key as 64 hex digits or base64; generate one with \`openssl rand -hex 32\``);
  }
  return { key, id: keyIdOf(key), source, path, generated };
}

/**
 * The backup key: `backupKey` (SECKILL_BACKUP_KEY) wins, then the file `backupKeyFile`, then
 * `<dataDir>/backup.key`. When `create` is true and none exists, a new random key is written
 * there (mode 0600) and `generated` is true; the caller must then warn loudly that a backup
 * encrypted with a key that lives only on the machine it protects is lost with that machine.
 * Restores and verification pass `create: false`: a new key could not decrypt old backups.
 *
 * @example
 * const key = loadBackupKey(config, { create: true });
 * if (key.generated) warn(`copy ${key.path} off this machine`);
 */
export function loadBackupKey(config: SeckillConfig, options: { readonly create: boolean }): BackupKey {
  if (config.backupKey !== '') {
    const key = parseKey(config.backupKey);
    if (key === undefined) {
      throw new Error('backupKey (SECKILL_BACKUP_KEY) must be a 32-byte key as 64 hex digits or base64; generate one with `openssl rand -hex 32`');
    }
    return { key, id: keyIdOf(key), source: 'backupKey', generated: false };
  }
  if (config.backupKeyFile !== '') return fromFile(config.backupKeyFile, 'backupKeyFile', false);
  const path = join(config.dataDir, GENERATED_KEY_FILE);
  if (existsSync(path)) return fromFile(path, 'generated', false);
  if (!options.create) {
    throw new Error(
      `no backup key: neither backupKey (SECKILL_BACKUP_KEY) nor backupKeyFile (SECKILL_BACKUP_KEY_FILE) is set and ${path} does not exist; ` +
        'set one of them to the key the backups were encrypted with (its id is in each manifest as encryption.keyId)',
    );
  }
  mkdirSync(config.dataDir, { recursive: true });
  // wx: two first backups racing must not each write a different key.
  try {
    writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return fromFile(path, 'generated', false);
    throw error;
  }
  chmodSync(path, 0o600);
  return fromFile(path, 'generated', true);
}

/** The warning to show, loudly, when {@link loadBackupKey} generated a key. */
export function generatedKeyWarning(key: BackupKey): string {
  return (
    `a new backup encryption key (id ${key.id}) was generated into ${key.path}. ` +
    'Backups are useless without it: copy it NOW to a place off this machine (a password manager or a vault), ' +
    'and set backupKeyFile or SECKILL_BACKUP_KEY on every machine that restores or drills'
  );
}
