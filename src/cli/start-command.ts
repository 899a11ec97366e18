import cluster from 'node:cluster';
import { hostname } from 'node:os';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { SeckillNode } from '../app/seckill-node.js';
import type { SeckillConfig } from '../config/index.js';
import { commandConfigWithSecrets, serverUrl } from './cli-config.js';
import type { GlobalOptions } from './cli-config.js';
import { WorkerRestarts } from './worker-restarts.js';

export interface StartOptions {
  readonly workers?: string;
  readonly role?: string;
  readonly host?: string;
  readonly port?: string;
}

/** The copy-paste block shown once, on the first start, when the secrets were just generated. */
function tryItBlock(config: SeckillConfig): string {
  const base = serverUrl(config);
  return [
    '',
    '  Seckill is running. First start: an admin token and a JWT secret were generated into',
    `  ${config.dataDir}/secrets.json (mode 0600). They are shown here once; keep them safe.`,
    '',
    '  Try it (in another terminal):',
    '',
    `    ADMIN=${config.adminToken}`,
    `    curl -s -X POST ${base}/api/admin/sales -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' \\`,
    `      -d "{\\"name\\":\\"demo\\",\\"stock\\":100,\\"startsAt\\":\\"$(date -u +%FT%TZ)\\",\\"endsAt\\":\\"$(date -u -d '+1 hour' +%FT%TZ)\\"}"`,
    `    TOKEN=$(SECKILL_DATA_DIR=${config.dataDir} node ${process.argv[1]} token --user alice)`,
    `    curl -s -X POST ${base}/api/sales/1/purchase -H "authorization: Bearer $TOKEN"`,
    `    curl -s ${base}/api/admin/sales/1/stats -H "authorization: Bearer $ADMIN"`,
    '',
    `  Or watch a crowd of 5,000 buyers go for 500 units:  SECKILL_DATA_DIR=${config.dataDir} node ${process.argv[1]} demo --url ${base}`,
    '',
  ].join('\n');
}

/**
 * `seckill start`: one process, or with `--workers N` a node cluster whose primary migrates
 * the database once and keeps N workers running. SIGTERM/SIGINT drain and stop.
 */
