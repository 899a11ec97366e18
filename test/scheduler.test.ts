import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Clock } from '../src/ops/clock.js';
import { JobScheduler } from '../src/ops/job-scheduler.js';
import type { JobEvent, ScheduledJob } from '../src/ops/job-scheduler.js';
import { OpsMetrics } from '../src/ops/ops-metrics.js';

/** Lets every callback that is ready run (promise chains, then timers queued for now). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A clock that moves only when the test says so. `advanceTo` wakes sleepers one at a time
 * in time order, letting the woken code run (and go back to sleep) before the next, so a
 * run over days of cron times is the same every time.
 */
class ManualClock implements Clock {
  #now: number;
  readonly #sleepers = new Set<{ readonly wake: number; readonly resolve: () => void }>();

  constructor(start: string) {
    this.#now = Date.parse(start);
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const sleeper = { wake: this.#now + Math.max(0, ms), resolve };
      this.#sleepers.add(sleeper);
      signal?.addEventListener('abort', () => {
        this.#sleepers.delete(sleeper);
        resolve();
      }, { once: true });
    });
  }

  /** Moves time forward without waking anyone, as a suspended machine does; sleepers wake late. */
  jump(ms: number): void {
    this.#now += ms;
  }

  async advanceTo(iso: string): Promise<void> {
    const target = Date.parse(iso);
    for (;;) {
      await settle();
      const next = [...this.#sleepers].filter((s) => s.wake <= target).sort((a, b) => a.wake - b.wake)[0];
      if (!next) break;
      this.#sleepers.delete(next);
      this.#now = Math.max(this.#now, next.wake);
      next.resolve();
    }
    this.#now = target;
    await settle();
  }
}

const MINUTE = 60_000;
const silent = pino({ level: 'silent' });
const iso = (ms: number): string => new Date(ms).toISOString();

/** A job that takes `minutes(run)` of the fake clock and records how many of it run at once. */
function timedJob(clock: ManualClock, name: string, schedule: string, minutes: (run: number) => number, concurrent: number[]): ScheduledJob {
  let runs = 0;
  let running = 0;
  return {
    name,
    schedule,
    async run(signal) {
      running += 1;
      concurrent.push(running);
      try {
        await clock.sleep(minutes(runs++) * MINUTE, signal);
      } finally {
        running -= 1;
      }
    },
  };
}

function startedTimes(events: readonly JobEvent[], job: string): string[] {
  return events.filter((e) => e.type === 'started' && e.job === job).map((e) => iso(e.at));
}

