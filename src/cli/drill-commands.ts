import { createServer } from 'node:http';
import type { Command } from 'commander';
import { ConfigError } from '../config/index.js';
// The drill and the ops role (database drivers, the AWS SDK, pino, prom-client) are imported
// when `drill` or `scheduler` runs, not when every `seckill` call registers these commands.
import type { DrillReport } from '../drill/index.js';
import { commandConfig } from './cli-config.js';
import type { GlobalOptions } from './cli-config.js';

/** Where a command writes: the summary (or JSON) to `out`, progress and problems to `err`. */
export interface CommandOutput {
  out(text: string): void;
  err(text: string): void;
}

const STDIO: CommandOutput = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** Longest check detail shown in the summary; the stored report and `--json` hold it whole. */
const DETAIL_WIDTH = 160;

/** Options of `seckill drill`, as commander parses them. */
export interface DrillCommandOptions {
  readonly backup?: string;
  readonly target?: string;
  readonly scratchServer?: string;
  readonly json?: boolean;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function clip(text: string): string {
  return text.length <= DETAIL_WIDTH ? text : `${text.slice(0, DETAIL_WIDTH - 1)}…`;
}

/** The one-screen summary of a drill. */
function summary(report: DrillReport): string {
  const lines = [`drill ${report.id}: ${report.ok ? 'PASSED' : 'FAILED'}`];
  if (report.backupId) {
    lines.push(`  backup    ${report.backupId} (${report.engine ?? '?'}) on target ${report.target}, taken ${report.backupCreatedAt}`);
    lines.push(
      `  RTO       ${seconds(report.rtoMs)} (restore ${report.restoreMs !== undefined ? seconds(report.restoreMs) : 'n/a'})` +
        `${report.rpoSeconds !== undefined ? `    RPO ${Math.round(report.rpoSeconds)} s` : ''}`,
    );
  }
  const width = Math.max(...report.checks.map((c) => c.name.length));
  for (const check of report.checks) {
    const verdict = check.ok ? 'ok' : check.skipped ? 'not run' : 'FAILED';
    lines.push(`  ${verdict.padEnd(9)} ${check.name.padEnd(width)}  ${clip(check.detail)}`);
  }
  if (report.scratch) {
    lines.push(`  scratch   ${report.scratch.location}: ${report.scratch.dropped ? 'dropped' : `NOT DROPPED (${report.scratch.dropError ?? '?'}); drop it by hand`}`);
  }
  if (report.stored?.markdown) lines.push(`  report    ${report.stored.markdown} on target ${report.target}`);
  if (report.stored?.error) lines.push(`  report    NOT STORED: ${report.stored.error}`);
  if (!report.ok) {
    lines.push('', 'This backup does not count as restorable. See docs/drill.md for what to do next.');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `seckill drill`: restores the newest (or given) backup into a scratch database, checks it
 * and prints the report; exit code 0 only when every check passed.
 */
export async function drillCommand(global: GlobalOptions, options: DrillCommandOptions, io: CommandOutput = STDIO): Promise<number> {
  const config = commandConfig(global);
  const [{ pino }, { runDrill }] = await Promise.all([import('pino'), import('../drill/index.js')]);
  // Logs go to stderr with the progress: stdout holds only the summary or the JSON.
  const log = pino({ level: 'warn', name: 'seckill-drill' }, pino.destination(2));
  const report = await runDrill(
    config,
    { backupId: options.backup, target: options.target, scratchServerUrl: options.scratchServer, log },
    (event) => io.err(`[${event.step}] ${event.message}\n`),
  );
  io.out(options.json ? `${JSON.stringify(report, null, 2)}\n` : summary(report));
  return report.ok ? 0 : 1;
}

/** Options of `seckill scheduler`, as commander parses them. */
export interface SchedulerCommandOptions {
  readonly metricsPort?: string;
}

/**
 * `seckill scheduler`: the ops role alone (backup, verify, prune and drill at their cron
 * times, the backup policy, alerts) until SIGINT or SIGTERM; with `--metrics-port`, its
 * metrics on `http://<host>:<port>/metrics`.
 */
export async function schedulerCommand(global: GlobalOptions, options: SchedulerCommandOptions, io: CommandOutput = STDIO): Promise<number> {
  const config = commandConfig(global);
  const [{ pino }, { Registry }, { startOps }] = await Promise.all([import('pino'), import('prom-client'), import('../ops/ops-role.js')]);
  const log = pino({ level: config.logLevel, name: 'seckill' });
  const registry = new Registry();
  let port: number | undefined;
  if (options.metricsPort !== undefined) {
    port = Number(options.metricsPort);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ConfigError(`--metrics-port must be a port number (0–65535), got ${options.metricsPort}`);
  }
  const ops = startOps(config, log, registry);
  const server =
    port === undefined
      ? undefined
      : createServer((req, res) => {
          if (req.method !== 'GET' || req.url !== '/metrics') return void res.writeHead(404).end();
          registry.metrics().then(
            (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
            (err: Error) => res.writeHead(500).end(err.message),
          );
        });
  if (server) {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, config.host, resolve);
    });
    const address = server.address();
    io.err(`seckill scheduler: metrics on http://${config.host}:${typeof address === 'object' && address ? address.port : port}/metrics\n`);
  }
  for (const { job, schedule, next } of ops.upcoming()) io.err(`seckill scheduler: ${job.padEnd(7)} ${schedule.padEnd(16)} next ${next?.toISOString() ?? 'never'}\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  io.err(`seckill scheduler: ${signal}: waiting for a running job to end, then stopping\n`);
  server?.close();
  await ops.stop();
  return 0;
}

function action<A extends unknown[]>(run: (...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    try {
      process.exitCode = await run(...args);
    } catch (error) {
      process.stderr.write(`seckill: ${error instanceof ConfigError ? error.message : ((error as Error).stack ?? String(error))}\n`);
      process.exitCode = 1;
    }
  };
}

/**
 * Adds `seckill drill` and `seckill scheduler` to the program.
 *
 * @example
 * registerDrillCommands(program, () => program.opts<GlobalOptions>());
 */
export function registerDrillCommands(program: Command, global: () => GlobalOptions): void {
  program
    .command('drill')
    .description('restore a backup into a scratch database and prove it: checksums, row counts, engine check, invariants, app smoke test; exit 1 if anything fails')
    .option('--backup <id>', 'the backup to drill (default: the newest complete database backup)')
    .option('--target <name>', 'the backup target to restore from (default: the first configured)')
    .option('--scratch-server <url>', 'MariaDB/PostgreSQL server URL to create the scratch database on (default: the databaseUrl server)')
    .option('--json', 'print the report as JSON')
    .action(action((options: DrillCommandOptions) => drillCommand(global(), options)));

  program
    .command('scheduler')
    .description('run the ops role alone: scheduled backup, verify, prune and drill, policy checks and alerts')
    .option('--metrics-port <port>', 'serve the ops metrics on this port at /metrics')
    .action(action((options: SchedulerCommandOptions) => schedulerCommand(global(), options)));
}
