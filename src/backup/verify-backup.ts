import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SeckillConfig } from '../config/config.js';
import { decodingStages, decompressionError } from './artifact-open.js';
import { ArtifactError } from './artifact-error.js';
import type { ArtifactCheck } from './artifact-error.js';
import { listBackups, readManifest } from './backup-catalog.js';
import { loadBackupKey } from './backup-key.js';
import type { BackupKey } from './backup-key.js';
import type { ArtifactRecord } from './backup-manifest.js';
import { silentProgress, throttledBytes } from './backup-progress.js';
import type { ProgressListener } from './backup-progress.js';
import type { BackupTarget } from './backup-target.js';
import { formatBytes } from './byte-size.js';
import { DigestTap } from './digest-tap.js';
import { closeTarget, openTargets } from './targets/open-target.js';

/** One failed check of one artifact. */
export interface ArtifactProblem {
  readonly check: ArtifactCheck;
  readonly message: string;
}

/** What verification found for one artifact. */
export interface ArtifactVerdict {
  readonly name: string;
  readonly ok: boolean;
  /** Every check that failed, in the order they run (empty when ok). */
  readonly problems: readonly ArtifactProblem[];
  /** The problems as one line; absent when ok. */
  readonly error?: string;
}

/** What verification found for one backup on one target. */
export interface BackupVerdict {
  readonly target: string;
  readonly id: string;
  readonly ok: boolean;
  readonly artifacts: readonly ArtifactVerdict[];
  /** One line naming the first broken file and why, and what to do; absent when ok. */
  readonly error?: string;
}

/** What verification needs beyond the target and the id. */
export interface VerifyOptions {
  /** The backup key; without it encrypted artifacts fail the `key` check (sizes and checksums are still checked). */
  readonly key?: BackupKey;
  /** Where to load the key from when `key` is not given (backupKey, backupKeyFile, `<dataDir>/backup.key`). */
  readonly config?: SeckillConfig;
  readonly progress?: ProgressListener;
}

const sink = (): Writable =>
  new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });

/**
 * Fetches one artifact and runs every check on it: present, stored size and SHA-256,
 * key, authentication of every chunk, decompression, raw size and SHA-256. The stored bytes
 * are read to the end even when decoding fails early, so a flipped byte is reported both as
 * a checksum mismatch and as the authentication failure it causes.
 */
export async function verifyArtifact(target: BackupTarget, id: string, record: ArtifactRecord, options: VerifyOptions = {}): Promise<ArtifactVerdict> {
  const problems: ArtifactProblem[] = [];
  const verdict = (): ArtifactVerdict => ({
    name: record.name,
    ok: problems.length === 0,
    problems,
    ...(problems.length > 0 ? { error: problems.map((p) => p.message).join('; ') } : {}),
  });
  let stored: Readable;
  try {
    stored = await target.get(`${id}/${record.name}`);
  } catch (error) {
    problems.push({ check: 'present', message: `missing from target ${target.name}: ${(error as Error).message}` });
    return verdict();
  }

  let input: PassThrough | undefined;
  let decoded: Promise<ArtifactProblem | undefined> = Promise.resolve(undefined);
  try {
    const { stages, decompress } = decodingStages(record, options.key);
    let decompressFailure: Error | undefined;
    decompress?.once('error', (error: Error) => {
      decompressFailure = error;
    });
    input = new PassThrough();
    const rawTap = new DigestTap({ bytes: 'raw', size: record.rawSize, sha256: record.rawSha256 });
    decoded = pipeline([input, ...stages, rawTap, sink()]).then(
      () => undefined,
      (error: Error) => {
        const failure = error instanceof ArtifactError ? error : decompressFailure !== undefined ? decompressionError(decompressFailure) : error;
        return { check: failure instanceof ArtifactError ? failure.check : 'decompression', message: failure.message };
      },
    );
  } catch (error) {
    problems.push({ check: error instanceof ArtifactError ? error.check : 'key', message: (error as Error).message });
  }

  const hash = createHash('sha256');
  let size = 0;
  let decoding = input !== undefined;
  const report = options.progress ? throttledBytes(options.progress) : undefined;
  const stopped = decoded.then(() => {
    decoding = false;
  });
  try {
    for await (const chunk of stored) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
      report?.({ step: 'verify', message: `${record.name}: ${formatBytes(size)} of ${formatBytes(record.size)} read`, bytes: size });
      if (decoding && !input!.write(chunk)) await Promise.race([once(input!, 'drain'), stopped]);
    }
  } catch (error) {
    problems.push({ check: 'present', message: `reading it from target ${target.name} failed after ${size} bytes: ${(error as Error).message}` });
    input?.destroy();
    return verdict();
  }
  if (decoding) input!.end();
  const decodeProblem = await decoded;

  const sha256 = hash.digest('hex');
  if (size !== record.size) {
    problems.push({ check: 'size', message: `the stored file is ${size} bytes, the manifest says ${record.size}: it was truncated or changed` });
  }
  if (sha256 !== record.sha256) {
    problems.push({ check: 'sha256', message: `sha256 of the stored bytes differs from the manifest (${sha256} ≠ ${record.sha256}): the file is corrupt or was changed` });
  }
  if (decodeProblem !== undefined) problems.push(decodeProblem);
  return verdict();
}

