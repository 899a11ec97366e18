import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBinary } from './binaries.js';
import { freePort } from './free-port.js';
import { createScratchDir, removeScratchDir } from './scratch-dir.js';
import { ServerProcess, ServerStartError } from './server-process.js';

/** The shipped template; the suite renders the same file an operator deploys. */
export const HAPROXY_TEMPLATE = fileURLToPath(new URL('../../../deploy/haproxy/haproxy.cfg.template', import.meta.url));

/** One API node behind the balancer. */
export interface BackendServer {
  readonly name: string;
  readonly port: number;
}

/** A private HAProxy on a loopback port balancing the `api` backend. */
export interface Haproxy {
  /** `http://127.0.0.1:PORT`: where clients send purchases. */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The `status` column of `show stat` for a server of the `api` backend: `UP`, `DOWN`, `UP 1/2`, `MAINT`, … */
  serverStatus(name: string): Promise<string>;
  /** Connection retries (`wretr`) and redispatches (`wredis`) of the `api` backend so far. */
  backendCounters(): Promise<{ retries: number; redispatches: number }>;
  /** Waits until HAProxy's health checks report the server fully `UP` (or fully `DOWN`). */
  waitForStatus(name: string, status: 'UP' | 'DOWN', timeoutMs?: number): Promise<void>;
  /** Sends a runtime API command (stats socket) and returns the reply. */
  command(line: string): Promise<string>;
  stop(): Promise<void>;
}

/** Renders the template: values are plain text substitutions, one server line per node. */
export function renderHaproxyConfig(template: string, values: { frontendBind: string; statsSocket: string; servers: readonly BackendServer[] }): string {
  const servers = values.servers.map((s) => `    server ${s.name} 127.0.0.1:${s.port} check`).join('\n');
  return template
    .replaceAll('{{FRONTEND_BIND}}', values.frontendBind)
    .replaceAll('{{STATS_SOCKET}}', values.statsSocket)
    .replaceAll('{{SERVERS}}', servers);
}

function socketCommand(path: string, line: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    let reply = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no reply from the HAProxy stats socket within ${timeoutMs} ms`)));
    socket.on('connect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk) => (reply += chunk.toString('utf8')));
    socket.on('error', reject);
    // Without `prompt` mode HAProxy answers one command and closes.
    socket.on('close', () => resolve(reply));
  });
}

class PrivateHaproxy implements Haproxy {
  readonly url: string;
  #process: ServerProcess | undefined;
  readonly #socket: string;

  constructor(readonly port: number, readonly dir: string) {
    this.url = `http://127.0.0.1:${port}`;
    this.#socket = join(dir, 'haproxy.sock');
  }

  async launch(command: string, servers: readonly BackendServer[]): Promise<void> {
    const config = join(this.dir, 'haproxy.cfg');
    writeFileSync(config, renderHaproxyConfig(readFileSync(HAPROXY_TEMPLATE, 'utf8'), { frontendBind: `127.0.0.1:${this.port}`, statsSocket: this.#socket, servers }));
    this.#process = await ServerProcess.start({
      name: `haproxy on port ${this.port}`,
      command,
      // -db: foreground, no daemon, so the pid we hold is HAProxy's.
      args: ['-f', config, '-db'],
      logFile: join(this.dir, 'haproxy.out'),
      env: { PATH: process.env.PATH },
      cwd: this.dir,
      scratchDir: this.dir,
    });
    await this.#process.waitUntilReady(async () => (await this.command('show info')).includes('Pid:'), { timeoutMs: 10_000 });
  }

  command(line: string): Promise<string> {
    return socketCommand(this.#socket, line);
  }

  /** One row of `show stat` (proxy `api`, server or BACKEND) as column → value. */
  async #statRow(svname: string): Promise<Record<string, string>> {
    const csv = await this.command('show stat');
    const lines = csv.split('\n');
    const header = lines[0].replace(/^# /, '').split(',');
    for (const line of lines.slice(1)) {
      const fields = line.split(',');
      if (fields[0] === 'api' && fields[1] === svname) return Object.fromEntries(header.map((h, i) => [h, fields[i] ?? '']));
    }
    throw new Error(`HAProxy has no row api/${svname}:\n${csv}`);
  }

  async serverStatus(name: string): Promise<string> {
    return (await this.#statRow(name)).status;
  }

  async backendCounters(): Promise<{ retries: number; redispatches: number }> {
    const row = await this.#statRow('BACKEND');
    return { retries: Number(row.wretr || 0), redispatches: Number(row.wredis || 0) };
  }

  async waitForStatus(name: string, status: 'UP' | 'DOWN', timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      last = await this.serverStatus(name);
      if (last === status) return;
      await sleep(25);
    }
    throw new Error(`HAProxy server api/${name} is still ${last} after ${timeoutMs} ms, expected ${status}`);
  }

  async stop(): Promise<void> {
    await this.#process?.stop();
    this.#process = undefined;
    await removeScratchDir(this.dir);
  }
}

/**
 * Starts HAProxy (installing the Debian package when missing and allowed) from
 * `deploy/haproxy/haproxy.cfg.template` on a free loopback port, in a temp folder,
 * balancing `servers`; resolves once its runtime API answers.
 */
export async function startHaproxy(servers: readonly BackendServer[]): Promise<Haproxy> {
  const command = await ensureBinary('haproxy', 'haproxy');
  for (let attempt = 1; ; attempt++) {
    const proxy = new PrivateHaproxy(await freePort(), createScratchDir('haproxy'));
    try {
      await proxy.launch(command, servers);
      return proxy;
    } catch (error) {
      await proxy.stop();
      // HAProxy says "cannot bind socket" when another process took the port first.
      const portTaken = error instanceof ServerStartError && (error.addressInUse || /cannot bind socket/.test(error.message));
      if (!portTaken || attempt >= 3) throw error;
    }
  }
}
