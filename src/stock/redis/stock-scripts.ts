/**
 * The Lua scripts of the redis stock store, and the one place their replies become
 * {@link ReserveCode}, {@link ReleaseCode} and {@link QueuedOrder} values.
 *
 * Each script is registered on the client with ioredis `defineCommand`, which sends it by SHA
 * (EVALSHA) and resends the source on NOSCRIPT, so scripts survive a failover or a restart
 * that emptied the server's script cache.
 *
 * On Redis Cluster the same holds per node: ioredis routes each script call by its first key
 * (every key of a call carries the sale's hash tag, so they share one slot), sends EVAL the
 * first time a script goes over a node's socket, and EVAL again on NOSCRIPT from a node that
 * lost its cache (a promoted replica, a restart). Nothing has to be loaded on every master first.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from '../../ha/redis-client.js';
import { ReleaseCode, ReserveCode } from '../stock-store.js';
import type { QueuedOrder, QueueEntryRef, ReserveRequest, ReserveResult } from '../stock-store.js';
import type { SaleKeys } from './stock-keys.js';

/** Script files by operation; as in BullMQ, the number in a name is how many keys it takes. */
const SCRIPT_FILES = {
  reserve: 'reserve-batch-5.lua',
  release: 'release-2.lua',
  warm: 'warm-7.lua',
  read: 'read-2.lua',
  ack: 'ack-2.lua',
  deadLetter: 'dead-letter-3.lua',
} as const;
type ScriptName = keyof typeof SCRIPT_FILES;

interface LoadedScript {
  /** Command name on the client, versioned by the script's content. */
  readonly command: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

type ScriptCommand = (...keysAndArgs: (string | number)[]) => Promise<unknown>;

const RESERVE_CODES = new Set<number>(Object.values(ReserveCode));
const RELEASE_CODES = new Set<number>(Object.values(ReleaseCode));

let cachedScripts: ReadonlyMap<ScriptName, LoadedScript> | undefined;

function loadScripts(): ReadonlyMap<ScriptName, LoadedScript> {
  if (cachedScripts) return cachedScripts;
  const scripts = new Map<ScriptName, LoadedScript>();
  for (const [name, file] of Object.entries(SCRIPT_FILES) as [ScriptName, string][]) {
    const url = new URL(`./lua/${file}`, import.meta.url);
    let lua: string;
    try {
      lua = readFileSync(url, 'utf8');
    } catch (error) {
      throw new Error(
        `cannot read the Lua script ${file} at ${url.pathname}: the redis stock store needs its scripts next to ` +
          'the compiled code; run `npm run build`, which copies src/stock/redis/lua into dist',
        { cause: error },
      );
    }
    // A content hash in the name: two deployed versions sharing a client never overwrite each other.
    const version = createHash('sha1').update(lua).digest('hex').slice(0, 12);
    const numberOfKeys = Number(/-(\d+)\.lua$/.exec(file)?.[1]);
    scripts.set(name, { command: `seckill_${name}_${version}`, numberOfKeys, lua });
  }
  cachedScripts = scripts;
  return scripts;
}

/** Typed calls to the stock store's Lua scripts on one client. */
export class StockScripts {
  readonly #client: RedisClient;
  readonly #scripts: ReadonlyMap<ScriptName, LoadedScript>;

  /** Registers every script on `client` (once per client and script version). */
  constructor(client: RedisClient) {
    this.#client = client;
    this.#scripts = loadScripts();
    for (const script of this.#scripts.values()) {
      if (!(script.command in client)) {
        client.defineCommand(script.command, { numberOfKeys: script.numberOfKeys, lua: script.lua });
      }
    }
  }

