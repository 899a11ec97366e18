import type { Command } from 'commander';
import { ConfigError } from '../config/index.js';
import type { SeckillConfig } from '../config/index.js';
// The HAProxy runtime client is small (node:net); the MariaDB client (mysql2) is imported by
// the actions that connect, so registering these commands costs every `seckill` call nothing.
import { HaproxyRuntimeError, WriterBalancer } from '../ha/mariadb-haproxy.js';
import type { WriterServerState } from '../ha/mariadb-haproxy.js';
import type { PromotionResult } from '../ha/mariadb-promotion.js';
import type { MariaDbServerReport } from '../ha/mariadb-servers.js';
import { commandConfig } from './cli-config.js';
import type { GlobalOptions } from './cli-config.js';

const out = (line = ''): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

/** Options shared by `db promote` and `db status`: where the servers and HAProxy are. */
interface TopologyOptions {
  readonly servers?: string;
  readonly haproxySocket?: string;
  readonly backend?: string;
  readonly json?: boolean;
}

function topologyConfig(global: GlobalOptions, options: TopologyOptions & { timeout?: string }): SeckillConfig {
  return commandConfig(global, {
    mariadbServers: options.servers,
    mariadbHaproxySocket: options.haproxySocket,
    mariadbHaproxyBackend: options.backend,
    mariadbCatchUpTimeoutMs: options.timeout,
  });
}

function requireSocket(config: SeckillConfig): string {
  if (config.mariadbHaproxySocket === '') {
    throw new ConfigError('SECKILL_MARIADB_HAPROXY_SOCKET (or --haproxy-socket) must name the runtime API socket of the HAProxy in front of MariaDB (`stats socket … level admin`)');
  }
  return config.mariadbHaproxySocket;
}

/** Runs a command; a configuration error prints one line and exits 2, anything else unexpected exits 1. */
function action<A extends unknown[]>(run: (...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    try {
      process.exitCode = await run(...args);
    } catch (error) {
      const known = error instanceof ConfigError || error instanceof HaproxyRuntimeError;
      err(`seckill: ${known ? (error as Error).message : ((error as Error).stack ?? String(error))}`);
      process.exitCode = error instanceof ConfigError ? 2 : 1;
    }
  };
}

function printSummary(result: PromotionResult): void {
  if (result.dryRun) {
    out(result.ok ? `dry run: would promote ${result.promoted}; nothing was changed` : `dry run: cannot promote: ${result.error}`);
    for (const step of result.plan) out(`  - ${step}`);
    return;
  }
  if (!result.ok) {
    out(`promotion FAILED after ${result.durationMs} ms: ${result.error}`);
    return;
  }
  out(`${result.promoted} is the primary (writable after ${result.writableAfterMs} ms, in HAProxy after ${result.admittedAfterMs} ms)`);
  out(`  fenced    ${result.fenced.join(', ') || 'nothing'}`);
  out(`  received  ${result.receivedPos || '(nothing)'}; applied ${result.appliedPos || '(nothing)'} before it became writable`);
  out('  next      rejoin the old primary as a replica (docs/failover.md, "MariaDB primary loss"), and move `disabled` in the HAProxy config before its next reload');
}

function lagOf(report: MariaDbServerReport): string {
  const r = report.replication;
  if (!r) return '-';
  return r.secondsBehind === null ? 'unknown (not replicating)' : `${r.secondsBehind} s`;
}

