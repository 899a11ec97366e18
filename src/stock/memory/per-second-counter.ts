/**
 * Counts events per key within the current second, forgetting earlier seconds, like the
 * per-second Redis counters of the redis stock store.
 */
export class PerSecondCounter {
  #second = Number.NEGATIVE_INFINITY;
  #counts = new Map<string, number>();

  /** Counts one event of `key` at `now` (ms) and returns the key's count in that second. */
  increment(key: string, now: number): number {
    const second = Math.floor(now / 1000);
    // A late caller from an earlier second counts against the current one: never more allowed.
    if (second > this.#second) {
      this.#second = second;
      this.#counts = new Map();
    }
    const count = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, count);
    return count;
  }
}
