/**
 * A private Redis Sentinel group for tests: a primary (AOF everysec), one replica (or more) and three
 * `redis-sentinel` processes, all on free loopback ports in one temp folder. Their config
 * files are rendered on every start from the shipped templates in deploy/redis/, as an
 * operator would (Sentinel rewrites its file at run time, so it is never reused).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBinary } from './binaries.js';
import { freePort } from './free-port.js';
import { createScratchDir, removeScratchDir } from './scratch-dir.js';
import { redisCall } from './redis-server.js';
import { ServerProcess, ServerStartError } from './server-process.js';

/** The shipped template of a Redis server of the group, rendered by the harness. */
export const REDIS_TEMPLATE = fileURLToPath(new URL('../../../deploy/redis/redis.conf.template', import.meta.url));
/** The shipped template of a Sentinel, rendered by the harness. */
export const SENTINEL_TEMPLATE = fileURLToPath(new URL('../../../deploy/redis/sentinel.conf.template', import.meta.url));

/** Sentinel's name of the primary in the test group. */
export const MASTER_NAME = 'seckill';

/** One Redis data server of the group. */
export interface RedisNode {
  /** `r1` (the first primary), `r2`, … */
  readonly name: string;
  readonly port: number;
  /** Its folder: `redis.conf`, the AOF folder `appendonlydir`, `redis.log`. */
  readonly dir: string;
  /** Pid of the current process; undefined after kill() until restartAsReplica(). */
  readonly pid: number | undefined;
}

/** Options of {@link startSentinelGroup}. */
export interface SentinelGroupOptions {
  /** Replicas of the primary; default 1. With 2, a failover leaves the new primary a replica to confirm `WAIT 1`. */
  readonly replicas?: number;
}

/** Primary + replica(s) + three Sentinels. */
export interface SentinelGroup {
  /** `redis-sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/seckill`: SECKILL_REDIS_URL. */
  readonly url: string;
  readonly masterName: string;
  readonly nodes: readonly RedisNode[];
  readonly sentinelPorts: readonly number[];
  /** The node the Sentinels name as primary now (asks them in turn, until one answers within `timeoutMs`). */
  primary(timeoutMs?: number): Promise<RedisNode>;
  /** Sends a signal; with SIGKILL, also waits until the process has exited. */
  kill(node: RedisNode, signal: NodeJS.Signals): Promise<void>;
  /**
   * Waits until every Sentinel names another node than `old` as primary and that node says
   * `role:master`; returns it. The failover is then complete from a client's point of view.
   */
  waitForFailover(old: RedisNode, timeoutMs?: number): Promise<RedisNode>;
  /**
   * Starts a killed node again as a replica of the current primary (`replicaof` rendered in
   * its config), never plainly (it would come back as a second primary with stale data);
   * resolves once its replication link is up and the Sentinels list it as a replica (or,
   * with `waitForSentinels: false`, once its link is up: the Sentinels' view follows within
   * their next INFO round, which only a later failover needs).
   */
  restartAsReplica(node: RedisNode, options?: { readonly waitForSentinels?: boolean }): Promise<void>;
  /** Waits until the group could fail over: every replica linked, and every Sentinel knowing the replicas and the other Sentinels. */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /** Sends one command to a node or Sentinel port and returns the reply (fails within `timeoutMs`). */
  call(port: number, args: readonly (string | number)[], timeoutMs?: number): Promise<unknown>;
  stop(): Promise<void>;
}

/** Renders a template: plain text substitutions of `{{NAME}}`. */
export function renderTemplate(template: string, values: Readonly<Record<string, string | number>>): string {
  const text = template.replace(/\{\{([A-Z_]+)\}\}/g, (whole, key: string) => {
    if (!(key in values)) throw new Error(`template placeholder ${whole} has no value`);
    return String(values[key]);
  });
  return text;
}

/** Sends one command on a short-lived connection; a frozen (SIGSTOP) server fails it within the timeout. */
const call = (port: number, args: readonly (string | number)[], timeoutMs = 2000): Promise<unknown> => redisCall(port, args, timeoutMs);

/** `INFO`-style text → fields. */
function infoFields(text: unknown): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of String(text).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** A flat `[k1, v1, k2, v2…]` reply → fields. */
function pairs(reply: unknown): Map<string, string> {
  const list = reply as string[];
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) fields.set(list[i], list[i + 1]);
  return fields;
}

class Node implements RedisNode {
  process: ServerProcess | undefined;
  constructor(
    readonly name: string,
    readonly port: number,
    readonly dir: string,
  ) {}
  get pid(): number | undefined {
    return this.process?.running ? this.process.pid : undefined;
  }
}

class PrivateSentinelGroup implements SentinelGroup {
  readonly masterName = MASTER_NAME;
  readonly nodes: Node[];
  readonly #sentinels: { port: number; dir: string; process?: ServerProcess }[];
  readonly #redisServer: string;
  readonly #redisSentinel: string;
  readonly #dir: string;

