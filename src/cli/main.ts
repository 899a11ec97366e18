#!/usr/bin/env node
// Only commander, the configuration and the command registrations load up front; each
// command's implementation (fastify, database drivers, the AWS SDK…) is imported by its
// action, so `seckill --help`, `seckill token` or `seckill db promote` during an outage do
// not pay for modules they never use.
import { Command } from 'commander';
import { ConfigError } from '../config/index.js';
import { AdminApiError } from './admin-client.js';
import { registerBackupCommands } from './backup-commands.js';
import { commandConfig } from './cli-config.js';
import type { GlobalOptions } from './cli-config.js';
import { registerDbCommands } from './db-commands.js';
import { registerDrillCommands } from './drill-commands.js';

/** Runs a command's action; expected failures print one clear line and exit 1, not a stack trace. */
function action<A extends unknown[]>(run: (...args: A) => Promise<number | void> | number | void) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await run(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (err) {
      if (err instanceof ConfigError || err instanceof AdminApiError) {
        process.stderr.write(`seckill: ${err.message}\n`);
      } else {
        process.stderr.write(`seckill: ${(err as Error).stack ?? String(err)}\n`);
      }
      process.exitCode = 1;
    }
  };
}

const program = new Command('seckill')
  .description('Flash-sale service that never oversells, loses no order, and proves its backups restore')
  .option('-c, --config <file>', 'JSON configuration file (environment SECKILL_* variables override it)')
  .showHelpAfterError();
const global = (): GlobalOptions => program.opts<GlobalOptions>();

program
  .command('start')
  .description('start the service (api and writer roles by default)')
  .option('--workers <n>', 'worker processes (node cluster; needs SECKILL_REDIS_URL for more than 1)')
  .option('--role <roles>', 'comma-separated roles: api, writer, ops (run ops in one process only)')
  .option('--host <host>', 'address to listen on')
  .option('--port <port>', 'port to listen on')
  .action(action(async (options) => (await import('./start-command.js')).startCommand(global(), options)));

program
  .command('migrate')
  .description('bring the database schema up to date')
  .action(action(async () => (await import('./admin-commands.js')).migrateCommand(global())));

const sale = program.command('sale').description('manage sales on the running server');
sale
  .command('create')
  .description('create a sale and load its stock')
  .requiredOption('--name <name>', 'sale name')
  .requiredOption('--stock <units>', 'units for sale (1..10,000,000)')
  .option('--starts-at <iso>', 'start time, ISO 8601 (default: now)')
  .option('--ends-at <iso>', 'end time, ISO 8601 (default: start + --duration-minutes)')
  .option('--duration-minutes <m>', 'length of the sale when --ends-at is not given', '60')
  .option('--payment-window <seconds>', 'seconds a buyer has to pay (default 900)')
  .option('--url <url>', 'server base URL (default from configuration)')
  .option('--json', 'print the created sale as JSON')
  .action(action(async (options) => (await import('./admin-commands.js')).saleCreateCommand(global(), options)));
sale
  .command('list')
  .description('list sales, newest first')
  .option('--url <url>', 'server base URL (default from configuration)')
  .option('--json', 'print JSON')
  .action(action(async (options) => (await import('./admin-commands.js')).saleListCommand(global(), options)));

program
  .command('token')
  .description('print a user token (JWT, HS256) signed with the configured secret')
  .requiredOption('--user <id>', 'user id (the token subject)')
  .option('--ttl <seconds>', 'lifetime in seconds', '3600')
  .action(action(async (options) => (await import('./admin-commands.js')).tokenCommand(global(), options)));

program
  .command('reconcile')
  .description('compare every sale\'s stock state with the database; --repair rebuilds what is missing or wrong')
  .option('--repair', 'rebuild sales that are missing or drifted (each pauses briefly)')
  .option('--sale <id>', 'only this sale')
  .option('--url <url>', 'server base URL (default from configuration)')
  .option('--json', 'print the report as JSON')
  .action(action(async (options) => (await import('./admin-commands.js')).reconcileCommand(global(), options)));

program
  .command('demo')
  .description('rush a new sale with a simulated crowd and check nothing was oversold, duplicated or lost')
  .option('--buyers <n>', 'distinct buyers', '5000')
  .option('--stock <n>', 'units for sale', '500')
  .option('--concurrency <n>', 'requests in flight', '64')
  .option('--url <url>', 'server base URL (default from configuration)')
  .option('--json', 'print the summary as JSON')
  .action(action(async (options) => (await import('./demo-command.js')).demoCommand(global(), options)));

program
  .command('base-backup')
  .description('take a PostgreSQL physical base backup to the PITR target (restore --until replays WAL onto it)')
  .option('--json', 'print the base backup record as JSON')
  .action(
    action(async (options: { json?: boolean }) => {
      const { runBaseBackup } = await import('../backup/log-archiving.js');
      const base = await runBaseBackup(commandConfig(global()));
      process.stdout.write(options.json ? `${JSON.stringify(base)}\n` : `base backup ${base.id} stored at ${base.key} (WAL from ${base.startLsn})\n`);
    }),
  );

registerBackupCommands(program, global);
registerDrillCommands(program, global);
registerDbCommands(program, global);

await program.parseAsync(process.argv);
