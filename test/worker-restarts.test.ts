import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
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
import { childPids } from './support/chaos-topology.js';
import { freePort } from './support/free-port.js';
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

  describe('seckill start --workers 2', () => {
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
    /** `seckill start --workers 2` on `port` with Redis; `output` gathers stdout and stderr. */
    const startWorkers = (port: number, env: Record<string, string> = {}): { child: ChildProcess; output: () => string } => {
      const child = spawn(process.execPath, [CLI, 'start', '--workers', '2'], {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          SECKILL_HOST: '127.0.0.1',
          SECKILL_PORT: String(port),
          SECKILL_DATA_DIR: dataDir,
          SECKILL_REDIS_URL: redis.url,
          SECKILL_LOG_LEVEL: 'warn',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (d: Buffer) => (output += d));
      child.stderr!.on('data', (d: Buffer) => (output += d));
      return { child, output: () => output };
    };

    it('on a port another program holds: lets each worker fail with the reason, restarts it ever more slowly, and stops at once when told', async () => {
      const squatter = createServer();
      squatter.listen(0, '127.0.0.1');
      await once(squatter, 'listening');
      const { port } = squatter.address() as AddressInfo;
      const { child, output: out } = startWorkers(port);
      try {
        const deadline = Date.now() + 30_000;
        const restartDelays = (): number[] =>
          out()
            .split('\n')
            .filter((line) => line.includes('"msg":"worker died'))
            .map((line) => (JSON.parse(line) as { restartInMs: number }).restartInMs);
        // Two slots, each past its second young death: 250 ms, then 500 ms.
        while (restartDelays().filter((ms) => ms >= 2 * FIRST_RESTART_DELAY_MS).length < 2) {
          assert.equal(child.exitCode, null, `the primary must keep supervising:\n${out()}`);
          assert.ok(Date.now() < deadline, `no second restart within 30 s:\n${out()}`);
          await sleep(100);
        }
        assert.match(out(), /worker [01] could not start: .*EADDRINUSE/);
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

    // A worker that hears SIGTERM before it has set up its handlers dies of the signal, and
    // its primary, seeing a worker that "did not stop cleanly", exited 1: a rolling restart
    // right after a worker crash failed the node's stop (seen once in the chaos suite).
    it('exits 0 when a worker still starting is stopped with the others', async () => {
      const port = await freePort();
      const { child, output: out } = startWorkers(port, { SECKILL_DRAIN_MS: '200' });
      const exited = once(child, 'exit');
      try {
        const deadline = Date.now() + 30_000;
        const ready = async (): Promise<boolean> =>
          fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status === 200, () => false);
        while (childPids(child.pid!).length < 2 || !(await ready())) {
          assert.ok(Date.now() < deadline, `--workers 2 did not start within 30 s:\n${out()}`);
          await sleep(50);
        }
        const original = childPids(child.pid!);
        const [victim] = original;
        process.kill(victim, 'SIGKILL');
        // The moment the primary has forked the replacement, stop the node: the new worker
        // is loading its modules and connecting, far from listening.
        while (!childPids(child.pid!).some((pid) => !original.includes(pid))) {
          assert.ok(Date.now() < deadline, `no replacement for worker ${victim}:\n${out()}`);
          await sleep(5);
        }
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(20_000)]);
        assert.equal(child.signalCode, null, `the primary was not killed:\n${out()}`);
        assert.equal(child.exitCode, 0, `the primary exits 0 after its workers stopped:\n${out()}`);
        assert.doesNotMatch(out(), /did not stop cleanly/);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });
});