  /**
   * See `reserve-batch-5.lua`: reserves for `requests`, all of one sale and with one
   * `perUserLimit`, in order, and answers one result per request.
   */
  async reserve(keys: SaleKeys, requests: readonly ReserveRequest[], attemptsKey: string): Promise<ReserveResult[]> {
    const n = requests.length;
    const keysAndArgs: (string | number)[] = new Array(6 + 3 * n);
    keysAndArgs[0] = keys.state;
    keysAndArgs[1] = keys.buyers;
    keysAndArgs[2] = keys.holders;
    keysAndArgs[3] = keys.orders;
    keysAndArgs[4] = attemptsKey;
    // One limit per call: the batcher groups requests by it.
    keysAndArgs[5] = requests[0].perUserLimit;
    let at = 6;
    for (const request of requests) {
      keysAndArgs[at++] = request.userId;
      keysAndArgs[at++] = request.orderId;
      keysAndArgs[at++] = request.now;
    }
    const reply = (await this.#command('reserve').apply(this.#client, keysAndArgs)) as unknown[];
    if (!Array.isArray(reply) || reply.length !== 2 * n) throw unexpectedReply('reserve', reply);
    const results: ReserveResult[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const code = reply[2 * i] as number;
      const orderId = reply[2 * i + 1] as string;
      if (!RESERVE_CODES.has(code)) throw unexpectedReply('reserve', reply);
      results[i] = orderId === '' ? { code: code as ReserveCode } : { code: code as ReserveCode, orderId };
    }
    return results;
  }

  /** See `release-2.lua`. */
  async release(keys: SaleKeys, orderId: string): Promise<ReleaseCode> {
    const code = await this.#run('release', [keys.state, keys.released], [orderId]);
    if (typeof code !== 'number' || !RELEASE_CODES.has(code)) throw unexpectedReply('release', code);
    return code as ReleaseCode;
  }

  /** See `warm-7.lua`; rejects with `STALE_WARMUP` when another process paused the sale after `pauseToken`. */
  async warm(
    keys: SaleKeys,
    staging: { readonly buyers: string; readonly released: string },
    state: { readonly stock: number; readonly remaining: number; readonly epoch: string },
    group: string,
    pauseToken: string,
  ): Promise<void> {
    await this.#run(
      'warm',
      [keys.state, keys.buyers, keys.released, keys.holders, keys.orders, staging.buyers, staging.released],
      [state.stock, state.remaining, state.epoch, group, pauseToken],
    );
  }

  /** See `read-2.lua`. */
  async read(
    saleId: number,
    keys: SaleKeys,
    group: string,
    consumer: string,
    count: number,
    minIdleMs: number,
  ): Promise<QueuedOrder[]> {
    const [claimed, fresh] = (await this.#run('read', [keys.orders, keys.state], [group, consumer, count, minIdleMs])) as [
      [string, number, string[]][],
      [string, string[]][],
    ];
    const orders: QueuedOrder[] = new Array(claimed.length + fresh.length);
    let i = 0;
    for (const [entryId, deliveries, fields] of claimed) orders[i++] = toQueuedOrder(saleId, entryId, deliveries, fields);
    for (const [entryId, fields] of fresh) orders[i++] = toQueuedOrder(saleId, entryId, 1, fields);
    return orders;
  }

  /** See `ack-2.lua`. Returns how many entries were removed. */
  async ack(keys: SaleKeys, group: string, entries: readonly QueueEntryRef[]): Promise<number> {
    const args: (string | number)[] = new Array(2 + 2 * entries.length);
    args[0] = group;
    args[1] = entries.length;
    for (let i = 0; i < entries.length; i++) {
      args[2 + i] = entries[i].entryId;
      args[2 + entries.length + i] = entries[i].orderId;
    }
    return (await this.#run('ack', [keys.orders, keys.holders], args)) as number;
  }

  /** See `dead-letter-3.lua`. Returns false when the entry had already left the queue. */
  async deadLetter(keys: SaleKeys, group: string, order: QueuedOrder, reason: string): Promise<boolean> {
    const moved = await this.#run(
      'deadLetter',
      [keys.orders, keys.dead, keys.holders],
      [group, order.entryId, order.orderId, order.userId, order.createdAt, order.deliveries, reason],
    );
    return moved === 1;
  }

  #run(name: ScriptName, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return this.#command(name).call(this.#client, ...keys, ...args);
  }

  #command(name: ScriptName): ScriptCommand {
    const script = this.#scripts.get(name)!;
    return (this.#client as unknown as Record<string, ScriptCommand>)[script.command];
  }
}

/**
 * Turns a stream entry (`orderId`, `userId`, `createdAt` fields) into a {@link QueuedOrder};
 * `deliveries` is 0 for an entry no writer has taken yet.
 */
export function toQueuedOrder(saleId: number, entryId: string, deliveries: number, fields: readonly string[]): QueuedOrder {
  // A plain loop, no Map: the writer turns a thousand entries per batch.
  let orderId: string | undefined;
  let userId: string | undefined;
  let createdAt = NaN;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    if (name === 'orderId') orderId = fields[i + 1];
    else if (name === 'userId') userId = fields[i + 1];
    else if (name === 'createdAt') createdAt = Number(fields[i + 1]);
  }
  if (orderId === undefined || userId === undefined || !Number.isFinite(createdAt)) {
    throw new Error(
      `queue entry ${entryId} of sale ${saleId} lacks orderId, userId or createdAt (${fields.join(' ')}); ` +
        'something other than the stock store wrote to the orders stream',
    );
  }
  return { entryId, saleId, orderId, userId, createdAt, deliveries };
}

function unexpectedReply(script: string, reply: unknown): Error {
  return new Error(
    `the ${script} script answered ${JSON.stringify(reply)}, which is not one of its codes; ` +
      'the Lua files and the compiled code are from different versions: rebuild with `npm run build`',
  );
}