export async function startCommand(global: GlobalOptions, options: StartOptions): Promise<void> {
  const { config, generated } = commandConfigWithSecrets(global, {
    workers: options.workers,
    roles: options.role,
    host: options.host,
    port: options.port,
  });
  const log = pino({ level: config.logLevel, name: 'seckill' });

  if (config.workers > 1 && cluster.isPrimary) {
    // The primary only migrates and supervises: it never loads the HTTP server or the stock
    // store, so it starts sooner and stays small.
    const { openDatabase } = await import('../db/open-database.js');
    const db = await openDatabase(config.databaseUrl);
    try {
      const outcome = await db.migrate();
      if (outcome.error) throw outcome.error;
    } finally {
      await db.close();
    }
    // The kernel, not the primary, hands connections to the workers. With node's default
    // round-robin the primary accepts each connection and passes it to a worker over IPC; a
    // worker killed while one is on its way leaves that connection open in the primary with
    // nobody to answer, and HAProxy waits `timeout server` (10 s) for a 504. With a shared
    // listening socket a dead worker's connections are reset at once (HAProxy replays them),
    // and those not yet accepted wait in the backlog for the surviving workers.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    let stopping = false;
    const slots = new Map<number, { readonly index: number; readonly startedAt: number }>();
    const restarts = new WorkerRestarts();
    const pendingRestarts = new Set<NodeJS.Timeout>();
    const fork = (index: number): void => {
      slots.set(cluster.fork({ SECKILL_WORKER_INDEX: String(index) }).id, { index, startedAt: Date.now() });
    };
    /** Workers that opened their listener: only those can have connections to drain. */
    const listened = new Set<number>();
    cluster.on('listening', (worker) => listened.add(worker.id));
    for (let i = 0; i < config.workers; i++) fork(i);
    cluster.on('exit', (worker, code, signal) => {
      const hadListened = listened.delete(worker.id);
      if (stopping) {
        // A worker that could not drain and stop cleanly fails the node's stop, as the single
        // process would: the service manager (or the operator's script) must see it. One
        // still starting (forked after a crash just before the stop) may die of the stop
        // signal before it can catch it: it never listened, so it had nothing to drain.
        const diedStarting = !hadListened && (signal === 'SIGTERM' || signal === 'SIGINT');
        if (code !== 0 && !diedStarting) {
          log.error({ pid: worker.process.pid, code, signal }, 'worker did not stop cleanly');
          process.exitCode = 1;
        }
        return;
      }
      const slot = slots.get(worker.id) ?? { index: 0, startedAt: 0 };
      slots.delete(worker.id);
      const livedMs = Date.now() - slot.startedAt;
      const delayMs = restarts.delayAfterDeath(slot.index, livedMs);
      log.error({ pid: worker.process.pid, code, signal, worker: slot.index, livedMs, restartInMs: delayMs }, `worker died; starting another${delayMs > 0 ? ` in ${delayMs} ms (it died ${livedMs} ms after its start)` : ''}`);
      if (delayMs === 0) {
        fork(slot.index);
        return;
      }
      const timer = setTimeout(() => {
        pendingRestarts.delete(timer);
        if (!stopping) fork(slot.index);
      }, delayMs);
      pendingRestarts.add(timer);
    });
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      // A worker waiting to be restarted is not: nothing must keep the primary alive after the stop.
      for (const timer of pendingRestarts) clearTimeout(timer);
      pendingRestarts.clear();
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    };
    // `on`, not `once`: a repeated signal must not fall through to the default action, which
    // would kill the primary and, with it, every worker mid-drain (a worker exits as soon as
    // its primary is gone). SIGKILL is there for an operator who wants it over at once.
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    if (generated) process.stdout.write(`${tryItBlock(config)}\n`);
    return;
  }

  const index = process.env.SECKILL_WORKER_INDEX ?? '0';
  let node: SeckillNode | undefined;
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, node ? 'stopping: draining in-flight requests and the writer batch' : 'stopping as soon as started');
    if (node) stopNode(node, config.drainMs, log);
  };
  // A cluster worker hears a stop signal twice when the whole process group is signalled
  // (systemd's default KillMode=control-group, Ctrl-C in a terminal): directly and forwarded
  // by its primary. With `once` the second would find no listener and kill it mid-drain, so
  // a worker keeps listening; the single process keeps `once`, where a second signal still
  // stops at once.
  // A worker listens from its first moment: one its primary forked just before a stop (a
  // worker crashed, then a rolling restart) would otherwise die of the forwarded SIGTERM,
  // and the primary would report that the node did not stop cleanly. The single process
  // listens once started, so Ctrl-C during a start that hangs on a dependency still stops it.
  const listen = (): void => {
    const on = cluster.isWorker ? process.on.bind(process) : process.once.bind(process);
    on('SIGTERM', () => shutdown('SIGTERM'));
    on('SIGINT', () => shutdown('SIGINT'));
  };
  if (cluster.isWorker) listen();
  const { startNode } = await import('../app/seckill-node.js');
  try {
    node = await startNode(config, {
      log,
      migrate: cluster.isPrimary,
      consumer: `${hostname()}:${process.pid}:${index}`,
    });
  } catch (error) {
    if (!cluster.isWorker) throw error;
    // A worker must die of it: its channel to the primary would keep it running without a
    // listener, and the primary, seeing nothing wrong, would never start another.
    process.stderr.write(`seckill: worker ${index} could not start: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  }
  if (generated && cluster.isPrimary) process.stdout.write(`${tryItBlock(config)}\n`);
  if (!cluster.isWorker) listen();
  // Told to stop while starting: it may already hold connections the kernel gave its new
  // listener, so it drains like the others.
  if (stopping) stopNode(node, config.drainMs, log);
}

/** Unready first, listener closed `drainMs` later (the balancer stops sending before connections are refused), then exit. */
function stopNode(node: SeckillNode, drainMs: number, log: Logger): void {
  node.close({ drainMs }).then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'error while stopping');
      process.exit(1);
    },
  );
}