describe('scheduler', () => {
  it('runs backup, verify, prune and drill on their cron times over two days', async () => {
    const clock = new ManualClock('2026-03-01T00:00:00.000Z');
    const events: JobEvent[] = [];
    const concurrent: number[] = [];
    const scheduler = new JobScheduler(
      [
        timedJob(clock, 'backup', '5 * * * *', () => 3, concurrent),
        timedJob(clock, 'verify', '40 2 * * *', () => 20, concurrent),
        timedJob(clock, 'prune', '50 2 * * *', () => 1, concurrent),
        timedJob(clock, 'drill', '15 3 * * *', () => 12, concurrent),
        timedJob(clock, 'off', '', () => 1, concurrent),
      ],
      { log: silent, clock, timezone: 'UTC', onEvent: (e) => events.push(e) },
    );
    assert.deepEqual(scheduler.upcoming().map((u) => [u.job, u.next?.toISOString()]), [
      ['backup', '2026-03-01T00:05:00.000Z'],
      ['verify', '2026-03-01T02:40:00.000Z'],
      ['prune', '2026-03-01T02:50:00.000Z'],
      ['drill', '2026-03-01T03:15:00.000Z'],
    ], 'a job with an empty schedule is off');
    scheduler.start();
    await clock.advanceTo('2026-03-03T00:00:00.000Z');
    await scheduler.stop();

    const hourly = Array.from({ length: 48 }, (_, h) => iso(Date.parse('2026-03-01T00:05:00.000Z') + h * 60 * MINUTE));
    assert.deepEqual(startedTimes(events, 'backup'), hourly);
    assert.deepEqual(startedTimes(events, 'verify'), ['2026-03-01T02:40:00.000Z', '2026-03-02T02:40:00.000Z']);
    assert.deepEqual(startedTimes(events, 'prune'), ['2026-03-01T02:50:00.000Z', '2026-03-02T02:50:00.000Z']);
    assert.deepEqual(startedTimes(events, 'drill'), ['2026-03-01T03:15:00.000Z', '2026-03-02T03:15:00.000Z']);
    assert.deepEqual(startedTimes(events, 'off'), []);
    const finished = events.filter((e) => e.type === 'finished');
    assert.equal(finished.length, 48 + 6);
    assert.ok(finished.every((e) => e.type === 'finished' && e.outcome === 'success'));
    assert.ok(events.every((e) => e.type !== 'skipped'), 'nothing overlapped, so nothing was skipped');
    const drillEnd = finished.find((e) => e.job === 'drill');
    assert.equal(drillEnd && iso(drillEnd.at), '2026-03-01T03:27:00.000Z', 'a run takes the time its job takes on the clock');
  });

  it('never overlaps a job with itself: a time that comes while it runs is skipped, and it runs again at the next time after', async () => {
    const clock = new ManualClock('2026-03-01T00:00:00.000Z');
    const events: JobEvent[] = [];
    const concurrent: number[] = [];
    const metrics = OpsMetrics.in(new Registry());
    // The first backup takes 25 minutes, the others 2; it is due every 10.
    const scheduler = new JobScheduler([timedJob(clock, 'backup', '*/10 * * * *', (run) => (run === 0 ? 25 : 2), concurrent)], {
      log: silent,
      clock,
      timezone: 'UTC',
      metrics,
      onEvent: (e) => events.push(e),
    });
    scheduler.start();
    await clock.advanceTo('2026-03-01T01:00:00.000Z');
    await scheduler.stop();

    assert.deepEqual(
      events.map((e) => `${e.type} ${iso(e.at).slice(11, 16)}`),
      [
        'started 00:10',
        'skipped 00:20',
        'skipped 00:30',
        'finished 00:35',
        'started 00:40',
        'finished 00:42',
        'started 00:50',
        'finished 00:52',
        'started 01:00',
        'finished 01:00', // stop() aborted the sleeping job at 01:00
      ],
    );
    assert.deepEqual([...new Set(concurrent)], [1], 'at most one run of the job at any time');
    const runs = await metrics.jobRuns.get();
    const count = (outcome: string) => runs.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    assert.equal(count('skipped'), 2);
    assert.equal(count('success'), 4);
  });

  it('runs once after a stall instead of making up every missed time', async () => {
    const clock = new ManualClock('2026-03-01T00:00:00.000Z');
    const events: JobEvent[] = [];
    const scheduler = new JobScheduler([timedJob(clock, 'backup', '*/10 * * * *', () => 0.5, [])], {
      log: silent,
      clock,
      timezone: 'UTC',
      onEvent: (e) => events.push(e),
    });
    scheduler.start();
    await clock.advanceTo('2026-03-01T00:09:00.000Z');
    // The loop sleeps until 00:10; the machine is suspended and wakes at 03:09.
    clock.jump(3 * 60 * MINUTE);
    await clock.advanceTo('2026-03-01T03:30:00.000Z');
    await scheduler.stop();
    assert.deepEqual(startedTimes(events, 'backup'), [
      '2026-03-01T03:09:00.000Z',
      '2026-03-01T03:10:00.000Z',
      '2026-03-01T03:20:00.000Z',
      '2026-03-01T03:30:00.000Z',
    ]);
  });

  it('reports a failed run, keeps the schedule, and records success times and durations', async () => {
    const clock = new ManualClock('2026-03-01T00:00:00.000Z');
    const metrics = OpsMetrics.in(new Registry());
    const failures: string[] = [];
    let run = 0;
    const scheduler = new JobScheduler(
      [
        {
          name: 'verify',
          schedule: '0 * * * *',
          async run() {
            run += 1;
            await clock.sleep(5 * MINUTE);
            if (run === 1) throw new Error('sha256 of database.sql.zst.enc differs from the manifest');
          },
        },
      ],
      { log: silent, clock, timezone: 'UTC', metrics, onFailure: async (job, error) => void failures.push(`${job.name}: ${error.message}`) },
    );
    scheduler.start();
    await clock.advanceTo('2026-03-01T02:30:00.000Z');
    await scheduler.stop();
    assert.deepEqual(failures, ['verify: sha256 of database.sql.zst.enc differs from the manifest']);
    assert.equal(run, 2, 'the hour after the failure ran as scheduled');
    const lastSuccess = (await metrics.jobLastSuccess.get()).values[0];
    assert.equal(lastSuccess?.value, Date.parse('2026-03-01T02:05:00.000Z') / 1000);
    const durations = await metrics.jobDurationSeconds.get();
    assert.equal(durations.values.find((v) => v.metricName === 'seckill_job_duration_seconds_sum')?.value, 600);
  });

  it('stop() aborts the running job, waits for it, and starts nothing after', async () => {
    const clock = new ManualClock('2026-03-01T00:00:00.000Z');
    const events: JobEvent[] = [];
    let aborted = false;
    const scheduler = new JobScheduler(
      [
        {
          name: 'drill',
          schedule: '* * * * *',
          async run(signal) {
            await clock.sleep(90 * MINUTE, signal);
            aborted = signal.aborted;
          },
        },
      ],
      { log: silent, clock, timezone: 'UTC', onEvent: (e) => events.push(e) },
    );
    scheduler.start();
    await clock.advanceTo('2026-03-01T00:01:30.000Z');
    await scheduler.stop();
    assert.equal(aborted, true);
    assert.deepEqual(events.map((e) => e.type), ['started', 'finished']);
    await clock.advanceTo('2026-03-01T05:00:00.000Z');
    assert.equal(events.length, 2, 'no run after stop');
  });

  it('refuses a cron expression that does not parse, naming the job and the setting', () => {
    assert.throws(
      () => new JobScheduler([{ name: 'backup', schedule: '61 * * * *', setting: 'backupSchedule', run: async () => undefined }], { log: silent }),
      /the backup job's cron expression "61 \* \* \* \*" \(backupSchedule\) is not valid/,
    );
  });
});
