import type { ReserveRequest, ReserveResult } from '../stock-store.js';

/** Most reservations sent in one script call; bounds how long one call holds Redis (~5 µs each). */
export const MAX_RESERVE_BATCH = 256;

/** Sends one batch (one sale, one `perUserLimit`) and answers one result per request, in order. */
export type SendReserveBatch = (saleId: number, requests: readonly ReserveRequest[]) => Promise<ReserveResult[]>;

interface Batch {
  readonly saleId: number;
  readonly perUserLimit: number;
  readonly requests: ReserveRequest[];
  readonly waiters: { resolve(result: ReserveResult): void; reject(error: unknown): void }[];
}

/**
 * Gathers the reservations of each sale that arrive during one turn of the event loop and
 * sends them as one call (request coalescing, the classic flash-sale trick). A purchase
 * handler runs up to its reservation within the socket read that brought the request, so
 * every request read in one poll phase joins the batch, and `setImmediate` sends it right
 * after that phase: no timer, no added wait beyond the turn already under way.
 *
 * Why: with one EVALSHA per purchase, most of Redis's time and much of the node's went to
 * the calls themselves (parsing, dispatch, a socket write and a reply each), not to the few
 * hash and stream operations that make the reservation. A batch is still one atomic script,
 * and buyers are served in arrival order within it, so nothing about a single purchase's
 * outcome changes: only how many round trips it shares.
 */
export class ReserveBatcher {
  readonly #send: SendReserveBatch;
  readonly #maxBatch: number;
  /** Batches not sent yet, by sale. */
  readonly #pending = new Map<number, Batch>();
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    for (const batch of this.#pending.values()) this.#dispatch(batch);
    this.#pending.clear();
  };

  constructor(send: SendReserveBatch, maxBatch = MAX_RESERVE_BATCH) {
    this.#send = send;
    this.#maxBatch = maxBatch;
  }

  /** Queues `request` into its sale's batch; resolves with its own result. */
  reserve(request: ReserveRequest): Promise<ReserveResult> {
    let batch = this.#pending.get(request.saleId);
    if (batch !== undefined && (batch.perUserLimit !== request.perUserLimit || batch.requests.length >= this.#maxBatch)) {
      // Full, or under another limit (one script call takes one limit): send it now. Redis
      // runs the calls of a connection in order, so arrival order holds.
      this.#pending.delete(request.saleId);
      this.#dispatch(batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = { saleId: request.saleId, perUserLimit: request.perUserLimit, requests: [], waiters: [] };
      this.#pending.set(request.saleId, batch);
    }
    const joined = batch;
    joined.requests.push(request);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    return new Promise<ReserveResult>((resolve, reject) => {
      joined.waiters.push({ resolve, reject });
    });
  }

  #dispatch(batch: Batch): void {
    let sent: Promise<ReserveResult[]>;
    try {
      sent = this.#send(batch.saleId, batch.requests);
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent.then(
      (results) => {
        for (let i = 0; i < batch.waiters.length; i++) batch.waiters[i].resolve(results[i]);
      },
      (error: unknown) => {
        for (const waiter of batch.waiters) waiter.reject(error);
      },
    );
  }
}
