import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { ensureBinary } from './binaries.js';
import { freePort } from './free-port.js';
import { createScratchDir, removeScratchDir } from './scratch-dir.js';
import { ServerProcess, ServerStartError } from './server-process.js';

/** Options for {@link startRedis}. */
export interface RedisServerOptions {
  /** Log every write to the append-only file, so data survives SIGKILL + restart(). Default false. */
  readonly appendonly?: boolean;
  /** More `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  readonly extraArgs?: readonly string[];
}

/** A private `redis-server` on a loopback port, owned by the test that started it. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Its working folder (AOF files, `redis.log`); removed by stop(). */
  readonly dir: string;
  /** Pid of the current process; changes after restart(). */
  readonly pid: number;
  /** Stops the server and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
  /** Sends a signal: `SIGKILL` to crash it, `SIGSTOP`/`SIGCONT` to freeze and thaw it. */
  kill(signal: NodeJS.Signals): void;
  /** Starts it again on the same port and folder with the same options, stopping it first if it runs. */
  restart(): Promise<void>;
  /** FLUSHALL on this server (never on another one). */
  flushAll(): Promise<void>;
}

/**
 * Sends one command over a raw socket and returns the first reply line (`+PONG`,
 * `-LOADING …`). Enough for PING and FLUSHALL, and needs no redis-cli.
 */
function redisCommand(port: number, args: readonly string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no reply from redis on port ${port} within ${timeoutMs} ms`)));
    socket.on('connect', () => {
      socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const end = reply.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(reply.slice(0, end));
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`redis on port ${port} closed the connection without a reply`)));
  });
}

class PrivateRedisServer implements RedisServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly #command: string;
  readonly #args: readonly string[];
  #process: ServerProcess | undefined;
  #stopped = false;

  constructor(command: string, port: number, dir: string, options: RedisServerOptions) {
    this.#command = command;
    this.port = port;
    this.dir = dir;
    this.url = `redis://127.0.0.1:${port}`;
    this.#args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', options.appendonly === true ? 'yes' : 'no',
      '--daemonize', 'no',
      '--logfile', join(dir, 'redis.log'),
      ...(options.extraArgs ?? []),
    ];
  }

  get pid(): number {
    if (this.#process === undefined) throw new Error(`redis on port ${this.port} is not running`);
    return this.#process.pid;
  }

  /** Starts the process and waits until it answers PING (not LOADING). */
  async launch(timeoutMs: number): Promise<void> {
    this.#process = await ServerProcess.start({
      name: `redis-server on port ${this.port}`,
      command: this.#command,
      args: this.#args,
      logFile: join(this.dir, 'redis-server.out'),
      extraLogFiles: [join(this.dir, 'redis.log')],
      env: { PATH: process.env.PATH },
      cwd: this.dir,
      scratchDir: this.dir,
    });
    try {
      await this.#process.waitUntilReady(async () => (await redisCommand(this.port, ['PING'], 1000)) === '+PONG', { timeoutMs });
    } catch (error) {
      await this.#process.stop({ signal: 'SIGKILL' });
      throw error;
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (this.#process === undefined) throw new Error(`redis on port ${this.port} is not running`);
    this.#process.signal(signal);
  }

  async restart(): Promise<void> {
    if (this.#stopped) throw new Error(`redis on port ${this.port} was stopped and its folder removed; start a new one`);
    await this.#process?.stop();
    // The old socket is closed, but another process may have taken the port in the
    // meantime (or the kernel lags a moment): retry briefly before giving up.
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await this.launch(10_000);
        return;
      } catch (error) {
        if (!(error instanceof ServerStartError && error.addressInUse) || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async flushAll(): Promise<void> {
    const reply = await redisCommand(this.port, ['FLUSHALL']);
    if (reply !== '+OK') throw new Error(`FLUSHALL on redis port ${this.port} answered ${reply}`);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#process?.stop();
    await removeScratchDir(this.dir);
  }
}

/**
 * Starts a private `redis-server` on a free loopback port in a fresh temp folder (about
 * 50 ms). Stop it in an `after` hook; if a test forgets, it is killed when the test
 * process exits.
 *
 * @example
 * const redis = await startRedis({ appendonly: true });
 * after(() => redis.stop());
 * redis.kill('SIGKILL');
 * await redis.restart(); // the data written before the crash is back
 */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const command = await ensureBinary('redis-server', 'redis-server');
  for (let attempt = 1; ; attempt++) {
    const dir = createScratchDir('redis');
    const server = new PrivateRedisServer(command, await freePort(), dir, options);
    try {
      await server.launch(10_000);
      return server;
    } catch (error) {
      await server.stop();
      // Another process took the port between freePort() and the bind: use a new one.
      if (!(error instanceof ServerStartError && error.addressInUse) || attempt >= 3) throw error;
    }
  }
}

/**
 * Sends one command on a short-lived connection to one Redis node (never through a
 * cluster or Sentinel); a frozen (SIGSTOP) server fails it within the timeout. With
 * `readonly`, the connection first says READONLY (reads on a cluster replica).
 */
export async function redisCall(port: number, args: readonly (string | number)[], timeoutMs = 2000, readonly = false): Promise<unknown> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    if (readonly) await client.call('READONLY');
    return await client.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    client.disconnect();
  }
}

/**
 * Waits until the primary at `url` counts a replica in `WAIT`: a replica whose link has
 * just come up is not counted until its first acknowledgement (Redis 7.0, up to about a
 * second), so a test of durability would otherwise test the handshake.
 */
export async function waitUntilReplicaAcknowledges(url: string): Promise<void> {
  const probe = new Redis(url);
  try {
    for (let i = 0; ; i++) {
      await probe.set('replication-probe', String(i));
      if (Number(await probe.call('WAIT', 1, 200)) >= 1) return;
      if (i >= 50) throw new Error(`no replica of ${url} acknowledged a write within about 10 s`);
    }
  } finally {
    probe.disconnect();
  }
}
