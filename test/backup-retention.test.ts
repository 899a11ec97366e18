import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { listBackups, writeDrillReport, writeManifest } from '../src/backup/backup-catalog.js';
import { newBackupId } from '../src/backup/backup-id.js';
import type { BackupManifest } from '../src/backup/backup-manifest.js';
import { pruneTarget } from '../src/backup/prune-backups.js';
import { applyRetention, NEWEST_DRILLED } from '../src/backup/retention-policy.js';
import type { RetentionCandidate, RetentionPolicy } from '../src/backup/retention-policy.js';
import { LocalFolderTarget } from '../src/backup/targets/local-folder-target.js';
import { createScratchDir } from './support/scratch-dir.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** One backup every six hours for 400 days, starting 03:00 UTC on 2025-01-01 (so it crosses a year and ISO week 1). */
function calendar(days: number, everyHours: number, start = Date.UTC(2025, 0, 1, 3)): RetentionCandidate[] {
  const backups: RetentionCandidate[] = [];
  for (let t = start; t < start + days * DAY; t += everyHours * HOUR) {
    backups.push({ id: `b-${new Date(t).toISOString()}`, createdAt: new Date(t).toISOString() });
  }
  return backups;
}

/** The Monday (UTC) that starts the week of `iso`: one ISO week, one Monday. */
function mondayOf(iso: string): string {
  const day = new Date(iso.slice(0, 10));
  const sinceMonday = (day.getUTCDay() + 6) % 7;
  return new Date(day.getTime() - sinceMonday * DAY).toISOString().slice(0, 10);
}

const BUCKETS: Record<Exclude<keyof RetentionPolicy, 'keepLast'>, (iso: string) => string> = {
  keepHourly: (iso) => iso.slice(0, 13),
  keepDaily: (iso) => iso.slice(0, 10),
  keepWeekly: mondayOf,
  keepMonthly: (iso) => iso.slice(0, 7),
};

/**
 * What restic's rules keep, worked out the long way: for each rule, group every backup
 * into its calendar bucket, take the n newest buckets and the newest backup of each; when
 * fewer than n buckets are used up before the oldest backup, the oldest is kept too.
 */
function expectedKept(backups: readonly RetentionCandidate[], policy: RetentionPolicy): Set<string> {
  const newestFirst = [...backups].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const kept = new Set<string>();
  const oldest = newestFirst[newestFirst.length - 1]!;
  if (Object.values(policy).every((n) => n === 0)) return new Set(backups.map((b) => b.id));
  if (policy.keepLast > 0) {
    for (const b of newestFirst.slice(0, policy.keepLast)) kept.add(b.id);
  }
  for (const [rule, bucketOf] of Object.entries(BUCKETS) as [keyof typeof BUCKETS, (iso: string) => string][]) {
    const n = policy[rule];
    if (n <= 0) continue;
    const newestPerBucket = new Map<string, RetentionCandidate>();
    for (const b of newestFirst) if (!newestPerBucket.has(bucketOf(b.createdAt))) newestPerBucket.set(bucketOf(b.createdAt), b);
    const buckets = [...newestPerBucket.keys()].sort().reverse();
    for (const bucket of buckets.slice(0, n)) kept.add(newestPerBucket.get(bucket)!.id);
    // Buckets started before the oldest backup is reached: if fewer than n, it is kept too.
    const bucketsBeforeOldest = new Set(newestFirst.slice(0, -1).map((b) => bucketOf(b.createdAt))).size;
    if (bucketsBeforeOldest < n) kept.add(oldest.id);
  }
  return kept;
}

const POLICIES: readonly RetentionPolicy[] = [
  { keepLast: 7, keepHourly: 24, keepDaily: 7, keepWeekly: 4, keepMonthly: 12 },
  { keepLast: 0, keepHourly: 0, keepDaily: 30, keepWeekly: 52, keepMonthly: 24 },
  { keepLast: 3, keepHourly: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 },
  { keepLast: 0, keepHourly: 48, keepDaily: 0, keepWeekly: 60, keepMonthly: 2 },
  { keepLast: 0, keepHourly: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 },
];

