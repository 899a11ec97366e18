import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ensureBinary, isRoot, postgresBinDir } from './binaries.js';
import { createDatabaseServer, type DatabaseServer } from './database-server.js';
import { atProcessExit } from './exit-cleanup.js';
import { freePort } from './free-port.js';
import { createScratchDir, killAndWaitSync, processIdentity, recordServerProcess, removeScratchDir } from './scratch-dir.js';
import { ServerProcess } from './server-process.js';

const DEPLOY = new URL('../../../deploy/', import.meta.url);
/** The shipped templates; the harness renders exactly the files an operator deploys. */
export const PATRONI_TEMPLATE = fileURLToPath(new URL('patroni/patroni.yml.template', DEPLOY));
export const ETCD_TEMPLATE = fileURLToPath(new URL('patroni/etcd.conf.yml.template', DEPLOY));
export const POSTGRES_WRITER_TEMPLATE = fileURLToPath(new URL('haproxy/postgres-writer.cfg.template', DEPLOY));

// PostgreSQL and Patroni refuse to run as root.
const SERVER_USER = 'postgres';
const HOST = '127.0.0.1';

/** One member as Patroni's `GET /cluster` lists it. */
export interface PatroniMember {
  readonly name: string;
  /** `leader`, `sync_standby` or `replica`. */
  readonly role: string;
  /** `running`, `starting`, `stopped`, `crashed`, … */
  readonly state: string;
  readonly lag?: number | string;
}

/** One node: a Patroni process and the PostgreSQL it runs, in its own folder. */
export interface PatroniNode {
  readonly name: string;
  readonly pgPort: number;
  readonly restPort: number;
  /** `http://127.0.0.1:<restPort>`: Patroni's REST API. */
  readonly restUrl: string;
  /** The running Patroni, or undefined after killNode() until restartNode(). */
  patroni: ServerProcess | undefined;
}

