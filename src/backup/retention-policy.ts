/**
 * Which backups to keep: the grandfather-father-son rules of restic's `forget`, applied
 * the same way, on UTC times.
 *
 * Backups are walked newest first. Each rule with a count left looks at the backup's
 * bucket (every backup its own bucket for `keepLast`; its UTC hour, day, ISO week or month
 * for the others): a bucket not seen before keeps the backup (the newest of each bucket)
 * and uses up one of the rule's count. As in restic, when a rule still has count left at
 * the oldest backup, that one is kept too, so the history kept is as long as possible. A
 * backup kept by several rules is kept once, with every reason. A policy of all zeros keeps
 * everything (restic's "empty policy"), so a missing configuration never deletes a backup.
 *
 * On top of restic: the newest backup that passed a drill is always kept — it is the newest
 * one known to restore (invariant I6).
 */

/** How many backups of each kind to keep; 0 turns a rule off. */
export interface RetentionPolicy {
  readonly keepLast: number;
  readonly keepHourly: number;
  readonly keepDaily: number;
  readonly keepWeekly: number;
  readonly keepMonthly: number;
}

/** A backup as retention sees it. */
export interface RetentionCandidate {
  readonly id: string;
  /** When its snapshot was taken (ISO 8601). */
  readonly createdAt: string;
  /** True when a drill restored it and every check passed. */
  readonly passedDrill?: boolean;
}

/** The verdict on one backup. */
export interface RetentionDecision {
  readonly id: string;
  readonly createdAt: string;
  readonly keep: boolean;
  /** Why it is kept (`last`, `hourly`, `daily`, `weekly`, `monthly`, `newest drilled`); empty when deleted. */
  readonly reasons: readonly string[];
}

/** The policy the configuration asks for. */
export function retentionPolicyOf(config: {
  readonly backupKeepLast: number;
  readonly backupKeepHourly: number;
  readonly backupKeepDaily: number;
  readonly backupKeepWeekly: number;
  readonly backupKeepMonthly: number;
}): RetentionPolicy {
  return {
    keepLast: config.backupKeepLast,
    keepHourly: config.backupKeepHourly,
    keepDaily: config.backupKeepDaily,
    keepWeekly: config.backupKeepWeekly,
    keepMonthly: config.backupKeepMonthly,
  };
}

/** ISO 8601 week-numbering year and week of a UTC time, as year × 100 + week. */
export function isoWeekBucket(time: Date): number {
  const day = new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate()));
  // The Thursday of this week decides its year (ISO 8601); weeks start on Monday.
  const weekday = day.getUTCDay() === 0 ? 7 : day.getUTCDay();
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.floor((day.getTime() - yearStart) / 86_400_000 / 7) + 1;
  return day.getUTCFullYear() * 100 + week;
}

type Bucketer = (time: Date, index: number) => number;

const RULES: readonly { readonly reason: string; readonly count: keyof RetentionPolicy; readonly bucket: Bucketer }[] = [
  { reason: 'last', count: 'keepLast', bucket: (_time, index) => index },
  { reason: 'hourly', count: 'keepHourly', bucket: (t) => t.getUTCFullYear() * 1_000_000 + (t.getUTCMonth() + 1) * 10_000 + t.getUTCDate() * 100 + t.getUTCHours() },
  { reason: 'daily', count: 'keepDaily', bucket: (t) => t.getUTCFullYear() * 10_000 + (t.getUTCMonth() + 1) * 100 + t.getUTCDate() },
  { reason: 'weekly', count: 'keepWeekly', bucket: isoWeekBucket },
  { reason: 'monthly', count: 'keepMonthly', bucket: (t) => t.getUTCFullYear() * 100 + (t.getUTCMonth() + 1) },
];

/** The reason given for the drill rule. */
export const NEWEST_DRILLED = 'newest drilled';

/**
 * Decides for each backup whether the policy keeps it, newest first.
 *
 * @example
 * const decisions = applyRetention(backups, { keepLast: 7, keepHourly: 24, keepDaily: 7, keepWeekly: 4, keepMonthly: 12 });
 * const doomed = decisions.filter((d) => !d.keep);
 */
export function applyRetention(backups: readonly RetentionCandidate[], policy: RetentionPolicy): RetentionDecision[] {
  const newestFirst = [...backups].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const empty = RULES.every((rule) => policy[rule.count] <= 0);
  const left = RULES.map((rule) => policy[rule.count]);
  const last = RULES.map(() => Number.NaN);
  const newestDrilled = newestFirst.find((b) => b.passedDrill === true)?.id;
  return newestFirst.map((backup, index) => {
    const reasons: string[] = [];
    if (empty) reasons.push('no retention rule is set');
    const time = new Date(backup.createdAt);
    RULES.forEach((rule, r) => {
      if (empty || left[r]! <= 0) return;
      const bucket = rule.bucket(time, index);
      if (bucket !== last[r] || index === newestFirst.length - 1) {
        last[r] = bucket;
        left[r]! -= 1;
        reasons.push(rule.reason);
      }
    });
    if (backup.id === newestDrilled) reasons.push(NEWEST_DRILLED);
    return { id: backup.id, createdAt: backup.createdAt, keep: reasons.length > 0, reasons };
  });
}
