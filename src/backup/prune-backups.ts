import type { SeckillConfig } from '../config/config.js';
import { deleteBackup, listBackups, passedDrillIds } from './backup-catalog.js';
import { backupIdTime } from './backup-id.js';
import type { BackupManifest } from './backup-manifest.js';
import { silentProgress } from './backup-progress.js';
import type { ProgressListener } from './backup-progress.js';
import type { BackupTarget } from './backup-target.js';
import { applyRetention, retentionPolicyOf } from './retention-policy.js';
import type { RetentionDecision, RetentionPolicy } from './retention-policy.js';
import { closeTarget, openTargets } from './targets/open-target.js';

/** An incomplete folder (no manifest) is removed once it is this old: no backup runs that long. */
export const INCOMPLETE_GRACE_MS = 24 * 3600_000;

/** What prune does with one incomplete folder. */
export interface IncompleteDecision {
  readonly id: string;
  readonly keep: boolean;
  readonly reason: string;
}

/** The plan (and, when applied, the outcome) for one target. */
export interface TargetPrune {
  readonly target: string;
  readonly location: string;
  /** Complete backups, newest first, with the rules that keep them. */
  readonly decisions: readonly (RetentionDecision & { readonly contents: string })[];
  readonly incomplete: readonly IncompleteDecision[];
  /** Ids actually deleted (only when applied). */
  readonly deleted: readonly string[];
  readonly errors: readonly string[];
}

/** The result of `seckill backup prune`. */
export interface PruneResult {
  /** False for a dry run: nothing was deleted. */
  readonly applied: boolean;
  readonly policy: RetentionPolicy;
  readonly targets: readonly TargetPrune[];
  readonly error?: string;
}

/** What `pruneBackups`/`pruneTarget` do. */
export interface PruneOptions {
  /** Delete for real; default false (a dry run that only reports). */
  readonly apply?: boolean;
  readonly targets?: readonly string[];
  /** The present, for the age of incomplete folders; default now. */
  readonly now?: Date;
}

/** What a backup holds, as the group it is pruned within. */
function contentsOf(manifest: BackupManifest): string {
  return [manifest.contents.database ? 'database' : '', manifest.contents.files ? 'files' : ''].filter(Boolean).join('+') || 'empty';
}

/**
 * Applies the retention policy to one target. Backups are grouped by what they hold
 * (database, files, or both) and the policy applies to each group on its own, as restic
 * groups by host and paths: hourly file-only backups must not push out the daily database
 * backups. The newest backup that passed a drill is never deleted. Incomplete folders
 * older than a day are removed as well.
 */
export async function pruneTarget(target: BackupTarget, policy: RetentionPolicy, options: PruneOptions = {}, progress: ProgressListener = silentProgress): Promise<TargetPrune> {
  const now = options.now ?? new Date();
  const listing = await listBackups(target);
  const passed = await passedDrillIds(target);
  const groups = new Map<string, BackupManifest[]>();
  for (const manifest of listing.backups) {
    const group = groups.get(contentsOf(manifest)) ?? [];
    group.push(manifest);
    groups.set(contentsOf(manifest), group);
  }
  const decisions = [...groups].flatMap(([contents, manifests]) =>
    applyRetention(
      manifests.map((m) => ({ id: m.id, createdAt: m.createdAt, passedDrill: passed.has(m.id) })),
      policy,
    ).map((decision) => ({ ...decision, contents })),
  );
  decisions.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  const incomplete = listing.incomplete.map((folder): IncompleteDecision => {
    const age = now.getTime() - (backupIdTime(folder.id)?.getTime() ?? now.getTime());
    return age > INCOMPLETE_GRACE_MS
      ? { id: folder.id, keep: false, reason: `incomplete (${folder.reason}) and over a day old` }
      : { id: folder.id, keep: true, reason: `incomplete but less than a day old: it may still be uploading` };
  });
  const deleted: string[] = [];
  const errors: string[] = [];
  if (options.apply) {
    const doomed = [...decisions.filter((d) => !d.keep).map((d) => d.id), ...incomplete.filter((i) => !i.keep).map((i) => i.id)];
    for (const id of doomed) {
      progress({ step: 'prune', message: `deleting backup ${id} from ${target.name}` });
      try {
        await deleteBackup(target, id);
        deleted.push(id);
      } catch (error) {
        errors.push(`deleting ${id} from ${target.name} failed: ${(error as Error).message}`);
      }
    }
  }
  return { target: target.name, location: target.location, decisions, incomplete, deleted, errors };
}

/**
 * `seckill backup prune`: the retention policy from configuration on every target (or the
 * named ones). A dry run unless `apply`.
 */
export async function pruneBackups(config: SeckillConfig, options: PruneOptions = {}, progress: ProgressListener = silentProgress): Promise<PruneResult> {
  const policy = retentionPolicyOf(config);
  let targets: BackupTarget[];
  try {
    targets = openTargets(config.backupTargets, options.targets);
  } catch (error) {
    return { applied: false, policy, targets: [], error: (error as Error).message };
  }
  const results: TargetPrune[] = [];
  const errors: string[] = [];
  try {
    for (const target of targets) {
      progress({ step: 'prune', message: `reading the catalog of ${target.name}` });
      try {
        const result = await pruneTarget(target, policy, options, progress);
        results.push(result);
        errors.push(...result.errors);
      } catch (error) {
        errors.push(`pruning ${target.name} failed: ${(error as Error).message}`);
      }
    }
  } finally {
    for (const target of targets) closeTarget(target);
  }
  return { applied: options.apply === true, policy, targets: results, ...(errors.length > 0 ? { error: errors.join('\n') } : {}) };
}
