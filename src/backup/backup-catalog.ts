import { Readable } from 'node:stream';
import { isBackupId } from './backup-id.js';
import { MANIFEST_FILE } from './backup-manifest.js';
import type { BackupManifest } from './backup-manifest.js';
import type { BackupTarget } from './backup-target.js';

/** Folder inside a backup's folder where drills file their reports. */
export const DRILLS_FOLDER = 'drills';

/** Largest manifest or report read into memory; anything bigger is not ours. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/** A folder on a target that looks like a backup but has no (readable) manifest: never a backup. */
export interface IncompleteBackup {
  readonly id: string;
  /** What the folder holds. */
  readonly keys: readonly string[];
  readonly reason: string;
}

/** A complete backup (it has a manifest) one of whose artifacts is gone from the target. */
export interface DamagedBackup {
  readonly id: string;
  readonly missing: readonly string[];
}

/** What one target holds. */
export interface CatalogListing {
  readonly target: string;
  readonly location: string;
  /** Backups with a manifest, oldest first (by id). */
  readonly backups: readonly BackupManifest[];
  /** Folders without a manifest: uploads that failed, were cut off, or are still running. */
  readonly incomplete: readonly IncompleteBackup[];
  /** Complete backups whose manifest names an artifact the target no longer has. */
  readonly damaged: readonly DamagedBackup[];
}

/** Reads a small text file from a target. */
export async function readText(target: BackupTarget, key: string): Promise<string> {
  const stream: Readable = await target.get(key);
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    length += (chunk as Buffer).length;
    if (length > MAX_DOCUMENT_BYTES) {
      stream.destroy();
      throw new Error(`${key} on target ${target.name} is over ${MAX_DOCUMENT_BYTES} bytes: it is not a Seckill document`);
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Stores a small text file on a target. */
export async function writeText(target: BackupTarget, key: string, text: string | Buffer): Promise<void> {
  await target.put(key, Readable.from([Buffer.from(text)]));
}

function checkManifest(value: unknown, id: string): BackupManifest {
  const manifest = value as Partial<BackupManifest> | null;
  if (manifest === null || typeof manifest !== 'object') throw new Error('it is not a JSON object');
  if (manifest.formatVersion !== 1) throw new Error(`its formatVersion is ${String(manifest.formatVersion)}, this Seckill reads 1`);
  if (manifest.id !== id) throw new Error(`it names backup ${String(manifest.id)}, not ${id}`);
  if (!Array.isArray(manifest.artifacts) || manifest.artifacts.some((a) => typeof a?.name !== 'string' || typeof a.sha256 !== 'string' || typeof a.size !== 'number')) {
    throw new Error('its artifact list is malformed');
  }
  return manifest as BackupManifest;
}

/**
 * The manifest of backup `id` on `target`.
 *
 * @throws Error when there is none (the backup is incomplete or does not exist) or it is malformed.
 */
export async function readManifest(target: BackupTarget, id: string): Promise<BackupManifest> {
  const key = `${id}/${MANIFEST_FILE}`;
  let text: string;
  try {
    text = await readText(target, key);
  } catch (error) {
    if (!(await target.exists(key).catch(() => true))) {
      const held = await target.list(`${id}/`).catch(() => []);
      throw new Error(
        held.length > 0
          ? `backup ${id} on target ${target.name} is incomplete (no ${MANIFEST_FILE}): its upload did not finish; it cannot be used — take a new backup`
          : `there is no backup ${id} on target ${target.name} (${target.location}); see \`seckill backup list\``,
      );
    }
    throw error;
  }
  try {
    return checkManifest(JSON.parse(text), id);
  } catch (error) {
    throw new Error(`the manifest of backup ${id} on target ${target.name} is unreadable: ${(error as Error).message}`);
  }
}

/** Writes a backup's manifest: the last step of a backup, which makes it complete. */
export async function writeManifest(target: BackupTarget, manifest: BackupManifest): Promise<void> {
  await writeText(target, `${manifest.id}/${MANIFEST_FILE}`, `${JSON.stringify(manifest, null, 2)}\n`);
}

/**
 * Every backup on a target: complete ones (with a manifest, oldest first), and folders
 * without one reported apart as incomplete — a partial upload never counts as a backup.
 *
 * @example
 * const { backups, incomplete } = await listBackups(target);
 */
export async function listBackups(target: BackupTarget): Promise<CatalogListing> {
  const byId = new Map<string, string[]>();
  for (const key of await target.list('')) {
    const id = key.slice(0, key.indexOf('/'));
    if (!isBackupId(id)) continue;
    const keys = byId.get(id) ?? [];
    keys.push(key);
    byId.set(id, keys);
  }
  const backups: BackupManifest[] = [];
  const incomplete: IncompleteBackup[] = [];
  const damaged: DamagedBackup[] = [];
  for (const id of [...byId.keys()].sort()) {
    const keys = byId.get(id)!;
    if (!keys.includes(`${id}/${MANIFEST_FILE}`)) {
      incomplete.push({ id, keys, reason: `no ${MANIFEST_FILE}: the upload failed, was cut off, or is still running` });
      continue;
    }
    let manifest: BackupManifest;
    try {
      manifest = await readManifest(target, id);
    } catch (error) {
      incomplete.push({ id, keys, reason: (error as Error).message });
      continue;
    }
    backups.push(manifest);
    const missing = manifest.artifacts.map((a) => a.name).filter((name) => !keys.includes(`${id}/${name}`));
    if (missing.length > 0) damaged.push({ id, missing });
  }
  return { target: target.name, location: target.location, backups, incomplete, damaged };
}

/** Every key of one backup (artifacts, manifest, drill reports). */
export async function backupKeys(target: BackupTarget, id: string): Promise<string[]> {
  return target.list(`${id}/`);
}

/**
 * Deletes a backup from a target, its manifest first: a deletion cut short leaves an
 * incomplete folder, never a complete-looking backup with files missing.
 */
export async function deleteBackup(target: BackupTarget, id: string): Promise<void> {
  const keys = await backupKeys(target, id);
  const manifest = `${id}/${MANIFEST_FILE}`;
  if (keys.includes(manifest)) await target.delete([manifest]);
  const rest = keys.filter((key) => key !== manifest);
  if (rest.length > 0) await target.delete(rest);
}

/**
 * Files a drill report under `<backupId>/drills/<name>` (e.g. `2026-…-drill.json`) and
 * returns the key it was stored under.
 *
 * @example
 * await writeDrillReport(target, backup.id, `${stamp}.json`, JSON.stringify(report));
 */
export async function writeDrillReport(target: BackupTarget, backupId: string, name: string, body: string | Buffer): Promise<string> {
  const key = `${backupId}/${DRILLS_FOLDER}/${checkedReportName(name)}`;
  await writeText(target, key, body);
  return key;
}

function checkedReportName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`invalid drill report name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-'`);
  return name;
}