/**
 * Verifies every artifact of backup `id` on `target` against its manifest. Never throws
 * for a broken backup: the verdict names each broken file and why.
 *
 * @example
 * const verdict = await verifyBackup(target, '2026-11-26T05-30-00-123Z-1f3a', { config });
 * if (!verdict.ok) console.error(verdict.error);
 */
export async function verifyBackup(target: BackupTarget, id: string, options: VerifyOptions = {}): Promise<BackupVerdict> {
  const progress = options.progress ?? silentProgress;
  if (options.key === undefined && options.config !== undefined) {
    try {
      options = { ...options, key: loadBackupKey(options.config, { create: false }) };
    } catch {
      // Verified without a key: the `key` check of each encrypted artifact says why.
    }
  }
  let manifest;
  try {
    manifest = await readManifest(target, id);
  } catch (error) {
    return { target: target.name, id, ok: false, artifacts: [], error: (error as Error).message };
  }
  const artifacts: ArtifactVerdict[] = [];
  for (const record of manifest.artifacts) {
    progress({ step: 'verify', message: `checking ${id}/${record.name} on ${target.name} (${formatBytes(record.size)})` });
    artifacts.push(await verifyArtifact(target, id, record, options));
  }
  const broken = artifacts.find((a) => !a.ok);
  return {
    target: target.name,
    id,
    ok: broken === undefined,
    artifacts,
    ...(broken !== undefined
      ? {
          error:
            `backup ${id} failed verification on target ${target.name}: ${broken.name}: ${broken.problems.map((p) => p.message).join('; ')}. ` +
            (broken.problems.every((p) => p.check === 'key')
              ? 'Configure the key the backup was made with and verify again'
              : 'Do not rely on this backup: run `seckill backup verify --all` and take a new backup'),
        }
      : {}),
  };
}

/** What `seckill backup verify` checks. */
export interface VerifyRequest {
  /** Backup ids; ignored when `all`. */
  readonly ids?: readonly string[];
  readonly all?: boolean;
  /** Only these targets (names); default every configured target. */
  readonly targets?: readonly string[];
}

/** The result of verifying several backups. */
export interface VerifyRunResult {
  readonly verdicts: readonly BackupVerdict[];
  /** Things worth knowing that are not failures: incomplete folders, a missing key. */
  readonly warnings: readonly string[];
  /** Set when any backup failed, or a requested one exists on no target. */
  readonly error?: string;
}

/**
 * Verifies the given backups (on every target holding them) or, with `all`, every complete
 * backup on every target.
 */
export async function verifyBackups(config: SeckillConfig, request: VerifyRequest, progress: ProgressListener = silentProgress): Promise<VerifyRunResult> {
  const warnings: string[] = [];
  let key: BackupKey | undefined;
  try {
    key = loadBackupKey(config, { create: false });
  } catch (error) {
    warnings.push(`${(error as Error).message}; only sizes and checksums can be verified`);
  }
  let targets: BackupTarget[];
  try {
    targets = openTargets(config.backupTargets, request.targets);
  } catch (error) {
    return { verdicts: [], warnings, error: (error as Error).message };
  }
  const verdicts: BackupVerdict[] = [];
  const errors: string[] = [];
  try {
    const found = new Set<string>();
    for (const target of targets) {
      let listing;
      try {
        listing = await listBackups(target);
      } catch (error) {
        errors.push((error as Error).message);
        continue;
      }
      for (const incomplete of listing.incomplete) {
        warnings.push(`target ${target.name} holds an incomplete backup ${incomplete.id} (${incomplete.reason}); it is not a backup; \`seckill backup prune --apply\` removes it after a day`);
      }
      const ids = request.all ? listing.backups.map((b) => b.id) : (request.ids ?? []).filter((id) => listing.backups.some((b) => b.id === id));
      for (const id of request.all ? [] : (request.ids ?? [])) {
        if (listing.incomplete.some((i) => i.id === id)) {
          verdicts.push({ target: target.name, id, ok: false, artifacts: [], error: `backup ${id} on target ${target.name} is incomplete (no manifest): its upload did not finish; it cannot be restored` });
          found.add(id);
        }
      }
      for (const id of ids) {
        found.add(id);
        progress({ step: 'verify', message: `verifying backup ${id} on ${target.name}` });
        verdicts.push(await verifyBackup(target, id, { key, progress }));
      }
    }
    for (const id of request.all ? [] : (request.ids ?? [])) {
      if (!found.has(id)) errors.push(`there is no backup ${id} on ${targets.map((t) => t.name).join(', ')}; see \`seckill backup list\``);
    }
  } finally {
    for (const target of targets) closeTarget(target);
  }
  const failed = verdicts.filter((v) => !v.ok);
  errors.push(...failed.map((v) => v.error ?? `backup ${v.id} failed verification on ${v.target}`));
  return { verdicts, warnings, ...(errors.length > 0 ? { error: errors.join('\n') } : {}) };
}
