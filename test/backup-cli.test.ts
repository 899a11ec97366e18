import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { countRows } from '../src/backup/database-census.js';
import { openDatabase } from '../src/db/open-database.js';
import { createScratchDir } from './support/scratch-dir.js';
import { freshDatabaseUrl } from './support/servers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMMANDS = new URL('../src/cli/backup-commands.js', import.meta.url).href;

/** The backup commands on a bare program, as `seckill` wires them (main.ts is not needed). */
const HARNESS = `
import { Command } from 'commander';
import { registerBackupCommands } from ${JSON.stringify(COMMANDS)};
const program = new Command('seckill').option('-c, --config <file>').exitOverride();
registerBackupCommands(program, () => program.opts());
await program.parseAsync(process.argv.slice(1), { from: 'user' });
`;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function seckill(args: readonly string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-warnings', '--input-type=module', '-e', HARNESS, '--', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('seckill backup and restore commands', { timeout: 120_000 }, () => {
  let env: Record<string, string>;
  let backups: string;
  let dataDir: string;
  let firstId: string;

  before(async () => {
    dataDir = createScratchDir('backup-cli');
    const databaseUrl = `sqlite:${join(dataDir, 'seckill.db')}`;
    const db = await openDatabase(databaseUrl);
    await db.migrate();
    const sale = await db.createSale({ name: 'lamp', stock: 10, startsAt: 0, endsAt: 1, paymentWindowSeconds: 60, now: 0 });
    await db.persistOrders(sale.id, [{ orderId: 'o1', userId: 'u1', createdAt: 0 }], 60);
    await db.close();
    mkdirSync(join(dataDir, 'app'));
    writeFileSync(join(dataDir, 'app', 'seckill.json'), '{}\n');
    backups = join(dataDir, 'backups');
    env = {
      SECKILL_DATA_DIR: dataDir,
      SECKILL_DATABASE_URL: databaseUrl,
      SECKILL_BACKUP_TARGETS: `local=${backups}`,
      SECKILL_BACKUP_FILE_SETS: JSON.stringify([{ name: 'app', root: join(dataDir, 'app'), include: ['**'] }]),
    };
  });

  it('backup run takes database and files, warns loudly about a generated key, and prints a summary', async () => {
    const run = await seckill(['backup', 'run'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^backup \S+ complete on local in [\d.]+ s$/m);
    assert.match(run.stdout, /artifact +database\.sqlite\.zst\.enc/);
    assert.match(run.stdout, /artifact +files-app\.tar\.zst\.enc .*1 files/);
    assert.match(run.stdout, /rows: sales 1, orders 1, payments 0, rejected_orders 0/);
    assert.match(run.stdout, /WARNING: a new backup encryption key .* copy it NOW to a place off this machine/);
    assert.match(run.stderr, /^\[dump\] /m, 'progress goes to stderr');
    assert.ok(existsSync(join(dataDir, 'backup.key')));
    firstId = /^backup (\S+) complete/m.exec(run.stdout)![1]!;
  });

  it('backup run --json prints the result for machines, and --db alone backs up only the database', async () => {
    const run = await seckill(['backup', 'run', '--db', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { manifest: { contents: unknown; artifacts: { name: string }[] }; warnings: string[] };
    assert.deepEqual(result.manifest.contents, { database: true, files: false });
    assert.deepEqual(result.manifest.artifacts.map((a) => a.name), ['database.sqlite.zst.enc']);
    assert.deepEqual(result.warnings, [], 'the key is generated only once');
  });

  it('backup list shows complete backups, and an incomplete upload only as incomplete', async () => {
    const half = '2026-01-01T00-00-00-000Z-beef';
    mkdirSync(join(backups, half));
    writeFileSync(join(backups, half, 'database.sqlite.zst.enc'), 'half');
    const list = await seckill(['backup', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /target local .*: 2 complete backup\(s\), 1 INCOMPLETE/);
    assert.match(list.stdout, new RegExp(`${half} +INCOMPLETE, not a backup: no manifest\\.json`));
    const json = JSON.parse((await seckill(['backup', 'list', '--json'], env)).stdout) as { backups: unknown[]; incomplete: { id: string }[] }[];
    assert.equal(json[0]!.backups.length, 2);
    assert.deepEqual(json[0]!.incomplete.map((i) => i.id), [half]);
  });

  it('backup verify names the broken file and exits 1; without an id or --all it says what to pass', async () => {
    assert.equal((await seckill(['backup', 'verify', firstId], env)).code, 0);
    const file = join(backups, firstId, 'files-app.tar.zst.enc');
    const bytes = readFileSync(file);
    bytes[bytes.length - 20]! ^= 0xff;
    writeFileSync(file, bytes);
    const verify = await seckill(['backup', 'verify', '--all'], env);
    assert.equal(verify.code, 1);
    assert.match(verify.stdout, new RegExp(`backup ${firstId} on local: FAILED`));
    assert.match(verify.stdout, /BROKEN files-app\.tar\.zst\.enc: .*sha256 of the stored bytes differs/);
    assert.match(verify.stdout, /ok +database\.sqlite\.zst\.enc/);
    assert.match(verify.stdout, /1 of 2 backup copies verified ok/);
    const bare = await seckill(['backup', 'verify'], env);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /pass --all/);
  });

  it('restore refuses a non-empty database and the live primary, and restores into an empty one, reporting its RTO', async () => {
    const primary = await seckill(['restore', firstId, '--to', env.SECKILL_DATABASE_URL!], env);
    assert.equal(primary.code, 1);
    assert.match(primary.stdout, /REFUSED \(nothing was changed\)/);
    assert.match(primary.stdout, /live primary/);
    assert.match(primary.stderr, /^\[plan\] restore backup /m, 'it says what it would do first');

    const emptyUrl = `sqlite:${join(createScratchDir('cli-restore'), 'restored.db')}`;
    const restored = await seckill(['restore', firstId, '--to', emptyUrl], env);
    assert.equal(restored.code, 0, restored.stdout + restored.stderr);
    assert.match(restored.stdout, /restored backup \S+ from local into .* in [\d.]+ s \(this restore's RTO\)/);
    assert.deepEqual(await countRows(emptyUrl), { sales: 1, orders: 1, payments: 0, rejected_orders: 0 });

    const again = await seckill(['restore', firstId, '--to', emptyUrl, '--json'], env);
    assert.equal(again.code, 1);
    const result = JSON.parse(again.stdout) as { refused: boolean; error: string };
    assert.equal(result.refused, true);
    assert.match(result.error, /not empty/);
  });

  it('refuses to back up when the dump tool is older than the server, naming both versions, and writes nothing', async () => {
    const url = await freshDatabaseUrl('mysql');
    const db = await openDatabase(url);
    await db.migrate();
    await db.close();
    // A client of an older series: it would dump without an error and leave out what it does not know.
    const tools = createScratchDir('old-tools');
    writeFileSync(join(tools, 'mariadb-dump'), '#!/bin/sh\necho "mariadb-dump  Ver 10.19 Distrib 10.3.39-MariaDB, for debian-linux-gnu (x86_64)"\n', { mode: 0o755 });
    const folder = join(createScratchDir('refused'), 'backups');
    const run = await seckill(['backup', 'run', '--db'], { ...env, SECKILL_DATABASE_URL: url, SECKILL_BACKUP_TARGETS: `local=${folder}`, PATH: `${tools}:${process.env.PATH}` });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /error: refusing to back up: mariadb-dump \S*10\.3\.39\S* cannot faithfully dump the mysql server 1\d\.\d+/);
    assert.deepEqual(existsSync(folder) ? readdirSync(folder) : [], [], 'nothing was written');
  });

  it('backup prune is a dry run unless --apply, and lists what it keeps and why', async () => {
    const policy = { ...env, SECKILL_BACKUP_KEEP_LAST: '1', SECKILL_BACKUP_KEEP_HOURLY: '0', SECKILL_BACKUP_KEEP_DAILY: '0', SECKILL_BACKUP_KEEP_WEEKLY: '0', SECKILL_BACKUP_KEEP_MONTHLY: '0' };
    const dry = await seckill(['backup', 'prune'], policy);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /DRY RUN \(nothing deleted; run with --apply to delete\)/);
    assert.match(dry.stdout, /keep +\S+ +database +last/);
    assert.match(dry.stdout, /keep +\S+ +database\+files +last/, 'each kind of backup is pruned within its own group');
    assert.match(dry.stdout, /delete +2026-01-01T00-00-00-000Z-beef +incomplete/);
    const listed = JSON.parse((await seckill(['backup', 'list', '--json'], env)).stdout) as { backups: unknown[] }[];
    assert.equal(listed[0]!.backups.length, 2, 'a dry run deletes nothing');

    const third = await seckill(['backup', 'run', '--db'], env);
    assert.equal(third.code, 0);
    const applied = await seckill(['backup', 'prune', '--apply', '--json'], policy);
    assert.equal(applied.code, 0, applied.stderr);
    const result = JSON.parse(applied.stdout) as { applied: boolean; targets: { deleted: string[] }[] };
    assert.equal(result.applied, true);
    assert.equal(result.targets[0]!.deleted.length, 2, 'the older database-only backup and the incomplete folder from 2026-01-01');
    assert.ok(result.targets[0]!.deleted.includes('2026-01-01T00-00-00-000Z-beef'));
    assert.ok(!result.targets[0]!.deleted.includes(firstId), 'the only backup with files is the last of its kind');
  });
});