  constructor(dir: string, redisServer: string, redisSentinel: string, dataPorts: number[], sentinelPorts: number[]) {
    this.#dir = dir;
    this.#redisServer = redisServer;
    this.#redisSentinel = redisSentinel;
    this.nodes = dataPorts.map((port, i) => new Node(`r${i + 1}`, port, join(dir, `r${i + 1}`)));
    this.#sentinels = sentinelPorts.map((port, i) => ({ port, dir: join(dir, `s${i + 1}`) }));
  }

  get url(): string {
    return `redis-sentinel://${this.#sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${this.masterName}`;
  }

  get sentinelPorts(): number[] {
    return this.#sentinels.map((s) => s.port);
  }

  call(port: number, args: readonly (string | number)[], timeoutMs?: number): Promise<unknown> {
    return call(port, args, timeoutMs);
  }

  async launch(): Promise<void> {
    const [primary, ...replicas] = this.nodes;
    await this.#startNode(primary, undefined);
    await Promise.all(replicas.map((replica) => this.#startNode(replica, primary.port)));
    await Promise.all(this.#sentinels.map((s) => this.#startSentinel(s, primary.port)));
    await this.waitUntilHealthy();
  }

  async #startNode(node: Node, replicaOf: number | undefined): Promise<void> {
    mkdirSync(node.dir, { recursive: true });
    const config = join(node.dir, 'redis.conf');
    writeFileSync(
      config,
      renderTemplate(readFileSync(REDIS_TEMPLATE, 'utf8'), {
        PORT: node.port,
        BIND: '127.0.0.1',
        DIR: node.dir,
        LOGFILE: join(node.dir, 'redis.log'),
        REPLICAOF: replicaOf === undefined ? '' : `replicaof 127.0.0.1 ${replicaOf}`,
      }),
    );
    node.process = await ServerProcess.start({
      name: `redis-server ${node.name} on port ${node.port}`,
      command: this.#redisServer,
      args: [config],
      logFile: join(node.dir, 'redis-server.out'),
      extraLogFiles: [join(node.dir, 'redis.log')],
      env: { PATH: process.env.PATH },
      cwd: node.dir,
      scratchDir: this.#dir,
    });
    await node.process.waitUntilReady(async () => (await call(node.port, ['PING'], 500)) === 'PONG', { timeoutMs: 10_000 });
  }

  async #startSentinel(sentinel: { port: number; dir: string; process?: ServerProcess }, primaryPort: number): Promise<void> {
    mkdirSync(sentinel.dir, { recursive: true });
    const config = join(sentinel.dir, 'sentinel.conf');
    writeFileSync(
      config,
      renderTemplate(readFileSync(SENTINEL_TEMPLATE, 'utf8'), {
        PORT: sentinel.port,
        BIND: '127.0.0.1',
        DIR: sentinel.dir,
        LOGFILE: join(sentinel.dir, 'sentinel.log'),
        MASTER_NAME: this.masterName,
        PRIMARY_HOST: '127.0.0.1',
        PRIMARY_PORT: primaryPort,
        QUORUM: 2,
      }),
    );
    sentinel.process = await ServerProcess.start({
      name: `redis-sentinel on port ${sentinel.port}`,
      command: this.#redisSentinel,
      args: [config],
      logFile: join(sentinel.dir, 'sentinel.out'),
      extraLogFiles: [join(sentinel.dir, 'sentinel.log')],
      env: { PATH: process.env.PATH },
      cwd: sentinel.dir,
      scratchDir: this.#dir,
    });
    await sentinel.process.waitUntilReady(async () => (await call(sentinel.port, ['PING'], 500)) === 'PONG', { timeoutMs: 10_000 });
  }

  #nodeAt(port: number): Node {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`the Sentinels name 127.0.0.1:${port} as primary, which is no node of this group`);
    return node;
  }

