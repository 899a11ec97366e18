import { Redis, SentinelConnector } from 'ioredis';
import type { SentinelAddress, SentinelConnectionOptions } from 'ioredis';

/** What one Sentinel believes about the primary. */
interface SentinelView {
  readonly host: string;
  readonly port: number;
  /** Raised by every failover; the Sentinel with the highest one knows the newest primary. */
  readonly configEpoch: number;
  /** This Sentinel sees that primary down: a failover may be on its way. */
  readonly down: boolean;
}

type Resolve = (this: SentinelConnector, endpoint: Partial<SentinelAddress>) => Promise<Partial<SentinelAddress> | null>;

/** ioredis' own resolution (one Sentinel, in list order): the fallback when no Sentinel answers us. */
const askOneSentinel = (SentinelConnector.prototype as unknown as { resolve: Resolve }).resolve;

/**
 * ioredis' Sentinel connector, except that it asks every configured Sentinel at once which
 * server is the primary and follows the one with the highest configuration epoch, instead of
 * believing the first Sentinel that answers.
 *
 * Why: after a failover, only the Sentinel that ran it knows the new primary at first; the
 * others learn it from its hello messages, published every 2 s. ioredis reconnects on the
 * leader's `+switch-master` notice and then asks the first Sentinel of its list, which may
 * still name the old primary. A frozen old primary accepts the TCP connection and never
 * answers the ready check, so the client times out, asks again, and gets the same stale
 * answer until that Sentinel catches up: measured, up to ~2 s more of refused purchases.
 * The configuration epoch is how Sentinels themselves decide whose view is newer.
 */
export class NewestEpochSentinelConnector extends SentinelConnector {
  /** Takes the client's options as ioredis passes them to a `Connector`. */
  constructor(options: unknown) {
    super(options as SentinelConnectionOptions);
    // ioredis declares resolve() private; it is the one step to replace.
    (this as unknown as { resolve: Resolve }).resolve = (endpoint) => this.#resolveNewest(endpoint);
  }

  async #resolveNewest(endpoint: Partial<SentinelAddress>): Promise<Partial<SentinelAddress> | null> {
    const options = this.options;
    const views = await Promise.all((options.sentinels ?? []).map((sentinel) => askSentinel(sentinel, options)));
    let best: SentinelView | undefined;
    for (const view of views) {
      if (view === undefined) continue;
      // Newer epoch first; at equal epochs, a Sentinel that does not see the primary down.
      if (!best || view.configEpoch > best.configEpoch || (view.configEpoch === best.configEpoch && best.down && !view.down)) best = view;
    }
    if (best === undefined) return askOneSentinel.call(this, endpoint);
    return { host: best.host, port: best.port };
  }
}

async function askSentinel(address: Partial<SentinelAddress>, options: SentinelConnectionOptions): Promise<SentinelView | undefined> {
  const client = new Redis({
    host: address.host ?? '127.0.0.1',
    port: address.port ?? 26379,
    ...(options.sentinelUsername ? { username: options.sentinelUsername } : {}),
    ...(options.sentinelPassword ? { password: options.sentinelPassword } : {}),
    lazyConnect: true,
    enableReadyCheck: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: options.connectTimeout,
    commandTimeout: options.sentinelCommandTimeout,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const name = options.name ?? '';
    // The epoch from SENTINEL MASTER; the address from GET-MASTER-ADDR-BY-NAME, which names the
    // promoted replica as soon as it serves, while SENTINEL MASTER keeps the old address
    // until the failover has ended.
    const [master, address] = (await Promise.all([
      client.call('SENTINEL', 'master', name),
      client.call('SENTINEL', 'get-master-addr-by-name', name),
    ])) as [string[], [string, string] | null];
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < master.length; i += 2) fields.set(master[i], master[i + 1]);
    if (!address) return undefined;
    const [host, port] = [address[0], Number(address[1])];
    if (!host || !Number.isInteger(port)) return undefined;
    return { host, port, configEpoch: Number(fields.get('config-epoch') ?? 0), down: /s_down|o_down/.test(fields.get('flags') ?? '') };
  } catch {
    // Down, frozen or not monitoring this name: the others decide.
    return undefined;
  } finally {
    client.disconnect();
  }
}
