import { createRedisClient } from './redis-client.js';
import type { RedisClient, RedisClientOptions } from './redis-client.js';
import type { RedisEndpoint } from './redis-url.js';

/** First pause before replacing a client that ended; doubles per replacement in a row that never got ready. */
const FIRST_REPLACE_DELAY_MS = 50;
const MAX_REPLACE_DELAY_MS = 1000;

/**
 * One logical connection to the stock store's Redis that outlives its ioredis clients.
 *
 * ioredis 5.11.1 can end a Sentinel client for good when Sentinel's `+switch-master` notice
 * arrives while the client is already reconnecting (its connector is told to disconnect
 * mid-connect, and the client gives up with "Connection is closed."); seen in 2 of 22
 * measured failovers. Every later command would then fail until the process restarts. So
 * when the current client ends without {@link RedisConnection.close} having been called, a
 * new one is made, and the listeners passed to {@link RedisConnection.onClient} are told,
 * so they can register their Lua scripts (by SHA) and events on it.
 */
export class RedisConnection {
  readonly #endpoint: RedisEndpoint;
  readonly #options: RedisClientOptions;
  readonly #listeners: ((client: RedisClient) => void)[] = [];
  #client: RedisClient;
  #closed = false;
  #replaceTimer: NodeJS.Timeout | undefined;
  #failedInARow = 0;
  #replacements = 0;

  constructor(endpoint: RedisEndpoint, options: RedisClientOptions) {
    this.#endpoint = endpoint;
    this.#options = options;
    this.#client = this.#create();
  }

  /** The client to send commands on now; another one after a replacement. */
  get client(): RedisClient {
    return this.#client;
  }

  /** How many times a client that ended unexpectedly was replaced. */
  get replacements(): number {
    return this.#replacements;
  }

  /** Calls `listener` with the current client now, and with every replacement later. */
  onClient(listener: (client: RedisClient) => void): void {
    this.#listeners.push(listener);
    listener(this.#client);
  }

  /** Closes the current client (QUIT if connected) and stops replacing it. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#replaceTimer);
    const client = this.#client;
    if (client.status === 'end') return;
    if (client.status === 'ready') {
      try {
        await client.quit();
      } catch {
        // Not connected after all: nothing to say goodbye to.
      }
    }
    client.disconnect();
  }

  #create(): RedisClient {
    const client = createRedisClient(this.#endpoint, this.#options);
    client.once('ready', () => {
      this.#failedInARow = 0;
    });
    client.once('end', () => this.#onEnd(client));
    return client;
  }

  #onEnd(client: RedisClient): void {
    if (this.#closed || client !== this.#client) return;
    // A client that keeps ending before it is ready (wrong password, say) is not recreated in a hot loop.
    const delay = Math.min(FIRST_REPLACE_DELAY_MS * 2 ** this.#failedInARow, MAX_REPLACE_DELAY_MS);
    this.#failedInARow += 1;
    this.#replaceTimer = setTimeout(() => {
      if (this.#closed) return;
      this.#client = this.#create();
      this.#replacements += 1;
      for (const listener of this.#listeners) listener(this.#client);
    }, delay);
    // A pending replacement must not keep a finished process alive.
    this.#replaceTimer.unref();
  }
}
