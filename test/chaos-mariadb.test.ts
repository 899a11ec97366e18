/**
 * Chaos suite, database tier (issue 5, scenarios 7 and 8): a private MariaDB primary and
 * its semi-sync GTID replica behind HAProxy's `writer` backend, two `seckill start` nodes
 * whose SECKILL_DATABASE_URL is the HAProxy writer port, a private Redis, and a paced sale
 * through the API balancer while the database primary is killed (then promoted with the
 * real `seckill db promote`) or unreachable for a while. Purchases only need Redis, so
 * buyers must notice nothing; the writer must pause and catch up with nothing lost.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnection } from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import type { PromotionResult } from '../src/ha/mariadb-promotion.js';
import { runCli, startAppProcess } from './support/app-process.js';
import { CHAOS_FULL, checkSale, formatResults, isFailure, recordChaosResults, runSale } from './support/chaos-sale.js';
import type { ChaosResult, SaleOutcome } from './support/chaos-sale.js';
import { startApiTopology } from './support/chaos-topology.js';
import type { ApiTopology } from './support/chaos-topology.js';
import { startReplicatedMariaDb, waitCaughtUp } from './support/mariadb-replication.js';
import type { MariaDbInstance, ReplicatedMariaDb } from './support/mariadb-replication.js';

/** Targets of issue 5 for this tier. */
const PERSISTENCE_RESUME_MS = 5000;
/** Scenario 8: how long the database stays unreachable. */
const OUTAGE_MS = CHAOS_FULL ? 60_000 : 12_000;
/** Log lines a node may write per second of database outage: a pause, not an error storm. */
const LOG_LINES_PER_OUTAGE_SECOND = 5;

const results: ChaosResult[] = [];

/**
 * Watches HAProxy's view of the API nodes during a sale: how long each node was out of
 * rotation (not `UP`). The database faults should never take an API node out.
 */
