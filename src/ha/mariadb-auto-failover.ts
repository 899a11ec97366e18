import type { Logger } from 'pino';
import type { SeckillConfig } from '../config/config.js';
import { WriterBalancer } from './mariadb-haproxy.js';
import { promoteMariaDb } from './mariadb-promotion.js';
import type { PromotionResult } from './mariadb-promotion.js';
import { inspectMariaDb, parseMariaDbServers } from './mariadb-servers.js';
import type { MariaDbServerReport, MariaDbServerSetting } from './mariadb-servers.js';

/** Knobs that are not configuration, for tests. */
export interface AutoFailoverOptions {
  /** How often the primary is looked at; default 500 ms. */
  readonly intervalMs?: number;
  /** After a promotion (or a failed attempt), no other attempt for this long; default 60 s. */
  readonly cooldownMs?: number;
  /** Called with every promotion attempted. */
  readonly onPromotion?: (result: PromotionResult) => void;
}

/** The running watcher. */
export interface AutoFailover {
  stop(): Promise<void>;
}

/**
 * What one look at the topology concluded: the server HAProxy sends writes to, whether
 * it answers, and whether a replica agrees it is gone.
 */
interface Observation {
  readonly writer: string | undefined;
  readonly writerAnswers: boolean;
  /** A reachable replica whose IO thread lost its connection too: the primary is gone for it as well. */
  readonly confirmedByReplica: boolean;
}

async function observe(servers: readonly MariaDbServerSetting[], balancer: WriterBalancer): Promise<Observation> {
  const [states, reports] = await Promise.all([balancer.servers(), Promise.all(servers.map(inspectMariaDb))]);
  const inRotation = states.filter((s) => !s.maint).map((s) => s.name);
  const writer = inRotation.length === 1 ? inRotation[0] : undefined;
  const report = reports.find((r) => r.name === writer);
  const replicas = reports.filter((r: MariaDbServerReport) => r.reachable && r.replication !== undefined);
  return {
    writer,
    writerAnswers: report?.reachable === true && report.role === 'primary',
    confirmedByReplica: replicas.some((r) => r.replication!.ioRunning !== 'Yes'),
  };
}

/**
 * Watches the MariaDB primary from the ops role and runs the same safe promotion as
 * `seckill db promote` when the server HAProxy sends writes to has not answered for
 * `mariadbFailoverAfterMs` **and** a reachable replica has lost its connection to it too.
 * The second condition keeps a network problem between this process and the primary
 * from promoting a replica while the primary still takes writes. At most one attempt per
 * cooldown; an attempt that finds nothing safe to do promotes nothing (see
 * {@link promoteMariaDb}). Off unless `mariadbAutoFailover` is set.
 */
export function startMariaDbAutoFailover(config: SeckillConfig, log: Logger, options: AutoFailoverOptions = {}): AutoFailover {
  const servers = parseMariaDbServers(config.mariadbServers);
  if (config.mariadbHaproxySocket === '') throw new Error('mariadbAutoFailover needs SECKILL_MARIADB_HAPROXY_SOCKET');
  const balancer = new WriterBalancer(config.mariadbHaproxySocket, config.mariadbHaproxyBackend);
  const intervalMs = options.intervalMs ?? 500;
  const cooldownMs = options.cooldownMs ?? 60_000;
  const flog = log.child({ component: 'mariadb-auto-failover' });
  let running = true;
  let wake: (() => void) | undefined;
  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const loop = (async () => {
    let downSince: number | undefined;
    let quietUntil = 0;
    let lastProblem = '';
    while (running) {
      try {
        const seen = await observe(servers, balancer);
        if (seen.writerAnswers) {
          if (downSince !== undefined) flog.info({ primary: seen.writer }, 'MariaDB primary answers again');
          downSince = undefined;
        } else if (seen.writer !== undefined) {
          downSince ??= Date.now();
          const downMs = Date.now() - downSince;
          if (downMs >= config.mariadbFailoverAfterMs && seen.confirmedByReplica && Date.now() >= quietUntil) {
            flog.error({ primary: seen.writer, downMs }, 'MariaDB primary unreachable and its replica lost it too: promoting a replica');
            const result = await promoteMariaDb({
              servers,
              haproxySocket: config.mariadbHaproxySocket,
              backend: config.mariadbHaproxyBackend,
              catchUpTimeoutMs: config.mariadbCatchUpTimeoutMs,
              progress: (event) => flog.warn({ step: event.step }, event.message),
            });
            options.onPromotion?.(result);
            if (result.ok) flog.warn({ promoted: result.promoted, fenced: result.fenced, ms: result.durationMs }, 'MariaDB replica promoted');
            else flog.error({ error: result.error }, 'MariaDB promotion failed; an operator must look (seckill db status)');
            quietUntil = Date.now() + cooldownMs;
            downSince = undefined;
          }
        } else {
          const problem = 'HAProxy sends writes to no single server';
          if (problem !== lastProblem) flog.warn(problem);
          lastProblem = problem;
        }
      } catch (err) {
        // HAProxy's runtime API unreachable: nothing can be fenced, so nothing is done.
        const problem = (err as Error).message;
        if (problem !== lastProblem) flog.warn({ err }, 'MariaDB auto-failover cannot look at the topology');
        lastProblem = problem;
      }
      if (running) await pause(intervalMs);
    }
  })();

  flog.info({ servers: servers.map((s) => s.name), afterMs: config.mariadbFailoverAfterMs }, 'MariaDB auto-failover watching');
  return {
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}