function printStatus(reports: readonly MariaDbServerReport[], states: readonly WriterServerState[] | string): void {
  const haproxyOf = (name: string): string => (typeof states === 'string' ? '?' : (states.find((s) => s.name === name)?.status ?? 'not in backend'));
  out(`${'server'.padEnd(8)} ${'role'.padEnd(11)} ${'HAProxy'.padEnd(9)} ${'binlog / applied'.padEnd(28)} ${'received'.padEnd(14)} lag`);
  for (const r of reports) {
    const applied = r.reachable ? `${r.binlogPos || '-'} / ${r.slavePos || '-'}` : '-';
    out(`${r.name.padEnd(8)} ${r.role.padEnd(11)} ${haproxyOf(r.name).padEnd(9)} ${applied.padEnd(28)} ${(r.replication?.receivedPos || '-').padEnd(14)} ${lagOf(r)}`);
    if (!r.reachable) out(`         ${r.error}`);
    else if (r.replication && (r.replication.ioRunning !== 'Yes' || r.replication.sqlRunning !== 'Yes')) {
      out(`         replication from ${r.replication.source}: IO ${r.replication.ioRunning}, SQL ${r.replication.sqlRunning}${r.replication.lastError ? `: ${r.replication.lastError}` : ''}`);
    }
  }
  if (typeof states === 'string') out(`HAProxy: ${states}`);
  const writers = reports.filter((r) => r.role === 'primary');
  if (writers.length > 1) out(`WARNING: ${writers.map((r) => r.name).join(' and ')} are both writable primaries`);
}

/** Registers `seckill db promote` and `seckill db status`. */
export function registerDbCommands(program: Command, global: () => GlobalOptions): void {
  const db = program.command('db').description('MariaDB primary/replica operations behind HAProxy');
  const topology = (command: Command): Command =>
    command
      .option('--servers <list>', 'name=url,… of the MariaDB servers (names as in HAProxy); default SECKILL_MARIADB_SERVERS')
      .option('--haproxy-socket <path>', 'HAProxy runtime API socket; default SECKILL_MARIADB_HAPROXY_SOCKET')
      .option('--backend <name>', 'HAProxy backend that carries writes; default SECKILL_MARIADB_HAPROXY_BACKEND (writer)')
      .option('--json', 'print the result as JSON');

  topology(
    db
      .command('promote')
      .description('promote the most advanced reachable replica to primary without losing acknowledged writes, and switch HAProxy to it'),
  )
    .option('--candidate <name>', 'promote this server rather than the most advanced replica')
    .option('--timeout <ms>', 'how long the replica may take to apply what it received; default SECKILL_MARIADB_CATCH_UP_TIMEOUT_MS (60000)')
    .option('--dry-run', 'inspect and print the plan; change nothing')
    .action(
      action(async (options: TopologyOptions & { candidate?: string; timeout?: string; dryRun?: boolean }) => {
        const config = topologyConfig(global(), options);
        const [{ promoteMariaDb }, { parseMariaDbServers }] = await Promise.all([import('../ha/mariadb-promotion.js'), import('../ha/mariadb-servers.js')]);
        const result = await promoteMariaDb({
          servers: parseMariaDbServers(config.mariadbServers),
          haproxySocket: requireSocket(config),
          backend: config.mariadbHaproxyBackend,
          catchUpTimeoutMs: config.mariadbCatchUpTimeoutMs,
          candidate: options.candidate,
          dryRun: options.dryRun === true,
          progress: (event) => err(`[${event.step}] ${event.message}`),
        });
        if (options.json) out(JSON.stringify(result, null, 2));
        else printSummary(result);
        return result.ok ? 0 : 1;
      }),
    );

  topology(db.command('status').description("each MariaDB server's role, GTID positions, replication lag and HAProxy state")).action(
    action(async (options: TopologyOptions) => {
      const config = topologyConfig(global(), options);
      const { inspectMariaDb, parseMariaDbServers } = await import('../ha/mariadb-servers.js');
      const servers = parseMariaDbServers(config.mariadbServers);
      const socket = config.mariadbHaproxySocket;
      const [reports, states] = await Promise.all([
        Promise.all(servers.map(inspectMariaDb)),
        socket === '' ? Promise.resolve('not configured') : new WriterBalancer(socket, config.mariadbHaproxyBackend).servers().catch((error: Error) => error.message),
      ]);
      if (options.json) out(JSON.stringify({ servers: reports, haproxy: states }, null, 2));
      else printStatus(reports, states);
      const writers = reports.filter((r) => r.role === 'primary').length;
      // Non-zero when there is no writable primary, or two of them: both need an operator.
      return writers === 1 ? 0 : 1;
    }),
  );
}