describe('retention policy', () => {
  const backups = calendar(400, 6);

  for (const policy of POLICIES) {
    it(`keeps exactly what restic's rules keep over 400 days of backups every 6 h: ${JSON.stringify(policy)}`, () => {
      const decisions = applyRetention(backups, policy);
      assert.equal(decisions.length, backups.length);
      const kept = new Set(decisions.filter((d) => d.keep).map((d) => d.id));
      const expected = expectedKept(backups, policy);
      assert.deepEqual([...kept].sort(), [...expected].sort());
      for (const d of decisions) assert.equal(d.keep, d.reasons.length > 0, `${d.id}: kept with reasons ${d.reasons}`);
    });
  }

  it('counts a backup kept by several rules once, listing every rule', () => {
    const decisions = applyRetention(backups, POLICIES[0]!);
    const newest = decisions[0]!;
    assert.deepEqual(newest.reasons, ['last', 'hourly', 'daily', 'weekly', 'monthly']);
    assert.equal(decisions.filter((d) => d.keep).length, expectedKept(backups, POLICIES[0]!).size);
  });

  it('never deletes the newest backup that passed a drill, and only that one for the drill rule', () => {
    const drilledOld = backups[100]!.id;
    const drilledNewer = backups[400]!.id;
    const withDrills = backups.map((b) => (b.id === drilledOld || b.id === drilledNewer ? { ...b, passedDrill: true } : b));
    const policy: RetentionPolicy = { keepLast: 2, keepHourly: 0, keepDaily: 3, keepWeekly: 0, keepMonthly: 0 };
    const decisions = new Map(applyRetention(withDrills, policy).map((d) => [d.id, d]));
    assert.equal(decisions.get(drilledNewer)!.keep, true);
    assert.deepEqual(decisions.get(drilledNewer)!.reasons, [NEWEST_DRILLED]);
    assert.equal(decisions.get(drilledOld)!.keep, false, 'an older drilled backup follows the policy');
    const expected = expectedKept(backups, policy);
    expected.add(drilledNewer);
    assert.deepEqual(
      [...decisions.values()].filter((d) => d.keep).map((d) => d.id).sort(),
      [...expected].sort(),
    );
  });
});

function manifestAt(createdAt: Date): BackupManifest {
  const id = newBackupId(createdAt);
  return {
    formatVersion: 1,
    id,
    createdAt: createdAt.toISOString(),
    completedAt: createdAt.toISOString(),
    durationMs: 1,
    contents: { database: true, files: false },
    artifacts: [{ name: 'database.sqlite.zst.enc', role: 'database', size: 3, sha256: 'x', rawSize: 3, rawSha256: 'y', compression: 'zstd' }],
    origin: { host: 'test', seckillVersion: '0' },
  };
}

describe('prune on a target', () => {
  it('deletes what the policy does not keep (manifest first), keeps the newest drilled backup, and clears day-old incomplete folders', async () => {
    const target = new LocalFolderTarget('local', createScratchDir('prune'));
    const now = new Date(Date.UTC(2026, 5, 30, 12));
    const manifests: BackupManifest[] = [];
    for (let t = now.getTime() - 20 * DAY; t < now.getTime(); t += 12 * HOUR) {
      const manifest = manifestAt(new Date(t));
      manifests.push(manifest);
      await target.put(`${manifest.id}/database.sqlite.zst.enc`, Readable.from([Buffer.from('abc')]));
      await writeManifest(target, manifest);
    }
    const drilled = manifests[5]!.id;
    await writeDrillReport(target, drilled, 'drill-1.json', JSON.stringify({ ok: true }));
    await writeDrillReport(target, manifests[30]!.id, 'drill-2.json', JSON.stringify({ ok: false }));
    const oldIncomplete = newBackupId(new Date(now.getTime() - 2 * DAY));
    const youngIncomplete = newBackupId(new Date(now.getTime() - HOUR));
    await target.put(`${oldIncomplete}/database.sqlite.zst.enc`, Readable.from([Buffer.from('half')]));
    await target.put(`${youngIncomplete}/database.sqlite.zst.enc`, Readable.from([Buffer.from('half')]));

    const policy: RetentionPolicy = { keepLast: 3, keepHourly: 0, keepDaily: 5, keepWeekly: 1, keepMonthly: 0 };
    const dryRun = await pruneTarget(target, policy, { now });
    assert.deepEqual(dryRun.deleted, []);
    assert.equal((await listBackups(target)).backups.length, manifests.length, 'a dry run deletes nothing');

    const expected = new Set(expectedKept(manifests, policy));
    expected.add(drilled);
    const applied = await pruneTarget(target, policy, { now, apply: true });
    assert.deepEqual(applied.errors, []);
    const after = await listBackups(target);
    assert.deepEqual(after.backups.map((b) => b.id).sort(), [...expected].sort());
    assert.ok(applied.decisions.find((d) => d.id === drilled)!.reasons.includes(NEWEST_DRILLED));
    assert.deepEqual(after.incomplete.map((i) => i.id), [youngIncomplete], 'the day-old incomplete folder is gone, the fresh one stays');
    assert.deepEqual(await target.list(`${manifests[0]!.id}/`), [], 'a deleted backup leaves no file behind');
  });
});
