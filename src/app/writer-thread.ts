import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { SeckillConfig } from '../config/config.js';
import type { PeerMetrics } from '../ops/metrics.js';

/** Messages between the main thread and the writer thread (see writer-thread-main.ts). */
export type WriterThreadRequest = { readonly type: 'stop' } | { readonly type: 'metrics'; readonly id: number };
export type WriterThreadReply =
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'stopped' }
  | { readonly type: 'metrics'; readonly id: number; readonly metrics: Awaited<ReturnType<PeerMetrics>> };

/** What the writer thread is started with. */
export interface WriterThreadData {
  readonly config: SeckillConfig;
  /** Name of the thread's order writer in the consumer group. */
  readonly consumer: string;
}

/** The order writer running in a worker thread of this process. */
export interface WriterThread {
  /** The thread's metrics (orders persisted, writer lag, …), for the main thread's /metrics. */
  readonly metrics: PeerMetrics;
  /** Lets the writer commit the batch in hand, then ends the thread. */
  stop(): Promise<void>;
}

/** How long a /metrics scrape waits for the writer thread before leaving its numbers out. */
const METRICS_TIMEOUT_MS = 1000;
/** Pause before a crashed writer thread is started again. */
const RESTART_DELAY_MS = 1000;
/** How long stop() waits for the thread to finish its batch before terminating it. */
const STOP_TIMEOUT_MS = 30_000;

/**
 * Starts the writer role (order writer, payment-window expiry, repair of lost stock state)
 * in a worker thread, with its own database and Redis connections. Resolves once the
 * thread runs; rejects when it cannot start (the same errors a writer-only node would
 * report). A thread that dies later is logged and started again: orders wait in the
 * Redis stream meanwhile, nothing is lost.
 */
export async function startWriterThread(data: WriterThreadData, log: Logger): Promise<WriterThread> {
  let worker: Worker;
  let stopping = false;
  let nextId = 0;
  const waiting = new Map<number, (metrics: Awaited<ReturnType<PeerMetrics>>) => void>();
  let stopped: (() => void) | undefined;

  const spawn = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      let started = false;
      worker = new Worker(new URL('./writer-thread-main.js', import.meta.url), { workerData: data });
      worker.on('message', (message: WriterThreadReply) => {
        switch (message.type) {
          case 'ready':
            started = true;
            resolve();
            break;
          case 'failed':
            reject(new Error(`the order writer thread could not start: ${message.message}`));
            break;
          case 'metrics':
            waiting.get(message.id)?.(message.metrics);
            waiting.delete(message.id);
            break;
          case 'stopped':
            stopped?.();
            break;
        }
      });
      worker.on('error', (err) => {
        if (!started) reject(err);
        else log.error({ err }, 'order writer thread failed');
      });
      worker.on('exit', (code) => {
        stopped?.();
        if (!started) {
          reject(new Error(`the order writer thread exited with code ${code} while starting`));
          return;
        }
        if (stopping) return;
        // Orders keep arriving in the stream; they are written once a writer runs again.
        log.error({ code }, `order writer thread ended unexpectedly; starting it again in ${RESTART_DELAY_MS} ms`);
        setTimeout(() => {
          if (stopping) return;
          spawn().catch((err: unknown) => log.error({ err }, 'order writer thread could not be restarted'));
        }, RESTART_DELAY_MS).unref();
      });
    });

  await spawn();
  return {
    metrics: () =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error('the order writer thread did not answer in time'));
        }, METRICS_TIMEOUT_MS);
        waiting.set(id, (metrics) => {
          clearTimeout(timer);
          resolve(metrics);
        });
        worker.postMessage({ type: 'metrics', id } satisfies WriterThreadRequest);
      }),
    async stop() {
      if (stopping) return;
      stopping = true;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      worker.postMessage({ type: 'stop' } satisfies WriterThreadRequest);
      const timer = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
      await done;
      clearTimeout(timer);
      await worker.terminate();
    },
  };
}
