/**
 * The time source of the scheduler and the policy checks. Injected so that a test can
 * drive months of cron times in milliseconds, deterministically, and so that no job
 * depends on when the machine happens to run it.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds, or early (without error) when `signal` aborts.
   * May resolve late; callers re-read `now()` instead of trusting the duration.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

// setTimeout fires at once for delays over 2^31−1 ms (about 24.8 days); a monthly job would run in a loop.
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/** The machine's clock: `Date.now()` and `setTimeout` (which keeps the process alive while the scheduler waits). */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(ms, LONGEST_TIMER_MS)));
      signal?.addEventListener('abort', done, { once: true });
    });
  },
};
