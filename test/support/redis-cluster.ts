/**
 * A private Redis Cluster for tests: three masters (optionally one replica each) started with
 * `--cluster-enabled yes` on free loopback ports in one temp folder, joined with
 * `redis-cli --cluster create`, as an operator would. Never the machine's own Redis and never
 * ports 6379/26379: every port (client and cluster bus) comes from {@link freePort}.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBinary } from './binaries.js';
import { freePort } from './free-port.js';
import { createScratchDir, removeScratchDir } from './scratch-dir.js';
import { redisCall } from './redis-server.js';
import { runSetupCommand, ServerProcess, ServerStartError } from './server-process.js';

/** One master of the test cluster. */
export interface ClusterNode {
  /** `m1`, `m2`, `m3`. */
  readonly name: string;
  readonly port: number;
  /** Its folder: `nodes.conf`, `redis.log`. */
  readonly dir: string;
}

/** Three joined masters, and their replicas if asked for. */
export interface RedisClusterGroup {
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`: SECKILL_REDIS_URL. */
  readonly url: string;
  /** The nodes started as masters (`m1`…). */
  readonly masters: readonly ClusterNode[];
  /** The nodes started as replicas (`r1`…); empty unless `replicas: 1`. */
  readonly replicas: readonly ClusterNode[];
  /** The replica that replicates `master` now. */
  replicaOf(master: ClusterNode): Promise<ClusterNode>;
  /** Sends a signal to a node: `SIGSTOP`/`SIGCONT` to freeze and thaw it. */
  kill(node: ClusterNode, signal: NodeJS.Signals): void;
  /**
   * The node that owns `key`'s slot now (asks `CLUSTER KEYSLOT` and `CLUSTER SLOTS` of the
   * first node that answers): after a failover, the promoted replica.
   */
  masterOf(key: string): Promise<ClusterNode>;
  /**
   * Starts a killed node again on its port with its `nodes.conf` and no data, as an operator
   * restarting a crashed Redis would; a master that was failed over rejoins as a replica of
   * its successor. Resolves once it answers PING.
   */
  restart(node: ClusterNode): Promise<void>;
  /**
   * Sends one command to one node and returns the reply (fails within `timeoutMs`); with
   * `readonly`, sends `READONLY` first, so a replica answers reads of its master's slots.
   */
  call(port: number, args: readonly (string | number)[], timeoutMs?: number, options?: { readonly readonly?: boolean }): Promise<unknown>;
  /** Stops every node and removes the folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Masters to start; default 3 (the least `redis-cli --cluster create` accepts). */
  readonly masters?: number;
  /** Replicas per master: 0 (default) or 1. */
  readonly replicas?: 0 | 1;
}

/** Sends one command on a short-lived plain (non-cluster) connection to one node. */
const call = redisCall;

class Node implements ClusterNode {
  process: ServerProcess | undefined;
  constructor(
    readonly name: string,
    readonly port: number,
    readonly busPort: number,
    readonly dir: string,
  ) {}
}

class PrivateRedisCluster implements RedisClusterGroup {
  readonly masters: Node[];
  readonly replicas: Node[];
  readonly #dir: string;
  readonly #redisServer: string;
  readonly #redisCli: string;
  #stopped = false;

  constructor(dir: string, redisServer: string, redisCli: string, masters: number, ports: number[], busPorts: number[]) {
    this.#dir = dir;
    this.#redisServer = redisServer;
    this.#redisCli = redisCli;
    const nodes = ports.map((port, i) => {
      const name = i < masters ? `m${i + 1}` : `r${i + 1 - masters}`;
      return new Node(name, port, busPorts[i], join(dir, name));
    });
    this.masters = nodes.slice(0, masters);
    this.replicas = nodes.slice(masters);
  }

  get #all(): Node[] {
    return [...this.masters, ...this.replicas];
  }

  async replicaOf(master: ClusterNode): Promise<ClusterNode> {
    for (const replica of this.replicas) {
      const info = String(await call(replica.port, ['INFO', 'replication']));
      if (new RegExp(`master_port:${master.port}\\b`).test(info)) return replica;
    }
    throw new Error(`no replica of this cluster replicates ${master.name} (port ${master.port})`);
  }

  kill(node: ClusterNode, signal: NodeJS.Signals): void {
    const running = this.#all.find((n) => n.port === node.port)?.process;
    if (!running) throw new Error(`${node.name} does not run`);
    running.signal(signal);
  }

  get url(): string {
    return `redis-cluster://${this.masters.map((m) => `127.0.0.1:${m.port}`).join(',')}`;
  }

  call(port: number, args: readonly (string | number)[], timeoutMs?: number, options: { readonly readonly?: boolean } = {}): Promise<unknown> {
    return call(port, args, timeoutMs, options.readonly === true);
  }

  async masterOf(key: string): Promise<ClusterNode> {
    let lastError: unknown;
    for (const node of this.#all) {
      // A killed or frozen node cannot say; any other one knows the whole slot map.
      let slot: number;
      let ranges: [number, number, [string, number, string]][];
      try {
        slot = Number(await call(node.port, ['CLUSTER', 'KEYSLOT', key], 1000));
        ranges = (await call(node.port, ['CLUSTER', 'SLOTS'], 1000)) as typeof ranges;
      } catch (error) {
        lastError = error;
        continue;
      }
      const owner = ranges.find(([first, last]) => slot >= first && slot <= last);
      const master = this.#all.find((m) => m.port === Number(owner?.[2][1]));
      if (!master) throw new Error(`no node of this cluster owns slot ${slot} (key ${key}): ${JSON.stringify(ranges)}`);
      return master;
    }
    throw new Error(`no node of this cluster answered CLUSTER SLOTS: ${String(lastError)}`);
  }

  async restart(node: ClusterNode): Promise<void> {
    const known = this.#all.find((n) => n.port === node.port);
    if (!known) throw new Error(`${node.name} is not a node of this cluster`);
    if (known.process) await known.process.stop({ signal: 'SIGKILL' });
    await this.#startNode(known);
  }

  async launch(): Promise<void> {
    await Promise.all(this.#all.map((node) => this.#startNode(node)));
    // `--cluster-yes` accepts the proposed layout: redis-cli makes the first nodes listed the
    // masters and the rest their replicas (it warns that they share a host, which is fine here).
    await runSetupCommand({
      name: 'redis-cli --cluster create',
      command: this.#redisCli,
      args: [
        '--cluster', 'create',
        ...this.#all.map((m) => `127.0.0.1:${m.port}`),
        '--cluster-replicas', this.replicas.length > 0 ? '1' : '0',
        '--cluster-yes',
      ],
      logFile: join(this.#dir, 'cluster-create.out'),
      env: { PATH: process.env.PATH },
      cwd: this.#dir,
      timeoutMs: 30_000,
    });
    await this.#waitUntilOk(20_000);
  }

  async #startNode(node: Node): Promise<void> {
    mkdirSync(node.dir, { recursive: true });
    node.process = await ServerProcess.start({
      name: `redis-server ${node.name} (cluster) on port ${node.port}`,
      command: this.#redisServer,
      args: [
        '--port', String(node.port),
        // The bus port is picked free too, instead of the default port + 10000 that may be taken.
        '--cluster-port', String(node.busPort),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(node.dir, 'nodes.conf'),
        // Mark a node down, and fail its replica over, within seconds.
        '--cluster-node-timeout', '2000',
        '--dir', node.dir,
        '--save', '',
        '--appendonly', 'no',
        '--daemonize', 'no',
        '--logfile', join(node.dir, 'redis.log'),
      ],
      logFile: join(node.dir, 'redis-server.out'),
      extraLogFiles: [join(node.dir, 'redis.log')],
      env: { PATH: process.env.PATH },
      cwd: node.dir,
      scratchDir: this.#dir,
    });
    await node.process.waitUntilReady(async () => (await call(node.port, ['PING'], 500)) === 'PONG', { timeoutMs: 10_000 });
  }

  /** Every node says `cluster_state:ok` and knows every other one; every replica is linked. */
  async #waitUntilOk(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let why = '';
    while (Date.now() < deadline) {
      why = '';
      for (const node of this.#all) {
        const info = String(await call(node.port, ['CLUSTER', 'INFO']).catch((error: Error) => error.message));
        if (!/cluster_state:ok/.test(info)) why = `${node.name}: ${info.split('\r\n')[0]}`;
        else if (!new RegExp(`cluster_known_nodes:${this.#all.length}\\b`).test(info)) why = `${node.name} does not know every node yet`;
        if (why) break;
      }
      for (const replica of why ? [] : this.replicas) {
        const info = String(await call(replica.port, ['INFO', 'replication']).catch((error: Error) => error.message));
        if (!/master_link_status:up/.test(info)) why = `replica ${replica.name} has no replication link yet`;
        if (why) break;
      }
      if (!why) return;
      await sleep(100);
    }
    throw new Error(`the test Redis Cluster did not reach cluster_state:ok within ${timeoutMs} ms (${why}); logs in ${this.#dir}`);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    // A frozen (SIGSTOP) node ignores SIGTERM until thawed; a killed one needs nothing.
    for (const node of this.#all) {
      try {
        node.process?.signal('SIGCONT');
      } catch {
        // It already exited.
      }
    }
    await Promise.all(this.#all.map((n) => n.process?.stop({ graceMs: 3000 })));
    await removeScratchDir(this.#dir);
  }
}

/**
 * Starts three cluster-enabled masters (and with `replicas: 1` a replica of each) on free
 * loopback ports, joins them into one cluster (16384 slots spread evenly), and resolves once
 * every node says `cluster_state:ok` and every replica is linked (about 1–3 s). Stop it in an `after` hook; if a test forgets, it is killed at exit.
 *
 * @example
 * const cluster = await startRedisCluster();
 * after(() => cluster.stop());
 * const store = await RedisStockStore.connect(cluster.url);
 * const owner = await cluster.masterOf('seckill:{sale:1}:state');
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterGroup> {
  const count = options.masters ?? 3;
  const total = count * (1 + (options.replicas ?? 0));
  const redisServer = await ensureBinary('redis-server', 'redis-server');
  const redisCli = await ensureBinary('redis-cli', 'redis-tools');
  for (let attempt = 1; ; attempt++) {
    const dir = createScratchDir('redis-cluster');
    const ports: number[] = [];
    while (ports.length < 2 * total) {
      const port = await freePort();
      if (!ports.includes(port) && port !== 6379 && port !== 26379) ports.push(port);
    }
    const group = new PrivateRedisCluster(dir, redisServer, redisCli, count, ports.slice(0, total), ports.slice(total));
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