function watchApiNodes(topology: ApiTopology): { stop(): Promise<string> } {
  const outMs = new Map<string, number>(topology.nodes.map((n) => [n.name, 0]));
  let running = true;
  const loop = (async () => {
    let last = performance.now();
    while (running) {
      await sleep(100);
      const now = performance.now();
      for (const node of topology.nodes) {
        const status = await topology.haproxy.serverStatus(node.name).catch(() => '?');
        if (!status.startsWith('UP')) outMs.set(node.name, outMs.get(node.name)! + (now - last));
      }
      last = now;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return `API nodes out of HAProxy rotation: ${[...outMs].map(([name, ms]) => `${name} ${Math.round(ms)} ms`).join(', ')}`;
    },
  };
}

async function ordersOf(server: MariaDbInstance, database: string, saleId: number): Promise<number> {
  const rows = await server.query<RowDataPacket>(`SELECT COUNT(*) AS n FROM \`${database}\`.orders WHERE sale_id = ?`, [saleId]);
  return Number(rows[0]?.n);
}

function databaseOf(url: string): string {
  return new URL(url).pathname.slice(1);
}

const lines = (text: string): number => text.split('\n').filter((l) => l.trim() !== '').length;

/** Failed attempts by status and error code (`503 UNAVAILABLE` from a node, `503 -` from HAProxy), for the notes. */
function failuresByCode(outcome: SaleOutcome): string {
  const tally: Record<string, number> = {};
  for (const a of outcome.attempts) if (isFailure(a.status)) tally[`${a.status} ${a.code ?? '-'}`] = (tally[`${a.status} ${a.code ?? '-'}`] ?? 0) + 1;
  return Object.keys(tally).length === 0 ? 'none failed' : `failed: ${JSON.stringify(tally)}`;
}

describe('chaos: MariaDB primary loss and promotion', { timeout: CHAOS_FULL ? 600_000 : 240_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (results.length > 0) process.stdout.write(`\nchaos results (MariaDB)\n\n${formatResults(results)}\n\n`);
    recordChaosResults('mariadb', 'MariaDB primary loss and promotion (scenarios 7–8)', results);
  });

  const start = async (): Promise<{ db: ReplicatedMariaDb; url: string; topology: ApiTopology }> => {
    const db = await startReplicatedMariaDb();
    cleanups.push(() => db.stop());
    const url = await db.createDatabase();
    const topology = await startApiTopology({ nodes: 2, drainMs: 1000, databaseUrl: url });
    cleanups.push(() => topology.stop());
    return { db, url, topology };
  };

  const assertInvariants = (r: ChaosResult): void => {
    assert.equal(r.gaveUp, 0, 'every buyer got an answer within the bounded retries');
    assert.equal(r.oversold, 0, 'oversold');
    assert.equal(r.duplicates, 0, 'duplicates');
    assert.equal(r.lost, 0, 'lost acknowledged orders');
    assert.equal(r.stranded, 0, 'stranded stock');
  };

  it('`seckill db promote` plans without changing anything, refuses unsafe promotions with a clear error, and undoes a fence it could not finish', async () => {
    const db = await startReplicatedMariaDb();
    cleanups.push(() => db.stop());
    const [db1, db2] = db.servers;
    await db.createDatabase();
    const maintOf = async (): Promise<boolean[]> => (await db.balancer.servers()).map((s) => s.maint);

    const dryRun = await runCli(['db', 'promote', '--dry-run'], db.promoteEnv);
    assert.equal(dryRun.code, 0, dryRun.stderr);
    assert.match(dryRun.stdout, /would promote db2; nothing was changed/);
    assert.match(dryRun.stdout, /switchover/, 'a live primary is noticed');
    assert.deepEqual(await maintOf(), [false, true]);
    assert.equal((await db2.slaveStatus())?.Slave_IO_Running, 'Yes');

    const wrong = await runCli(['db', 'promote', '--candidate', 'db1'], db.promoteEnv);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stdout, /cannot promote db1: db1 is primary, not a reachable replica/);

    const unconfigured = await runCli(['db', 'promote'], { SECKILL_MARIADB_SERVERS: db.promoteEnv.SECKILL_MARIADB_SERVERS! });
    assert.equal(unconfigured.code, 2);
    assert.match(unconfigured.stderr, /SECKILL_MARIADB_HAPROXY_SOCKET/);

    // A replica that cannot apply what it receives must not be promoted; the live primary is put back.
    await db2.query('STOP SLAVE SQL_THREAD');
    const stuck = await runCli(['db', 'promote', '--json', '--timeout', '2000'], db.promoteEnv);
    assert.equal(stuck.code, 1, stuck.stderr);
    const failed = JSON.parse(stuck.stdout) as PromotionResult;
    assert.match(failed.error ?? '', /SQL thread is not running/);
    assert.match(stuck.stderr, /\[rollback\] db1: writable and back in HAProxy/);
    assert.deepEqual(await maintOf(), [false, true], 'db1 is back in HAProxy, db2 still out');
    assert.equal(Number((await db1.query('SELECT @@read_only AS ro'))[0]?.ro), 0, 'db1 is writable again');
    assert.equal((await db2.slaveStatus())?.Slave_IO_Running, 'Yes', "db2's IO thread runs again");
    await db2.query('START SLAVE SQL_THREAD');
    await waitCaughtUp(db2, db1);
  });

  it('`seckill db promote` waits until the replica applied everything it received (what the naive promotion throws away)', async () => {
    const db = await startReplicatedMariaDb();
    cleanups.push(() => db.stop());
    const [db1, db2] = db.servers;
    const database = databaseOf(await db.createDatabase());
    await db1.query(`CREATE TABLE \`${database}\`.acked (id INT PRIMARY KEY) ENGINE=InnoDB`);
    await waitCaughtUp(db2, db1);
    // Hold the replica's applier back: it receives (and acknowledges, semi-sync) but cannot apply.
    const lock = await createConnection({ host: '127.0.0.1', port: db2.port, user: 'root' });
    await lock.query('FLUSH TABLES WITH READ LOCK');
    const rows = 200;
    for (let i = 1; i <= rows; i++) await db1.query(`INSERT INTO \`${database}\`.acked VALUES (?)`, [i]);
    await db1.crash();
    const status = await db2.slaveStatus();
    const [{ applied }] = await db2.query<RowDataPacket>('SELECT @@gtid_slave_pos AS applied');
    assert.notEqual(String(applied), String(status?.Gtid_IO_Pos), 'the replica received more than it applied when the primary died');
    const promoting = runCli(['db', 'promote', '--json'], db.promoteEnv);
    // Once the promotion stopped the IO thread it is waiting for the applier: keep it waiting a second.
    const deadline = Date.now() + 30_000;
    while ((await db2.slaveStatus())?.Slave_IO_Running !== 'No' && Date.now() < deadline) await sleep(20);
    const [{ n: appliedRows }] = await db2.query<RowDataPacket>(`SELECT COUNT(*) AS n FROM \`${database}\`.acked`);
    assert.ok(Number(appliedRows) < rows, `rows applied when the IO thread stopped: ${appliedRows} of ${rows}; the naive promotion would keep only these`);
    await sleep(1000);
    await lock.end();
    const run = await promoting;
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as PromotionResult;
    assert.equal(result.receivedPos, String(status?.Gtid_IO_Pos));
    const caughtUp = /\[catch-up\] db2 applied \S+ in (\d+) ms/.exec(run.stderr);
    assert.ok(caughtUp && Number(caughtUp[1]) >= 500, `the promotion waited for the applier: ${run.stderr}`);
    const [{ n }] = await db2.query<RowDataPacket>(`SELECT COUNT(*) AS n FROM \`${database}\`.acked`);
    assert.equal(Number(n), rows, 'every acknowledged row is on the new primary');
  });

  it('7. kill -9 of the MariaDB primary mid-sale, then `seckill db promote`: no failed purchase, nothing lost, persistence resumes within 5 s', async () => {
    const { db, url, topology } = await start();
    const [db1, db2] = db.servers;
    const database = databaseOf(url);
    const buyers = CHAOS_FULL ? 8000 : 3000;
    const stock = Math.round(buyers * 0.8);
    const saleId = await topology.client.createSale(stock);
    let promotion: PromotionResult | undefined;
    let cliExit: number | null = null;
    let cliStderr = '';
    let promoteWallMs = 0;
    let resumeAfterPromoteMs = Number.NaN;
    let firstNewWriteAfterKillMs = Number.NaN;
    const watch = watchApiNodes(topology);
    const outcome = await runSale({
      client: topology.client,
      saleId,
      buyers,
      concurrency: 64,
      ratePerSecond: 400,
      fault: {
        afterAnswers: Math.round(buyers * 0.2),
        async inject() {
          const killedAt = performance.now();
          await db1.crash();
          const run = await runCli(['db', 'promote', '--json'], db.promoteEnv);
          const promotedAt = performance.now();
          promoteWallMs = promotedAt - killedAt;
          cliExit = run.code;
          cliStderr = run.stderr;
          promotion = JSON.parse(run.stdout) as PromotionResult;
          // db2 writes GTIDs with its own server id (2) only once the writer committed through it.
          const deadline = promotedAt + 30_000;
          while (performance.now() < deadline) {
            const pos = await db2.query<RowDataPacket>('SELECT @@gtid_binlog_pos AS pos').then((rows) => String(rows[0]?.pos), () => '');
            if (/\d+-2-\d+/.test(pos)) {
              firstNewWriteAfterKillMs = performance.now() - killedAt;
              resumeAfterPromoteMs = Math.max(0, performance.now() - promotedAt);
              break;
            }
            await sleep(25);
          }
        },
      },
    });
    const apiNodes = await watch.stop();
    for (const node of topology.nodes) assert.equal(node.process?.child.exitCode, null, `node ${node.name} still runs:\n${node.process?.output()}`);
    assert.equal(cliExit, 0, `seckill db promote failed:\n${cliStderr}`);
    assert.equal(promotion?.promoted, 'db2');
    const result = await checkSale('kill -9 MariaDB primary, `seckill db promote`', topology.client, topology.databaseUrl, saleId, stock, buyers, outcome, {
      balancer: await topology.haproxy.backendCounters(),
      notes:
        `promote CLI took ${Math.round(promoteWallMs)} ms after kill -9 (db2 writable ${promotion?.writableAfterMs} ms, in HAProxy ${promotion?.admittedAfterMs} ms into the command); ` +
        `persistence resumed ${Math.round(resumeAfterPromoteMs)} ms after the promotion (first write on db2 ${Math.round(firstNewWriteAfterKillMs)} ms after the kill); ` +
        `db2 had received ${promotion?.receivedPos} and applied it before it became writable; ${failuresByCode(outcome)}; ${apiNodes}`,
    });
    results.push(result);
    assertInvariants(result);
    assert.equal(result.failedAnswers, 0, `purchases only need Redis: no failed purchase; answers ${JSON.stringify(result.answersByStatus)}`);
    assert.ok(resumeAfterPromoteMs <= PERSISTENCE_RESUME_MS, `persistence resumed ${resumeAfterPromoteMs} ms after the promotion, target ≤ ${PERSISTENCE_RESUME_MS} ms`);
    assert.deepEqual((await db.balancer.servers()).map((s) => [s.name, s.maint]), [['db1', true], ['db2', false]], 'HAProxy sends writes to db2 only');

    // The old primary rejoins as a replica of the new one and ends up with the same orders.
    const rejoinStarted = performance.now();
    await db.rejoinAsReplica(db1, db2);
    await waitCaughtUp(db1, db2);
    const rejoinMs = Math.round(performance.now() - rejoinStarted);
    assert.equal(await ordersOf(db1, database, saleId), await ordersOf(db2, database, saleId), 'the rejoined old primary holds the same orders as the new one');
    const status = await runCli(['db', 'status', '--json'], db.promoteEnv);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    const roles = (JSON.parse(status.stdout) as { servers: { name: string; role: string }[] }).servers.map((s) => [s.name, s.role]);
    assert.deepEqual(roles, [['db1', 'replica'], ['db2', 'primary']]);
    results[results.length - 1] = { ...result, notes: `${result.notes}; old primary rejoined as replica (--init-rpl-role=SLAVE) and caught up in ${rejoinMs} ms` };
  });

  it('7b. kill -9 of the MariaDB primary mid-sale with auto-failover in the ops role: promoted without an operator, no failed purchase, nothing lost', async () => {
    const { db, topology } = await start();
    const [db1, db2] = db.servers;
    // The ops role runs in one extra process, as in a deployment; its scheduled jobs are pushed out of the way.
    const { SECKILL_PORT: _port, ...nodeEnv } = topology.nodes[0]!.process!.env;
    const never = '0 0 1 1 *';
    const ops = await startAppProcess({
      ...nodeEnv,
      ...db.promoteEnv,
      SECKILL_ROLES: 'ops',
      SECKILL_LOG_LEVEL: 'info',
      SECKILL_MARIADB_AUTO_FAILOVER: 'true',
      SECKILL_MARIADB_FAILOVER_AFTER_MS: '1000',
      SECKILL_BACKUP_SCHEDULE: never,
      SECKILL_VERIFY_SCHEDULE: never,
      SECKILL_PRUNE_SCHEDULE: never,
      SECKILL_DRILL_SCHEDULE: never,
    });
    cleanups.push(() => ops.kill('SIGKILL'));
    const buyers = CHAOS_FULL ? 6000 : 2400;
    const stock = Math.round(buyers * 0.8);
    const saleId = await topology.client.createSale(stock);
    let promotedAfterKillMs = Number.NaN;
    let resumedAfterKillMs = Number.NaN;
    const watch = watchApiNodes(topology);
    const outcome = await runSale({
      client: topology.client,
      saleId,
      buyers,
      concurrency: 64,
      ratePerSecond: 400,
      fault: {
        afterAnswers: Math.round(buyers * 0.2),
        async inject() {
          const killedAt = performance.now();
          await db1.crash();
          const deadline = killedAt + 30_000;
          while (performance.now() < deadline && Number.isNaN(resumedAfterKillMs)) {
            if (Number.isNaN(promotedAfterKillMs)) {
              const states = await db.balancer.servers().catch(() => []);
              if (states.some((st) => st.name === 'db2' && !st.maint)) promotedAfterKillMs = performance.now() - killedAt;
            } else {
              const pos = await db2.query<RowDataPacket>('SELECT @@gtid_binlog_pos AS pos').then((rows) => String(rows[0]?.pos), () => '');
              if (/\d+-2-\d+/.test(pos)) resumedAfterKillMs = performance.now() - killedAt;
            }
            await sleep(25);
          }
        },
      },
    });
    const apiNodes = await watch.stop();
    assert.ok(Number.isFinite(promotedAfterKillMs), `the ops role promoted db2 by itself within 30 s:\n${ops.output().slice(-3000)}`);
    const result = await checkSale('kill -9 MariaDB primary, auto-failover (ops role, after 1 s)', topology.client, topology.databaseUrl, saleId, stock, buyers, outcome, {
      balancer: await topology.haproxy.backendCounters(),
      notes:
        `db2 in HAProxy ${Math.round(promotedAfterKillMs)} ms after kill -9 (mariadbFailoverAfterMs 1000); ` +
        `first write on db2 ${Math.round(resumedAfterKillMs)} ms after the kill; ${failuresByCode(outcome)}; ${apiNodes}`,
    });
    results.push(result);
    assertInvariants(result);
    assert.equal(result.failedAnswers, 0, `purchases only need Redis: no failed purchase; answers ${JSON.stringify(result.answersByStatus)}`);
    assert.ok(resumedAfterKillMs - promotedAfterKillMs <= PERSISTENCE_RESUME_MS, `persistence resumed ${Math.round(resumedAfterKillMs - promotedAfterKillMs)} ms after the promotion`);
    assert.match(ops.output(), /MariaDB replica promoted/);
  });

  it(`8. the database writer unreachable for ${OUTAGE_MS / 1000} s mid-sale: purchases keep answering, the writer pauses and catches up with nothing lost`, async () => {
    const { db, topology } = await start();
    const rate = CHAOS_FULL ? 250 : 200;
    // The sale outlasts the outage by a few seconds, so orders flow before, during and after it.
    const buyers = Math.round(rate * (OUTAGE_MS / 1000 + 8));
    const stock = Math.round(buyers * 0.9);
    const saleId = await topology.client.createSale(stock);
    const readiness = new Map<string, number>();
    let databaseDownSeen = 0;
    let logLinesDuringOutage = 0;
    let backlog = 0;
    let drainedAfterMs = Number.NaN;
    const watch = watchApiNodes(topology);
    const outcome = await runSale({
      client: topology.client,
      saleId,
      buyers,
      concurrency: 64,
      ratePerSecond: rate,
      fault: {
        afterAnswers: rate * 2,
        async inject() {
          const linesBefore = topology.nodes.map((n) => lines(n.process!.output()));
          await db.balancer.fence('db1');
          const until = performance.now() + OUTAGE_MS;
          while (performance.now() < until) {
            for (const node of topology.nodes) {
              const answer = await fetch(`http://127.0.0.1:${node.port}/health/ready`, { signal: AbortSignal.timeout(1000) })
                .then(async (r) => ({ status: r.status, body: (await r.json()) as { checks: { database: string } } }))
                .catch(() => ({ status: 0, body: { checks: { database: '?' } } }));
              readiness.set(String(answer.status), (readiness.get(String(answer.status)) ?? 0) + 1);
              if (answer.body.checks.database === 'down') databaseDownSeen++;
            }
            await sleep(500);
          }
          logLinesDuringOutage = Math.max(...topology.nodes.map((n, i) => lines(n.process!.output()) - linesBefore[i]!));
          await db.balancer.admit('db1');
          const backAt = performance.now();
          // What Redis accepted so far is the backlog the writers must now persist.
          let target = Number.NaN;
          while (performance.now() - backAt < 60_000) {
            const stats = await topology.client.stats(saleId);
            if (stats.status === 200) {
              const persisted = Number(stats.body.created ?? 0) + Number(stats.body.paid ?? 0);
              if (Number.isNaN(target)) {
                target = stock - Number(stats.body.remaining);
                backlog = target - persisted;
              }
              if (persisted >= target) {
                drainedAfterMs = performance.now() - backAt;
                break;
              }
            }
            await sleep(25);
          }
        },
      },
    });
    const apiNodes = await watch.stop();
    for (const node of topology.nodes) assert.equal(node.process?.child.exitCode, null, `node ${node.name} still runs:\n${node.process?.output()}`);
    const result = await checkSale(`writer unreachable ${OUTAGE_MS / 1000} s (HAProxy maint + shutdown sessions)`, topology.client, topology.databaseUrl, saleId, stock, buyers, outcome, {
      balancer: await topology.haproxy.backendCounters(),
      notes:
        `/health/ready during the outage: ${JSON.stringify(Object.fromEntries(readiness))} (database reported down ${databaseDownSeen}×); ` +
        `backlog of ${backlog} orders persisted ${Math.round(drainedAfterMs)} ms after the database came back; ` +
        `at most ${logLinesDuringOutage} log lines per node during the outage; ${failuresByCode(outcome)}; ${apiNodes}`,
    });
    results.push(result);
    assertInvariants(result);
    assert.equal(result.failedAnswers, 0, `purchases only need Redis: no failed purchase; answers ${JSON.stringify(result.answersByStatus)}`);
    assert.deepEqual([...readiness.keys()], ['200'], `nodes stay ready while Redis sells: ${JSON.stringify(Object.fromEntries(readiness))}`);
    assert.ok(databaseDownSeen > 0, 'readiness reports the database down');
    assert.ok(backlog > 0, 'orders piled up during the outage');
    assert.ok(Number.isFinite(drainedAfterMs), 'the backlog was persisted once the database was back');
    assert.ok(
      logLinesDuringOutage <= (LOG_LINES_PER_OUTAGE_SECOND * OUTAGE_MS) / 1000,
      `a node wrote ${logLinesDuringOutage} log lines in ${OUTAGE_MS / 1000} s of outage (bound ${LOG_LINES_PER_OUTAGE_SECOND}/s)`,
    );
  });
});