/** etcd, two Patroni nodes and HAProxy's `writer` listener, all on loopback. */
export interface PatroniCluster {
  /** The HAProxy port that always leads to the current primary. */
  readonly writerPort: number;
  /** Superuser URL through the writer: `postgres://postgres:…@127.0.0.1:<writerPort>/postgres`. */
  readonly rootUrl: string;
  /** The cluster seen through the writer, to create throwaway databases on (kill() throws: use killNode). */
  readonly server: DatabaseServer;
  readonly nodes: readonly PatroniNode[];
  /** The members as a live node's Patroni sees them (empty when no Patroni answers). */
  members(): Promise<PatroniMember[]>;
  /** The node holding the leader key with a running primary, if any. */
  leader(): Promise<PatroniNode | undefined>;
  /**
   * kill -9 of a whole node: Patroni's process group and PostgreSQL's (postmaster and
   * backends), as when the machine dies; resolves once every process has exited.
   */
  killNode(node: PatroniNode): Promise<void>;
  /** Starts a killed node's Patroni again on its folder: it rejoins as a replica (pg_rewind). */
  restartNode(node: PatroniNode): Promise<void>;
  /** Waits until a running leader other than `except` holds the key. */
  waitForLeader(options?: { readonly except?: PatroniNode; readonly timeoutMs?: number }): Promise<PatroniNode>;
  /** Waits until a replica is `sync_standby` and running: only then may the next fault be injected. */
  waitForSyncStandby(timeoutMs?: number): Promise<PatroniNode>;
  /**
   * Waits until a connection through the writer port reaches a writable primary, and
   * returns the node it reached (`expect`, when given, must be that node).
   */
  waitForWriter(options?: { readonly expect?: PatroniNode; readonly timeoutMs?: number }): Promise<PatroniNode>;
  /** The `status` of a node in HAProxy's `writer` listener: `UP`, `DOWN`, … */
  writerStatus(node: PatroniNode): Promise<string>;
  /** Runs `patronictl -c <node's config> <args>` as the postgres user and returns its output. */
  patronictl(node: PatroniNode, args: readonly string[]): Promise<string>;
  /** Stops every process and removes the folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Replaces every `{{KEY}}` of a template; throws when one is left unfilled. */
export function renderTemplate(template: string, values: Readonly<Record<string, string | number>>): string {
  let text = template;
  for (const [key, value] of Object.entries(values)) text = text.replaceAll(`{{${key}}}`, String(value));
  const left = /\{\{([A-Z_]+)\}\}/.exec(text);
  if (left) throw new Error(`template placeholder {{${left[1]}}} has no value; the harness and the template disagree`);
  return text;
}

function userIds(user: string): { uid: number; gid: number } {
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((line) => line.startsWith(`${user}:`));
  if (entry === undefined) throw new Error(`user ${user} does not exist; install the postgresql package (it creates the user)`);
  const fields = entry.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

async function getJson(url: string, timeoutMs = 1000): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

function socketCommand(path: string, line: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    let reply = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no reply from the HAProxy stats socket within ${timeoutMs} ms`)));
    socket.on('connect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk) => (reply += chunk.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => resolve(reply));
  });
}

/** The postmaster's pid from its lock file, or undefined when PostgreSQL is not running. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && processIdentity(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Pids of a process's children (Linux /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name, which may contain spaces and parentheses.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

/**
 * Kills a node's processes with SIGKILL in one go and waits until they are gone: the
 * process groups of `groupLeaders` (Patroni) and the postmaster with every child. Patroni
 * starts PostgreSQL in a session of its own (so that it outlives a Patroni crash), and each
 * backend calls setsid() too, so no single group holds them all. The postmaster is stopped
 * first so that it forks nothing while its children are listed.
 */
function killNodeSync(dataDir: string, groupLeaders: readonly number[]): void {
  const postmaster = postmasterPid(dataDir);
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  if (postmaster !== undefined) signal(postmaster, 'SIGSTOP');
  const targets = [...groupLeaders.map((pid) => -pid), ...(postmaster === undefined ? [] : [postmaster, ...childrenOf(postmaster)])];
  const identities = targets.map((pid) => processIdentity(Math.abs(pid)));
  for (const pid of targets) signal(pid, 'SIGKILL');
  for (const identity of identities) if (identity !== undefined) killAndWaitSync(identity);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, describe: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe().catch(() => undefined);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms; ${await describe().catch(() => '')}`);
    await sleep(50);
  }
}

class PrivateNode implements PatroniNode {
  readonly restUrl: string;
  patroni: ServerProcess | undefined;
  readonly config: string;
  readonly dataDir: string;
  #forgetPostmaster: (() => void) | undefined;

  constructor(
    readonly name: string,
    readonly pgPort: number,
    readonly restPort: number,
    readonly dir: string,
    /** The cluster's scratch folder, whose owner record lists the processes to sweep. */
    readonly clusterDir: string,
  ) {
    this.restUrl = `http://${HOST}:${restPort}`;
    this.config = join(dir, 'patroni.yml');
    this.dataDir = join(dir, 'data');
  }

  async launch(command: string): Promise<void> {
    this.patroni = await ServerProcess.start({
      name: `patroni ${this.name} (postgres ${this.pgPort}, REST ${this.restPort})`,
      command,
      args: [this.config],
      logFile: join(this.dir, 'patroni.log'),
      extraLogFiles: [join(this.dataDir, 'log', 'postgresql.log')],
      runAsUser: isRoot() ? SERVER_USER : undefined,
      // `env -i`: an exported PGPASSWORD (or PGHOST…) would leak into pg_basebackup and pg_rewind.
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: this.dir },
      cwd: this.dir,
      scratchDir: this.clusterDir,
    });
    // Not a child of Patroni's group: it needs its own exit hook and sweep record.
    this.#forgetPostmaster ??= atProcessExit('stop-processes', () => killNodeSync(this.dataDir, []));
  }

  /** Records the postmaster for the stale sweep once it runs. */
  notePostmaster(): void {
    const pid = postmasterPid(this.dataDir);
    if (pid !== undefined) recordServerProcess(this.clusterDir, pid);
  }

  /** kill -9 of the whole node, as when its machine dies. */
  kill(): void {
    killNodeSync(this.dataDir, this.patroni?.running ? [this.patroni.pid] : []);
  }

  async stop(): Promise<void> {
    if (this.patroni?.running) {
      // Patroni stops PostgreSQL (fast mode) on SIGTERM.
      await this.patroni.stop({ signal: 'SIGTERM', graceMs: 5000 }).catch(() => undefined);
    }
    this.patroni = undefined;
    killNodeSync(this.dataDir, []);
    this.#forgetPostmaster?.();
    this.#forgetPostmaster = undefined;
  }
}