/** Names of the drill reports filed for a backup, sorted. */
export async function listDrillReports(target: BackupTarget, backupId: string): Promise<string[]> {
  const prefix = `${backupId}/${DRILLS_FOLDER}/`;
  return (await target.list(prefix)).map((key) => key.slice(prefix.length));
}

/** The text of one drill report. */
export async function readDrillReport(target: BackupTarget, backupId: string, name: string): Promise<string> {
  return readText(target, `${backupId}/${DRILLS_FOLDER}/${name}`);
}

/**
 * True when a drill restored this backup and passed: some JSON report under
 * `<backupId>/drills/` says `"ok": true`. Unreadable reports count as not passed.
 */
export async function hasPassedDrill(target: BackupTarget, backupId: string): Promise<boolean> {
  for (const name of await listDrillReports(target, backupId)) {
    if (!name.endsWith('.json')) continue;
    try {
      const report = JSON.parse(await readDrillReport(target, backupId, name)) as { ok?: unknown };
      if (report.ok === true) return true;
    } catch {
      // A damaged report proves nothing; look at the others.
    }
  }
  return false;
}

/**
 * Ids of the backups on a target that passed a drill (a JSON report under `drills/` saying
 * `"ok": true`), from one listing of the target rather than one per backup.
 */
export async function passedDrillIds(target: BackupTarget): Promise<Set<string>> {
  const passed = new Set<string>();
  const reports = (await target.list('')).filter((key) => key.split('/')[1] === DRILLS_FOLDER && key.endsWith('.json'));
  for (const key of reports) {
    const id = key.slice(0, key.indexOf('/'));
    if (passed.has(id)) continue;
    try {
      if ((JSON.parse(await readText(target, key)) as { ok?: unknown }).ok === true) passed.add(id);
    } catch {
      // An unreadable report proves nothing.
    }
  }
  return passed;
}
