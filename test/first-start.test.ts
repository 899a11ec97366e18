import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { startAppProcess } from './support/app-process.js';
import type { AppProcess } from './support/app-process.js';

const run = promisify(execFile);

describe('first start on the embedded default', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'seckill-first-start-'));
  let app: AppProcess | undefined;
  after(async () => {
    await app?.kill('SIGTERM');
    rmSync(cwd, { recursive: true, force: true });
  });

  it('creates ./data with 0600 secrets, prints a try-it block once, and its curl lines work', async () => {
    app = await startAppProcess({}, { cwd });
    const secrets = JSON.parse(readFileSync(join(cwd, 'data', 'secrets.json'), 'utf8')) as { adminToken: string; jwtSecret: string };
    assert.equal(statSync(join(cwd, 'data', 'secrets.json')).mode & 0o777, 0o600);
    assert.ok(statSync(join(cwd, 'data', 'seckill.db')).isFile(), 'the SQLite database is in ./data');

    // Give stdout a moment to flush after readiness.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const output = app.output();
    assert.match(output, /Try it/);
    assert.ok(!output.includes(secrets.jwtSecret), 'the JWT secret is never printed');
    const lines = output.split('\n').map((l) => l.trim());
    const start = lines.findIndex((l) => l.startsWith('ADMIN='));
    const end = lines.findIndex((l, i) => i > start && l.includes('/stats'));
    assert.ok(start >= 0 && end > start, `try-it block found in:\n${output}`);
    const script = lines.slice(start, end + 1).join('\n');
    const { stdout } = await run('bash', ['-ec', script], { cwd: tmpdir(), env: { PATH: process.env.PATH ?? '' } });
    assert.match(stdout, /"orderId":"1-[0-9a-z]+","status":"pending"/, `the purchase went through:\n${stdout}`);
    assert.match(stdout, /"stock":100,"remaining":99/);

    await app.kill('SIGTERM');
    assert.equal(app.child.exitCode, 0, `SIGTERM stops it cleanly:\n${app.output()}`);
    app = await startAppProcess({}, { cwd });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.doesNotMatch(app.output(), /Try it/, 'the block is shown on the first start only');
    assert.ok(!app.output().includes(secrets.adminToken), 'the admin token is not printed again');
    const stats = await fetch(`${app.url}/api/admin/sales/1/stats`, { headers: { authorization: `Bearer ${secrets.adminToken}` } });
    const body = (await stats.json()) as { remaining: number; created: number };
    assert.deepEqual([body.remaining, body.created], [99, 1], 'the restarted server kept the sale and its order');
  });
});
