import { DRILLS_FOLDER, listBackups, readDrillReport } from '../backup/index.js';
import type { BackupTarget } from '../backup/index.js';
import type { DrillOutcome, TargetState } from './backup-policy.js';

/**
 * Reads what the backup policy needs from a target's catalog: its complete backups and
 * the outcome of every drill report filed there. Reports never change once written, so
 * each is read once and remembered; a policy check every few minutes then costs one
 * listing, not one read per report.
 */
export class TargetStateReader {
  /** Report key → outcome; undefined for a report that could not be read as one. */
  readonly #outcomes = new Map<string, DrillOutcome | undefined>();

  /** The target's complete backups and the outcomes of the drills filed for them. */
  async read(target: BackupTarget): Promise<TargetState> {
    const listing = await listBackups(target);
    const complete = new Set(listing.backups.map((b) => b.id));
    const drills: DrillOutcome[] = [];
    for (const key of await target.list('')) {
      const [backupId, folder, name] = key.split('/');
      // Reports of a pruned or incomplete backup prove nothing about what is left.
      if (folder !== DRILLS_FOLDER || !name?.endsWith('.json') || !complete.has(backupId)) continue;
      if (!this.#outcomes.has(key)) this.#outcomes.set(key, await readOutcome(target, backupId, name));
      const outcome = this.#outcomes.get(key);
      if (outcome) drills.push(outcome);
    }
    return { target: target.name, backups: listing.backups, drills };
  }
}

async function readOutcome(target: BackupTarget, backupId: string, name: string): Promise<DrillOutcome | undefined> {
  try {
    const report = JSON.parse(await readDrillReport(target, backupId, name)) as { ok?: unknown; finishedAt?: unknown };
    if (typeof report.finishedAt !== 'string') return undefined;
    return { backupId, finishedAt: report.finishedAt, ok: report.ok === true };
  } catch {
    // An unreadable report proves nothing: it counts as no drill.
    return undefined;
  }
}
