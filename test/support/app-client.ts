import { mintUserToken } from '../../src/http/auth.js';

/** A JSON answer from the API. */
export interface Answer<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

/** Talks to a running Seckill API the way a client would, over HTTP. */
export class AppClient {
  constructor(
    readonly baseUrl: string,
    readonly adminToken: string,
    readonly jwtSecret: string,
  ) {}

  tokenFor(userId: string, ttlSeconds = 3600): string {
    return mintUserToken(this.jwtSecret, userId, ttlSeconds);
  }

  async request<T = Record<string, unknown>>(method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    }
    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, body, signal: AbortSignal.timeout(30_000) });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text so a failing assertion shows it
    }
    return { status: response.status, body: parsed as T, headers: response.headers };
  }

  /** Creates a sale that is open now. */
  async createSale(stock: number, extra: { paymentWindowSeconds?: number; startsAt?: number; endsAt?: number } = {}): Promise<number> {
    const now = Date.now();
    const answer = await this.request<{ id: number }>('POST', '/api/admin/sales', {
      token: this.adminToken,
      body: {
        name: `test sale ${now}`,
        stock,
        startsAt: new Date(extra.startsAt ?? now - 1000).toISOString(),
        endsAt: new Date(extra.endsAt ?? now + 3_600_000).toISOString(),
        ...(extra.paymentWindowSeconds ? { paymentWindowSeconds: extra.paymentWindowSeconds } : {}),
      },
    });
    if (answer.status !== 201) throw new Error(`creating a sale answered ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body.id;
  }

  purchase(saleId: number, userId: string): Promise<Answer<{ orderId?: string; status?: string; code?: string }>> {
    return this.request('POST', `/api/sales/${saleId}/purchase`, { token: this.tokenFor(userId) });
  }

  stats(saleId: number): Promise<Answer<{ stock: number; remaining: number | null; pending: number | null; created: number; paid: number; expired: number; cancelled: number }>> {
    return this.request('GET', `/api/admin/sales/${saleId}/stats`, { token: this.adminToken });
  }

  /** Waits until no accepted order of the sale is still queued (the writer has drained). */
  async drained(saleId: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const stats = await this.stats(saleId);
      if (stats.status === 200 && stats.body.pending === 0) return;
      if (Date.now() > deadline) throw new Error(`sale ${saleId} still has queued orders after ${timeoutMs} ms: ${JSON.stringify(stats.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function inParallel<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
