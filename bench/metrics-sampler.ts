/** One reading of a node's `/metrics`. */
export interface MetricsSample {
  /** Milliseconds since the sampler started. */
  readonly atMs: number;
  /** `seckill_orders_pending`: accepted orders still queued for the database. */
  readonly pending: number | undefined;
  /** `seckill_writer_lag_seconds`: age of the oldest order in the last batch the writer committed. */
  readonly writerLagSeconds: number | undefined;
  /** `seckill_orders_persisted_total`. */
  readonly persisted: number | undefined;
}

/** What a sampler saw over its life. */
export interface MetricsSummary {
  readonly samples: number;
  /** Scrapes that failed or took longer than the timeout (the node was too busy to answer). */
  readonly failed: number;
  readonly maxPending: number | null;
  readonly maxWriterLagSeconds: number | null;
}

/** The value of an unlabelled metric in Prometheus text format, or undefined. */
export function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} ([^\\s]+)$`, 'm').exec(text);
  if (!m) return undefined;
  const value = Number(m[1]);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * Scrapes `GET /metrics` of the node that runs the writer every `intervalMs` while a run
 * goes on, to see how far persistence falls behind acceptance under full load.
 *
 * Scraping is one cheap request every 250 ms next to thousands per second from wrk; the
 * gauges are computed by the node itself, so a late scrape does not distort them.
 */
export class MetricsSampler {
  readonly #url: string;
  readonly #intervalMs: number;
  readonly #started = performance.now();
  readonly samples: MetricsSample[] = [];
  #failed = 0;
  #stopped = false;
  #loop: Promise<void>;

  constructor(baseUrl: string, intervalMs = 250) {
    this.#url = `${baseUrl}/metrics`;
    this.#intervalMs = intervalMs;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const next = performance.now() + this.#intervalMs;
      try {
        const response = await fetch(this.#url, { signal: AbortSignal.timeout(2000) });
        const text = await response.text();
        this.samples.push({
          atMs: performance.now() - this.#started,
          pending: metricValue(text, 'seckill_orders_pending'),
          writerLagSeconds: metricValue(text, 'seckill_writer_lag_seconds'),
          persisted: metricValue(text, 'seckill_orders_persisted_total'),
        });
      } catch {
        this.#failed++;
      }
      const wait = next - performance.now();
      if (wait > 0 && !this.#stopped) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** Stops sampling and summarises. */
  async stop(): Promise<MetricsSummary> {
    this.#stopped = true;
    await this.#loop;
    const max = (values: (number | undefined)[]): number | null => {
      const defined = values.filter((v): v is number => v !== undefined);
      return defined.length === 0 ? null : Math.max(...defined);
    };
    return {
      samples: this.samples.length,
      failed: this.#failed,
      maxPending: max(this.samples.map((s) => s.pending)),
      maxWriterLagSeconds: max(this.samples.map((s) => s.writerLagSeconds)),
    };
  }
}
