import { connect } from 'node:net';

/** Where a server of the writer backend stands in HAProxy. */
export interface WriterServerState {
  readonly name: string;
  /** `show stat` status: `UP`, `DOWN`, `MAINT`, `UP 1/2`, `no check`… */
  readonly status: string;
  /** True while the server is in maintenance (set by us, or `disabled` in the config). */
  readonly maint: boolean;
}

/** Thrown when the HAProxy runtime API cannot be reached or refuses a command. */
export class HaproxyRuntimeError extends Error {
  override readonly name = 'HaproxyRuntimeError';
}

/**
 * Sends one command to HAProxy's runtime API (the `stats socket … level admin`) and
 * returns its reply. Without `prompt` mode HAProxy answers one command and closes.
 *
 * @param socket - a Unix socket path, or `host:port` for a TCP stats socket.
 */
export function haproxyCommand(socket: string, line: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const tcp = /^(.+):(\d+)$/.exec(socket);
    const conn = tcp && !socket.startsWith('/') ? connect({ host: tcp[1], port: Number(tcp[2]) }) : connect({ path: socket });
    let reply = '';
    conn.setTimeout(timeoutMs, () => conn.destroy(new HaproxyRuntimeError(`no reply from the HAProxy runtime API at ${socket} within ${timeoutMs} ms`)));
    conn.on('connect', () => conn.write(`${line}\n`));
    conn.on('data', (chunk: Buffer) => (reply += chunk.toString('utf8')));
    conn.on('error', (error) =>
      reject(error instanceof HaproxyRuntimeError ? error : new HaproxyRuntimeError(`cannot reach the HAProxy runtime API at ${socket}: ${error.message}`)),
    );
    conn.on('close', () => resolve(reply));
  });
}

/**
 * The runtime API of the HAProxy in front of the MariaDB servers, limited to what a
 * promotion needs: read the writer backend, and move servers in and out of maintenance.
 */
export class WriterBalancer {
  constructor(
    readonly socket: string,
    readonly backend: string,
  ) {}

  /** Sends a command that answers nothing on success; anything else is an error. */
  async #act(line: string): Promise<void> {
    const reply = (await haproxyCommand(this.socket, line)).trim();
    if (reply !== '') throw new HaproxyRuntimeError(`HAProxy refused \`${line}\`: ${reply}`);
  }

  /** Every server of the backend, as `show stat` reports it. */
  async servers(): Promise<WriterServerState[]> {
    const csv = await haproxyCommand(this.socket, 'show stat');
    const lines = csv.split('\n');
    const header = (lines[0] ?? '').replace(/^# /, '').split(',');
    const status = header.indexOf('status');
    if (status < 0) throw new HaproxyRuntimeError(`unexpected reply to \`show stat\` from ${this.socket}: ${csv.slice(0, 200)}`);
    const states: WriterServerState[] = [];
    for (const line of lines.slice(1)) {
      const fields = line.split(',');
      if (fields[0] !== this.backend || fields[1] === 'BACKEND' || fields[1] === 'FRONTEND' || fields[1] === undefined) continue;
      const value = fields[status] ?? '';
      states.push({ name: fields[1], status: value, maint: value.includes('MAINT') });
    }
    if (states.length === 0) throw new HaproxyRuntimeError(`HAProxy at ${this.socket} has no backend "${this.backend}" with servers`);
    return states;
  }

  /** Takes a server out of rotation and closes every connection still open to it (the fence). */
  async fence(server: string): Promise<void> {
    await this.#act(`set server ${this.backend}/${server} state maint`);
    await this.#act(`shutdown sessions server ${this.backend}/${server}`);
  }

  /** Puts a server back in rotation (out of maintenance; its health checks still apply). */
  async admit(server: string): Promise<void> {
    await this.#act(`set server ${this.backend}/${server} state ready`);
  }
}