  async #primaryPortFrom(sentinelPort: number): Promise<number | undefined> {
    try {
      const reply = (await call(sentinelPort, ['SENTINEL', 'get-master-addr-by-name', this.masterName])) as [string, string] | null;
      return reply ? Number(reply[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  async primary(timeoutMs = 10_000): Promise<RedisNode> {
    // On a loaded machine a Sentinel may miss one short deadline: ask again until this one.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const sentinel of this.#sentinels) {
        const port = await this.#primaryPortFrom(sentinel.port);
        if (port !== undefined) return this.#nodeAt(port);
      }
      if (Date.now() > deadline) throw new Error(`no Sentinel answered which node is the primary within ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  async kill(node: RedisNode, signal: NodeJS.Signals): Promise<void> {
    const own = node as Node;
    if (!own.process?.running) throw new Error(`redis ${own.name} is not running`);
    own.process.signal(signal);
    if (signal === 'SIGKILL') await own.process.waitForExit(10_000);
  }

  async waitForFailover(old: RedisNode, timeoutMs = 30_000): Promise<RedisNode> {
    const deadline = Date.now() + timeoutMs;
    let seen = '';
    for (;;) {
      const ports = await Promise.all(this.#sentinels.map((s) => this.#primaryPortFrom(s.port)));
      seen = ports.join(', ');
      const candidate = ports[0];
      if (candidate !== undefined && candidate !== old.port && ports.every((p) => p === candidate)) {
        const role = await call(candidate, ['ROLE'], 1000).catch(() => undefined);
        if (Array.isArray(role) && role[0] === 'master') return this.#nodeAt(candidate);
      }
      if (Date.now() > deadline) throw new Error(`no failover away from ${old.name} within ${timeoutMs} ms; Sentinels name ports ${seen}`);
      await sleep(50);
    }
  }

  async restartAsReplica(node: RedisNode, options: { readonly waitForSentinels?: boolean } = {}): Promise<void> {
    const own = node as Node;
    if (own.process?.running) throw new Error(`redis ${own.name} still runs; kill it first`);
    const primary = await this.primary();
    if (primary === own) throw new Error(`the Sentinels still name ${own.name} as primary: wait for the failover first`);
    await this.#startNode(own, primary.port);
    if (options.waitForSentinels ?? true) {
      await this.waitUntilHealthy();
      return;
    }
    // Only the data path: the replica is linked and synced. The Sentinels learn of it at
    // their next INFO round (every 10 s), which only the next failover needs.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const info = infoFields(await call(own.port, ['INFO', 'replication']).catch(() => ''));
      if (info.get('master_link_status') === 'up') return;
      if (Date.now() > deadline) throw new Error(`${own.name} did not link to ${primary.name} within 20 s`);
      await sleep(50);
    }
  }

  async waitUntilHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let why = '';
    for (;;) {
      why = await this.#unhealthyBecause();
      if (why === '') return;
      if (Date.now() > deadline) throw new Error(`the Sentinel group is not ready to fail over after ${timeoutMs} ms: ${why}`);
      await sleep(100);
    }
  }

  async #unhealthyBecause(): Promise<string> {
    let primaryPort: number | undefined;
    for (const sentinel of this.#sentinels) {
      let master: Map<string, string>;
      try {
        master = pairs(await call(sentinel.port, ['SENTINEL', 'master', this.masterName]));
      } catch (error) {
        return `Sentinel ${sentinel.port}: ${(error as Error).message}`;
      }
      if (master.get('num-other-sentinels') !== String(this.#sentinels.length - 1)) {
        return `Sentinel ${sentinel.port} knows ${master.get('num-other-sentinels')} other Sentinels`;
      }
      if (/o_down|s_down|failover/.test(master.get('flags') ?? '')) return `Sentinel ${sentinel.port} flags the primary ${master.get('flags')}`;
      const port = Number(master.get('port'));
      if (primaryPort !== undefined && port !== primaryPort) return 'the Sentinels disagree on the primary';
      primaryPort = port;
      const replicas = (await call(sentinel.port, ['SENTINEL', 'replicas', this.masterName])) as unknown[];
      const linked = replicas.map(pairs).filter((r) => !/s_down|disconnected/.test(r.get('flags') ?? '') && r.get('master-link-status') === 'ok');
      if (linked.length < this.nodes.length - 1) return `Sentinel ${sentinel.port} knows ${linked.length} replicas with a working link`;
    }
    for (const replica of this.nodes.filter((n) => n.port !== primaryPort)) {
      if (replica.pid === undefined) return `replica ${replica.name} does not run`;
      const info = infoFields(await call(replica.port, ['INFO', 'replication']).catch(() => ''));
      if (info.get('master_link_status') !== 'up') return `${replica.name} has no replication link (yet)`;
    }
    return '';
  }

  async stop(): Promise<void> {
    const processes = [...this.#sentinels.map((s) => s.process), ...this.nodes.map((n) => n.process)];
    await Promise.all(processes.map((p) => p?.stop({ graceMs: 3000 })));
    await removeScratchDir(this.#dir);
  }
}

/**
 * Starts a primary, a replica of it and three Sentinels (quorum 2) on free loopback ports,
 * and resolves once a failover could happen (replica linked, Sentinels know each other).
 * Takes ~2–4 s, mostly Sentinels finding each other through their hello messages.
 *
 * @example
 * const group = await startSentinelGroup();
 * after(() => group.stop());
 * const old = await group.primary();
 * await group.kill(old, 'SIGKILL');
 * await group.waitForFailover(old);
 * await group.restartAsReplica(old);
 */
export async function startSentinelGroup(options: SentinelGroupOptions = {}): Promise<SentinelGroup> {
  const replicas = options.replicas ?? 1;
  const redisServer = await ensureBinary('redis-server', 'redis-server');
  const redisSentinel = await ensureBinary('redis-sentinel', 'redis-sentinel');
  for (let attempt = 1; ; attempt++) {
    const dir = createScratchDir('redis-sentinel');
    const ports: number[] = [];
    while (ports.length < replicas + 4) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    const group = new PrivateSentinelGroup(dir, redisServer, redisSentinel, ports.slice(0, replicas + 1), ports.slice(replicas + 1));
    try {
      await group.launch();
      return group;
    } catch (error) {
      await group.stop();
      // Another process took one of the ports between freePort() and the bind: try new ones.
      if (!(error instanceof ServerStartError && error.addressInUse) || attempt >= 3) throw error;
    }
  }
}
