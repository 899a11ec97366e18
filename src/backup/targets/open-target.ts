import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackupTargetSetting } from '../../config/config.js';
import type { BackupTarget } from '../backup-target.js';
import { LocalFolderTarget } from './local-folder-target.js';
import { redactS3Url, S3Target } from './s3-target.js';

/**
 * The target a configured `{ name, url }` names: `s3://…` is S3-compatible object storage;
 * `file:///path` or a plain path is a local folder (relative paths are taken from the
 * working folder).
 *
 * @example
 * const target = openTarget({ name: 'offsite', url: 's3://key:secret@bucket/seckill?region=eu-west-1' });
 */
export function openTarget(setting: BackupTargetSetting): BackupTarget {
  const { name, url } = setting;
  if (url.startsWith('s3://')) return new S3Target(name, url);
  if (url.startsWith('file://')) return new LocalFolderTarget(name, fileURLToPath(url));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new Error(`backup target ${name} has an unsupported URL ${redactS3Url(url)}: use a folder path, file:///path or s3://bucket/prefix`);
  }
  return new LocalFolderTarget(name, resolve(url));
}

/**
 * The configured targets, all of them or those named (in configuration order).
 *
 * @throws Error naming an unknown target and the configured ones.
 */
export function openTargets(settings: readonly BackupTargetSetting[], names?: readonly string[]): BackupTarget[] {
  const known = settings.map((s) => s.name);
  for (const name of names ?? []) {
    if (!known.includes(name)) {
      throw new Error(`there is no backup target named ${name}; configured targets: ${known.join(', ') || 'none'} (backupTargets, SECKILL_BACKUP_TARGETS)`);
    }
  }
  const chosen = names === undefined || names.length === 0 ? settings : settings.filter((s) => names.includes(s.name));
  return chosen.map(openTarget);
}

/** Releases what a target holds open (an S3 client's sockets); a no-op for folders. */
export function closeTarget(target: BackupTarget): void {
  (target as Partial<{ close(): void }>).close?.();
}
