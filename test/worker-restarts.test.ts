import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { FIRST_RESTART_DELAY_MS, MAX_RESTART_DELAY_MS, WorkerRestarts, YOUNG_DEATH_MS } from '../src/cli/worker-restarts.js';
import { CLI } from './support/app-process.js';
import { startRedis } from './support/redis-server.js';
import type { RedisServer } from './support/redis-server.js';

describe('worker restarts', () => {
  it('restarts a worker that ran a while at once, and backs off from one that keeps dying young', () => {
    const restarts = new WorkerRestarts();
    assert.equal(restarts.delayAfterDeath(0, YOUNG_DEATH_MS + 1), 0, 'a crash mid-sale is replaced at once');
    const delays = Array.from({ length: 10 }, () => restarts.delayAfterDeath(0, 500));
    assert.deepEqual(delays.slice(0, 4), [1, 2, 4, 8].map((k) => k * FIRST_RESTART_DELAY_MS));
    assert.equal(delays.at(-1), MAX_RESTART_DELAY_MS);
    assert.equal(restarts.delayAfterDeath(1, 500), FIRST_RESTART_DELAY_MS, 'each slot counts its own deaths');
    assert.equal(restarts.delayAfterDeath(0, YOUNG_DEATH_MS), 0);
    assert.equal(restarts.delayAfterDeath(0, 500), FIRST_RESTART_DELAY_MS, 'a worker that lived resets the count');
  });

  describe('seckill start --workers 2 on a port another program holds', () => {
    let redis: RedisServer;
    let dataDir: string;
    before(async () => {
      redis = await startRedis();
      dataDir = mkdtempSync(join(tmpdir(), 'seckill-restarts-'));
    });
    after(async () => {
      await redis?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('lets each worker fail with the reason, restarts it ever more slowly, and stops at once when told', async () => {
      const squatter = createServer();
      squatter.listen(0, '127.0.0.1');
      await once(squatter, 'listening');
      const { port } = squatter.address() as AddressInfo;
      const child = spawn(process.execPath, [CLI, 'start', '--workers', '2'], {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          SECKILL_HOST: '127.0.0.1',
          SECKILL_PORT: String(port),
          SECKILL_DATA_DIR: dataDir,
          SECKILL_REDIS_URL: redis.url,
          SECKILL_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (d: Buffer) => (output += d));
      child.stderr!.on('data', (d: Buffer) => (output += d));
      try {
        const deadline = Date.now() + 30_000;
        const restartDelays = (): number[] =>
          output
            .split('\n')
            .filter((line) => line.includes('"msg":"worker died'))
            .map((line) => (JSON.parse(line) as { restartInMs: number }).restartInMs);
        // Two slots, each past its second young death: 250 ms, then 500 ms.
        while (restartDelays().filter((ms) => ms >= 2 * FIRST_RESTART_DELAY_MS).length < 2) {
          assert.equal(child.exitCode, null, `the primary must keep supervising:\n${output}`);
          assert.ok(Date.now() < deadline, `no second restart within 30 s:\n${output}`);
          await sleep(100);
        }
        assert.match(output, /worker [01] could not start: .*EADDRINUSE/);
        const delays = restartDelays();
        assert.ok(delays.every((ms) => ms >= FIRST_RESTART_DELAY_MS), `every restart waited: ${delays.join(', ')}`);
        assert.ok(delays.length <= 6, `a handful of restarts, not a tight loop: ${delays.join(', ')}`);

        const stopped = Date.now();
        child.kill('SIGTERM');
        await Promise.race([once(child, 'exit'), sleep(10_000)]);
        assert.notEqual(child.exitCode ?? child.signalCode, null, 'a pending restart must not keep the primary alive after SIGTERM');
        assert.ok(Date.now() - stopped < 10_000);
      } finally {
        child.kill('SIGKILL');
        squatter.close();
      }
    });
  });
});