/** Options of {@link startPatroniCluster}. */
export interface PatroniClusterOptions {
  /** How many Patroni nodes; default 2 (a primary and its synchronous standby). */
  readonly nodes?: number;
  /** How long to wait for the whole topology; default 60 s. */
  readonly timeoutMs?: number;
}

/**
 * Starts a PostgreSQL 15 cluster managed by Patroni from the shipped templates, on free
 * loopback ports, in one temp folder: a single-member etcd, `nodes` Patroni nodes
 * (synchronous mode), and HAProxy whose `writer` listener health-checks each Patroni's
 * `OPTIONS /primary` so it always leads to the current primary. Resolves once a primary
 * serves through the writer and a replica is `sync_standby` (5–10 s on 2 cores).
 *
 * Everything is killed and the folder removed by stop(), or when the process exits.
 *
 * @example
 * const cluster = await startPatroniCluster();
 * after(() => cluster.stop());
 * const url = await cluster.server.createDatabase(); // through HAProxy's writer port
 * const old = await cluster.waitForWriter();
 * await cluster.killNode(old);
 * const fresh = await cluster.waitForLeader({ except: old });
 */
export async function startPatroniCluster(options: PatroniClusterOptions = {}): Promise<PatroniCluster> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const [etcdCommand, patroniCommand, haproxyCommand, binDir] = await Promise.all([
    ensureBinary('etcd', 'etcd-server'),
    ensureBinary('patroni', 'patroni'),
    ensureBinary('haproxy', 'haproxy'),
    postgresBinDir(),
  ]);
  const dir = createScratchDir('patroni');
  const owner = isRoot() ? userIds(SERVER_USER) : undefined;
  const giveAway = (path: string): void => {
    if (owner !== undefined) chownSync(path, owner.uid, owner.gid);
  };
  giveAway(dir);
  const secret = (): string => randomBytes(12).toString('hex');
  const passwords = { SUPERUSER_PASSWORD: secret(), REPLICATION_PASSWORD: secret(), REWIND_PASSWORD: secret() };
  const scope = `seckill-${randomBytes(3).toString('hex')}`;
  const processes: ServerProcess[] = [];
  const nodes: PrivateNode[] = [];
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all(processes.map((p) => p.stop({ graceMs: 2000 }).catch(() => undefined)));
    await removeScratchDir(dir);
  };

  try {
    // etcd: the DCS.
    const etcdDir = join(dir, 'etcd');
    mkdirSync(etcdDir, { mode: 0o700 });
    const etcdPort = await freePort();
    const etcdConfig = join(etcdDir, 'etcd.conf.yml');
    writeFileSync(
      etcdConfig,
      renderTemplate(readFileSync(ETCD_TEMPLATE, 'utf8'), {
        NAME: 'etcd1',
        DATA_DIR: join(etcdDir, 'data'),
        HOST,
        CLIENT_PORT: etcdPort,
        PEER_PORT: await freePort(),
        CLUSTER_TOKEN: scope,
      }),
    );
    const etcd = await ServerProcess.start({
      name: `etcd on port ${etcdPort}`,
      command: etcdCommand,
      args: ['--config-file', etcdConfig],
      logFile: join(etcdDir, 'etcd.log'),
      env: { PATH: '/usr/bin:/bin' },
      cwd: etcdDir,
      scratchDir: dir,
    });
    processes.push(etcd);
    await etcd.waitUntilReady(async () => ((await getJson(`http://${HOST}:${etcdPort}/health`)) as { health?: string }).health === 'true', { timeoutMs: 15_000 });

    // The Patroni nodes, started together: the first to take etcd's initialize key runs
    // initdb, the other waits and clones it with pg_basebackup.
    for (let i = 1; i <= (options.nodes ?? 2); i++) {
      const nodeDir = join(dir, `pg${i}`);
      mkdirSync(nodeDir, { mode: 0o700 });
      giveAway(nodeDir);
      const node = new PrivateNode(`pg${i}`, await freePort(), await freePort(), nodeDir, dir);
      writeFileSync(
        node.config,
        renderTemplate(readFileSync(PATRONI_TEMPLATE, 'utf8'), {
          SCOPE: scope,
          NAME: node.name,
          HOST,
          REST_PORT: node.restPort,
          PG_PORT: node.pgPort,
          ETCD_HOSTS: `${HOST}:${etcdPort}`,
          DATA_DIR: node.dataDir,
          BIN_DIR: binDir,
          PGPASS: join(nodeDir, 'pgpass'),
          SOCKET_DIR: nodeDir,
          CLIENT_CIDR: `${HOST}/32`,
          ...passwords,
        }),
        { mode: 0o600 },
      );
      giveAway(node.config);
      nodes.push(node);
    }
    await Promise.all(nodes.map((n) => n.launch(patroniCommand)));

    // HAProxy's writer listener.
    const haproxyDir = join(dir, 'haproxy');
    mkdirSync(haproxyDir, { mode: 0o700 });
    const writerPort = await freePort();
    const statsSocket = join(haproxyDir, 'haproxy.sock');
    const haproxyConfig = join(haproxyDir, 'haproxy.cfg');
    writeFileSync(
      haproxyConfig,
      renderTemplate(readFileSync(POSTGRES_WRITER_TEMPLATE, 'utf8'), {
        WRITER_BIND: `${HOST}:${writerPort}`,
        STATS_SOCKET: statsSocket,
        SERVERS: nodes.map((n) => `    server ${n.name} ${HOST}:${n.pgPort} check port ${n.restPort}`).join('\n'),
      }),
    );
    const haproxy = await ServerProcess.start({
      name: `haproxy (postgres writer) on port ${writerPort}`,
      command: haproxyCommand,
      // -db: foreground, so the pid we hold is HAProxy's.
      args: ['-f', haproxyConfig, '-db'],
      logFile: join(haproxyDir, 'haproxy.out'),
      env: { PATH: '/usr/bin:/bin' },
      cwd: haproxyDir,
      scratchDir: dir,
    });
    processes.push(haproxy);
    await haproxy.waitUntilReady(async () => (await socketCommand(statsSocket, 'show info')).includes('Pid:'), { timeoutMs: 10_000 });

    const rootUrl = `postgres://postgres:${passwords.SUPERUSER_PASSWORD}@${HOST}:${writerPort}/postgres`;
    const byName = (name: string): PrivateNode | undefined => nodes.find((n) => n.name === name);

    const members = async (): Promise<PatroniMember[]> => {
      for (const node of nodes) {
        if (!node.patroni?.running) continue;
        try {
          const body = (await getJson(`${node.restUrl}/cluster`)) as { members?: PatroniMember[] };
          return body.members ?? [];
        } catch {
          // ask the next node
        }
      }
      return [];
    };
    const describe = async (): Promise<string> => {
      const logs = nodes.map((n) => n.patroni?.describeLogs() ?? `${n.name}: not running`).join('\n');
      return `members: ${JSON.stringify(await members())}\n${logs}`;
    };
    const leader = async (): Promise<PrivateNode | undefined> => {
      const found = (await members()).find((m) => m.role === 'leader' && m.state === 'running');
      return found === undefined ? undefined : byName(found.name);
    };
    /** The node a writer connection reaches, when it is a writable primary. */
    const writerReaches = async (): Promise<PrivateNode | undefined> => {
      const client = new pg.Client({ connectionString: rootUrl, connectionTimeoutMillis: 1000, query_timeout: 1000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const { rows } = await client.query<{ recovery: boolean; port: number }>('SELECT pg_is_in_recovery() AS recovery, inet_server_port() AS port');
        return rows[0].recovery ? undefined : nodes.find((n) => n.pgPort === Number(rows[0].port));
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    const statRow = async (node: PatroniNode): Promise<string> => {
      const csv = await socketCommand(statsSocket, 'show stat');
      const lines = csv.split('\n');
      const header = lines[0].replace(/^# /, '').split(',');
      const row = lines.slice(1).map((l) => l.split(',')).find((f) => f[0] === 'writer' && f[1] === node.name);
      if (row === undefined) throw new Error(`HAProxy has no row writer/${node.name}:\n${csv}`);
      return row[header.indexOf('status')];
    };

    const cluster: PatroniCluster = {
      writerPort,
      rootUrl,
      server: createDatabaseServer(rootUrl),
      nodes,
      members,
      leader,
      async killNode(node) {
        const own = byName(node.name);
        if (own === undefined) throw new Error(`${node.name} is not a node of this cluster`);
        own.kill();
        // waitForExit, not `exited`: it holds the event loop open while waiting.
        await own.patroni?.waitForExit(10_000);
        own.patroni = undefined;
      },
      async restartNode(node) {
        const own = byName(node.name);
        if (own === undefined) throw new Error(`${node.name} is not a node of this cluster`);
        if (own.patroni?.running) throw new Error(`${node.name} still runs; killNode() it first`);
        await own.launch(patroniCommand);
        await own.patroni!.waitUntilReady(async () => (await fetch(`${own.restUrl}/health`, { signal: AbortSignal.timeout(1000) })).ok, { timeoutMs });
        own.notePostmaster();
      },
      waitForLeader(opts = {}) {
        return waitFor('a new Patroni leader', async () => {
          const found = await leader();
          return found !== undefined && found !== opts.except ? found : undefined;
        }, opts.timeoutMs ?? 30_000, describe);
      },
      waitForSyncStandby(ms = 30_000) {
        return waitFor('a replica becoming sync_standby', async () => {
          const found = (await members()).find((m) => m.role === 'sync_standby' && m.state === 'running');
          return found === undefined ? undefined : byName(found.name);
        }, ms, describe);
      },
      waitForWriter(opts = {}) {
        return waitFor('a writable primary through HAProxy', async () => {
          const reached = await writerReaches();
          return reached !== undefined && (opts.expect === undefined || reached === opts.expect) ? reached : undefined;
        }, opts.timeoutMs ?? 30_000, describe);
      },
      writerStatus: statRow,
      async patronictl(node, args) {
        const own = byName(node.name);
        if (own === undefined) throw new Error(`${node.name} is not a node of this cluster`);
        const run = await ServerProcess.start({
          name: `patronictl ${args.join(' ')}`,
          command: await ensureBinary('patronictl', 'patroni'),
          args: ['-c', own.config, ...args],
          logFile: join(own.dir, 'patronictl.out'),
          runAsUser: isRoot() ? SERVER_USER : undefined,
          env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: own.dir },
          cwd: own.dir,
        });
        if (!(await run.waitForExit(30_000))) {
          await run.stop({ signal: 'SIGKILL' });
          throw new Error(`patronictl ${args.join(' ')} did not finish within 30 s`);
        }
        const exit = await run.exited;
        const output = readFileSync(join(own.dir, 'patronictl.out'), 'utf8');
        writeFileSync(join(own.dir, 'patronictl.out'), '');
        if (exit.code !== 0) throw new Error(`patronictl ${args.join(' ')} exited with ${String(exit.code ?? exit.signal)}:\n${output}`);
        return output;
      },
      stop,
    };
    await cluster.waitForLeader({ timeoutMs });
    await cluster.waitForSyncStandby(timeoutMs);
    await cluster.waitForWriter({ timeoutMs });
    for (const node of nodes) node.notePostmaster();
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}
