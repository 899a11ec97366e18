import type { Logger } from 'pino';
import type { SeckillDatabase } from '../db/seckill-database.js';

/** Options of {@link DatabaseCircuit}. */
export interface DatabaseCircuitOptions {
  /** Failed batch writes in a row that open the circuit. Default 3. */
  readonly threshold?: number;
  /** How often an open circuit asks the database whether it answers. Default 250 ms. */
  readonly probeMs?: number;
  /** Longest wait for one probe: a hung server must not hold the writer past this. Default 1000 ms. */
  readonly probeTimeoutMs?: number;
  /** Told when the circuit opens (true) and closes (false), e.g. for a metric. */
  readonly onChange?: (open: boolean) => void;
}

/**
 * The order writer's circuit breaker in front of the database. While the database fails
 * every batch (down, failing over, unreachable), sending batch after batch only fills the
 * log and loads a server that is trying to come back. After `threshold` failed writes in a
 * row the circuit opens: no batch is sent, one cheap ping goes out every `probeMs`, and the
 * first ping answered lets one batch through as a trial. The trial's success closes the
 * circuit, its failure opens it again. The orders wait in the queue meanwhile (I3), so an
 * open circuit delays persistence and loses nothing; and since probes come every quarter
 * second, persistence resumes within about that of the database's return, instead of
 * after the next step of a backoff that had grown to seconds.
 */
export class DatabaseCircuit {
  readonly #db: SeckillDatabase;
  readonly #log: Logger;
  readonly #threshold: number;
  readonly #probeMs: number;
  readonly #probeTimeoutMs: number;
  readonly #onChange: ((open: boolean) => void) | undefined;
  #failures = 0;
  #openedAt: number | undefined;
  /** The ping in flight: never more than one, so a hung server does not collect pings. */
  #probe: Promise<boolean> | undefined;

  constructor(db: SeckillDatabase, log: Logger, options: DatabaseCircuitOptions = {}) {
    this.#db = db;
    this.#log = log;
    this.#threshold = options.threshold ?? 3;
    this.#probeMs = options.probeMs ?? 250;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 1000;
    this.#onChange = options.onChange;
  }

  /** Whether batches are held back now. */
  get open(): boolean {
    return this.#openedAt !== undefined;
  }

  /** A batch write failed as a whole (nothing of it committed). */
  failed(heldOrders: number): void {
    this.#failures += 1;
    if (this.#openedAt === undefined && this.#failures >= this.#threshold) {
      this.#openedAt = performance.now();
      this.#log.warn(
        { failures: this.#failures, heldOrders, probeMs: this.#probeMs },
        'order writer: the database fails every batch; holding batches back and probing it until it answers (orders wait in the queue)',
      );
      this.#onChange?.(true);
    }
  }

  /** A batch write committed: the database works. */
  succeeded(): void {
    this.#failures = 0;
    if (this.#openedAt === undefined) return;
    const pausedMs = Math.round(performance.now() - this.#openedAt);
    this.#openedAt = undefined;
    this.#log.info({ pausedMs }, 'order writer: the database answers again; batches flow');
    this.#onChange?.(false);
  }

  /**
   * While open: pings the database every `probeMs` and resolves once it answers (the next
   * batch is the trial), or when `keepWaiting` says to stop, or `wake` is called.
   */
  async untilWorthTrying(keepWaiting: () => boolean, onWake: (wake: () => void) => void): Promise<void> {
    while (this.open && keepWaiting()) {
      let woken = false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#probeMs);
        onWake(() => {
          woken = true;
          clearTimeout(timer);
          resolve();
        });
      });
      if (woken || !keepWaiting()) return;
      if (await this.#answers()) return;
    }
  }

  #answers(): Promise<boolean> {
    // One ping at a time even when one outlives its timeout: the next probe waits on it.
    const ping = (this.#probe ??= this.#db
      .ping()
      .catch(() => false)
      .finally(() => {
        this.#probe = undefined;
      }));
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.#probeTimeoutMs);
      void ping.then((ok) => {
        clearTimeout(timer);
        resolve(ok);
      });
    });
  }
}
