import { randomBytes } from 'node:crypto';

/** `2026-11-26T05-30-00-123Z-1f3a`: sorts by time as text, unique across hosts taking backups at once. */
const BACKUP_ID = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z-[0-9a-f]{4}$/;

/**
 * A new backup id for a snapshot taken at `at`: its UTC time with `:` and `.` made safe
 * for file and object names, and 4 random hex digits.
 *
 * @example
 * newBackupId(new Date('2026-11-26T05:30:00.123Z')); // '2026-11-26T05-30-00-123Z-1f3a'
 */
export function newBackupId(at: Date): string {
  return `${at.toISOString().replace(/[:.]/g, '-')}-${randomBytes(2).toString('hex')}`;
}

/** True for a string shaped like a backup id (so stray folders on a target are ignored). */
export function isBackupId(text: string): boolean {
  return BACKUP_ID.test(text);
}

/** The time a backup id encodes, or undefined when `id` is not one. */
export function backupIdTime(id: string): Date | undefined {
  const match = BACKUP_ID.exec(id);
  if (match === null) return undefined;
  const [, day, hours, minutes, seconds, millis] = match;
  return new Date(`${day}T${hours}:${minutes}:${seconds}.${millis}Z`);
}
