import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SeckillConfig } from '../config/config.js';
import { openArtifact } from './artifact-open.js';
import { readManifest } from './backup-catalog.js';
import { loadBackupKey } from './backup-key.js';
import { silentProgress } from './backup-progress.js';
import type { ProgressListener } from './backup-progress.js';
import { fileSetExtractor } from './file-set-archive.js';
import { closeTarget, openTargets } from './targets/open-target.js';

/** What to extract, and where. */
export interface RestoreFilesOptions {
  readonly id: string;
  /** A folder; each file set is extracted into `<folder>/<file set name>/`, which must be empty or absent. */
  readonly to: string;
  readonly target?: string;
  /** Only this file set. */
  readonly fileSet?: string;
}

/** The result of extracting file sets. */
export interface RestoreFilesResult {
  readonly ok: boolean;
  readonly id: string;
  /** Each file set and the folder it was extracted into. */
  readonly extracted: readonly { readonly fileSet: string; readonly folder: string; readonly files: number }[];
  readonly durationMs: number;
  readonly error?: string;
}

/**
 * Extracts a backup's file sets (program and configuration files) into a folder, checking
 * each archive while it streams. It never writes over the live files: it extracts beside
 * them and the operator copies what is needed, so a bad archive cannot break a running
 * installation.
 *
 * @example
 * await restoreFiles(config, { id, to: '/tmp/restored-files' });
 */
export async function restoreFiles(config: SeckillConfig, options: RestoreFilesOptions, progress: ProgressListener = silentProgress): Promise<RestoreFilesResult> {
  const started = Date.now();
  const extracted: { fileSet: string; folder: string; files: number }[] = [];
  const result = (error?: string): RestoreFilesResult => ({ ok: error === undefined, id: options.id, extracted, durationMs: Date.now() - started, ...(error ? { error } : {}) });
  let targets;
  try {
    targets = openTargets(config.backupTargets, options.target === undefined ? undefined : [options.target]);
  } catch (error) {
    return result((error as Error).message);
  }
  try {
    let found;
    const problems: string[] = [];
    for (const target of targets) {
      try {
        found = { target, manifest: await readManifest(target, options.id) };
        break;
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    if (found === undefined) return result(problems.join('; '));
    const { target, manifest } = found;
    const archives = manifest.artifacts.filter((a) => a.role === 'files' && (options.fileSet === undefined || a.fileSet === options.fileSet));
    if (archives.length === 0) {
      return result(`backup ${options.id} holds no ${options.fileSet ? `file set ${options.fileSet}` : 'file sets'}; its artifacts: ${manifest.artifacts.map((a) => a.name).join(', ')}`);
    }
    const key = loadBackupKey(config, { create: false });
    for (const archive of archives) {
      const folder = join(resolve(options.to), archive.fileSet ?? archive.name);
      await mkdir(folder, { recursive: true });
      if ((await readdir(folder)).length > 0) return result(`refusing to extract into ${folder}: it is not empty; pick an empty folder`);
      progress({ step: 'restore', message: `extracting file set ${archive.fileSet} (${archive.fileCount ?? '?'} files) from ${target.name} into ${folder}` });
      const raw = openArtifact(await target.get(`${options.id}/${archive.name}`), archive, key);
      const drain = new Writable({ write: (_chunk, _encoding, callback) => callback() });
      await pipeline(raw, fileSetExtractor(folder), drain);
      extracted.push({ fileSet: archive.fileSet ?? archive.name, folder, files: archive.fileCount ?? 0 });
    }
    return result();
  } catch (error) {
    return result(`extracting the file sets of backup ${options.id} failed: ${(error as Error).message}; the folder may hold part of them`);
  } finally {
    for (const target of targets) closeTarget(target);
  }
}
