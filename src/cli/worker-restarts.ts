/** A worker that dies sooner than this after its start counts as dying young. */
export const YOUNG_DEATH_MS = 10_000;
/** Wait before restarting after the first young death; doubles with each one after. */
export const FIRST_RESTART_DELAY_MS = 250;
/** The longest wait between restarts of a worker that keeps dying young. */
export const MAX_RESTART_DELAY_MS = 30_000;

/**
 * When to restart a `--workers` worker that died. A worker that ran for a while is replaced
 * at once (a crash mid-sale: its slot must serve again). One that keeps dying right after
 * its start (a port already taken, a database it cannot reach, a bad setting only a worker
 * reads) is restarted after a wait that doubles each time, up to 30 s, instead of being
 * forked again in a tight loop that burns the CPU the other workers sell with and floods
 * the log. Counted per worker slot; a worker that lives past {@link YOUNG_DEATH_MS} resets it.
 */
export class WorkerRestarts {
  /** Young deaths in a row, by worker slot. */
  readonly #youngDeaths = new Map<number, number>();

  /**
   * Records that the worker of `slot` died after running `livedMs`.
   *
   * @returns milliseconds to wait before starting its replacement (0 = at once).
   */
  delayAfterDeath(slot: number, livedMs: number): number {
    if (livedMs >= YOUNG_DEATH_MS) {
      this.#youngDeaths.delete(slot);
      return 0;
    }
    const deaths = (this.#youngDeaths.get(slot) ?? 0) + 1;
    this.#youngDeaths.set(slot, deaths);
    return Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** (deaths - 1));
  }
}
