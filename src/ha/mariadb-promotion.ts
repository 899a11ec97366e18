import type { Connection } from 'mysql2/promise';
import { gtidCovers, gtidDistance, parseGtidPosition } from './mariadb-gtid.js';
import { WriterBalancer } from './mariadb-haproxy.js';
import type { WriterServerState } from './mariadb-haproxy.js';
import { connectMariaDb, inspectMariaDb, queryRows } from './mariadb-servers.js';
import type { MariaDbServerReport, MariaDbServerSetting } from './mariadb-servers.js';

/** What `seckill db promote` is given. */
export interface PromotionOptions {
  readonly servers: readonly MariaDbServerSetting[];
  /** HAProxy runtime API socket and the backend that carries writes. */
  readonly haproxySocket: string;
  readonly backend: string;
  /** Most time the chosen replica may take to apply what it received. */
  readonly catchUpTimeoutMs: number;
  /** Promote this server rather than the most advanced replica. */
  readonly candidate?: string;
  /** Inspect and plan only; change nothing. */
  readonly dryRun?: boolean;
  /** Called as each step starts and ends. */
  readonly progress?: (event: PromotionEvent) => void;
}

/** One line of progress. */
export interface PromotionEvent {
  readonly step: 'inspect' | 'plan' | 'fence' | 'stop-io' | 'catch-up' | 'promote' | 'admit' | 'rollback' | 'done';
  readonly message: string;
}

/** What a promotion did (or, with `dryRun`, would do). */
export interface PromotionResult {
  readonly ok: boolean;
  readonly dryRun: boolean;
  /** The server now primary (or the one that would be). */
  readonly promoted?: string;
  /** Servers taken out of the writer backend. */
  readonly fenced: readonly string[];
  /** The plan, one sentence per step. */
  readonly plan: readonly string[];
  /** What the promoted server had received when its IO thread stopped, and applied before it became writable. */
  readonly receivedPos?: string;
  readonly appliedPos?: string;
  /** ms from the start until the new primary was writable, and until HAProxy sent writes to it. */
  readonly writableAfterMs?: number;
  readonly admittedAfterMs?: number;
  readonly durationMs: number;
  readonly servers: readonly MariaDbServerReport[];
  readonly error?: string;
}

/** A promotion that could not be done safely; the message says why and what was left as it was. */
export class PromotionError extends Error {
  override readonly name = 'PromotionError';
}

interface Choice {
  readonly candidate: MariaDbServerReport;
  /** Servers the writer backend may still send writes to (all but the candidate, unless already in MAINT). */
  readonly oldPrimaries: readonly MariaDbServerReport[];
  /** A reachable, writable old primary: a switchover; the replica must first receive everything it wrote. */
  readonly liveOld: readonly MariaDbServerReport[];
}

function receivedOf(report: MariaDbServerReport): string {
  // A replica that never received anything has an empty Gtid_IO_Pos: it has what it applied.
  return report.replication?.receivedPos || report.slavePos || '';
}

/** Chooses the replica to promote: the named one, or the one that received the most. */
export function chooseCandidate(reports: readonly MariaDbServerReport[], balancer: readonly WriterServerState[], wanted?: string): Choice {
  const describe = (r: MariaDbServerReport): string => `${r.name} ${r.reachable ? `is ${r.role}` : `is unreachable (${r.error ?? 'no answer'})`}`;
  const replicas = reports.filter((r) => r.reachable && r.replication !== undefined);
  let candidate: MariaDbServerReport | undefined;
  if (wanted !== undefined) {
    candidate = replicas.find((r) => r.name === wanted);
    if (!candidate) {
      const known = reports.find((r) => r.name === wanted);
      throw new PromotionError(known ? `cannot promote ${wanted}: ${describe(known)}, not a reachable replica` : `cannot promote ${wanted}: no server of that name (servers: ${reports.map((r) => r.name).join(', ')})`);
    }
  } else {
    if (replicas.length === 0) {
      const serving = reports.filter((r) => r.role === 'primary' && balancer.some((s) => s.name === r.name && !s.maint && s.status.startsWith('UP')));
      const already = serving.length === 1 ? ` (${serving[0]!.name} is already a writable primary in HAProxy: nothing to promote)` : '';
      throw new PromotionError(`no reachable replica to promote: ${reports.map(describe).join('; ')}${already}`);
    }
    candidate = [...replicas].sort((a, b) => gtidDistance(parseGtidPosition(receivedOf(b)), parseGtidPosition(receivedOf(a))))[0]!;
  }
  const inRotation = new Set(balancer.filter((s) => !s.maint).map((s) => s.name));
  const unknownToBalancer = reports.filter((r) => !balancer.some((s) => s.name === r.name));
  if (unknownToBalancer.length > 0) {
    throw new PromotionError(`HAProxy's writer backend has no server named ${unknownToBalancer.map((r) => r.name).join(', ')} (it has ${balancer.map((s) => s.name).join(', ')}): the names in SECKILL_MARIADB_SERVERS must be HAProxy's server names`);
  }
  const oldPrimaries = reports.filter((r) => r !== candidate && (inRotation.has(r.name) || r.role === 'primary'));
  const liveOld = oldPrimaries.filter((r) => r.role === 'primary');
  return { candidate, oldPrimaries, liveOld };
}

/**
 * Promotes a MariaDB replica to primary behind HAProxy without losing an acknowledged
 * transaction. Semi-sync guarantees a replica *received* each acknowledged commit, not
 * that it applied it; throwing away the received-but-unapplied relay log (the naive
 * `STOP SLAVE; RESET SLAVE ALL`) loses thousands of rows under load. So:
 *
 * 1. fence every old primary: HAProxy `set server … state maint` and `shutdown sessions`,
 *    and `read_only=1` on it when it still answers (for a live one, first wait until the
 *    replica received everything it wrote: a switchover);
 * 2. `STOP SLAVE IO_THREAD` on the most advanced reachable replica, so what it received
 *    is final, then `MASTER_GTID_WAIT(<Gtid_IO_Pos>)` until it has applied all of it;
 * 3. `STOP SLAVE; RESET SLAVE ALL`, semi-sync master on, `read_only=0`;
 * 4. HAProxy `set server …/<new> state ready`.
 *
 * On a failure before step 3 the replica's IO thread is started again and a live old
 * primary is put back, so nothing is left half done.
 */
export async function promoteMariaDb(options: PromotionOptions): Promise<PromotionResult> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const progress = (step: PromotionEvent['step'], message: string): void => options.progress?.({ step, message });
  const balancer = new WriterBalancer(options.haproxySocket, options.backend);
  const plan: string[] = [];
  const fenced: string[] = [];
  let reports: MariaDbServerReport[] = [];
  let candidateName: string | undefined;
  let receivedPos: string | undefined;
  let appliedPos: string | undefined;
  let writableAfterMs: number | undefined;
  let admittedAfterMs: number | undefined;
  const result = (ok: boolean, error?: string): PromotionResult => ({
    ok,
    dryRun: options.dryRun === true,
    promoted: candidateName,
    fenced,
    plan,
    receivedPos,
    appliedPos,
    writableAfterMs,
    admittedAfterMs,
    durationMs: elapsed(),
    servers: reports,
    error,
  });

  progress('inspect', `asking ${options.servers.map((s) => s.name).join(', ')} and HAProxy (${options.haproxySocket}, backend ${options.backend})`);
  const [inspected, states] = await Promise.all([
    Promise.all(options.servers.map(inspectMariaDb)),
    balancer.servers().catch((error: Error) => error),
  ]);
  reports = inspected;
  // Without the balancer nothing can be fenced or switched: promoting anyway would leave
  // writes going to the old primary if it comes back.
  if (states instanceof Error) return result(false, `${states.message}; not promoted: HAProxy must be reachable to fence the old primary and switch writes`);
  for (const r of reports) {
    const haproxy = states.find((s) => s.name === r.name)?.status ?? 'not in HAProxy';
    progress('inspect', r.reachable
      ? `${r.name}: ${r.role}${r.replication ? `, received ${r.replication.receivedPos || '(nothing)'}, applied ${r.slavePos || '(nothing)'}, IO ${r.replication.ioRunning}/SQL ${r.replication.sqlRunning}` : `, binlog ${r.binlogPos || '(empty)'}`}; HAProxy ${haproxy}`
      : `${r.name}: unreachable (${r.error}); HAProxy ${haproxy}`);
  }
  let choice: Choice;
  try {
    choice = chooseCandidate(reports, states, options.candidate);
  } catch (error) {
    if (error instanceof PromotionError) return result(false, error.message);
    throw error;
  }
  const { candidate, oldPrimaries, liveOld } = choice;
  candidateName = candidate.name;
  const names = (list: readonly MariaDbServerReport[]): string => list.map((r) => r.name).join(', ') || 'none';
  plan.push(`fence ${names(oldPrimaries)}: HAProxy ${options.backend} maint + shutdown sessions${oldPrimaries.some((r) => r.reachable) ? ', read_only=1 where it answers' : ''}`);
  if (liveOld.length > 0) plan.push(`wait until ${candidate.name} received everything ${names(liveOld)} wrote (switchover: ${names(liveOld)} still answers)`);
  plan.push(`stop ${candidate.name}'s IO thread (it received ${receivedOf(candidate) || 'nothing'}), wait ≤ ${Math.round(options.catchUpTimeoutMs / 1000)} s until it applied all of it`);
  plan.push(`STOP SLAVE; RESET SLAVE ALL on ${candidate.name}, semi-sync master on, read_only=0`);
  plan.push(`HAProxy: ${options.backend}/${candidate.name} state ready`);
  progress('plan', `promote ${candidate.name}:\n  - ${plan.join('\n  - ')}`);
  if (options.dryRun) return result(true);

  const setting = options.servers.find((s) => s.name === candidate.name)!;
  let replica: Connection | undefined;
  let ioStopped = false;
  const rollback = async (): Promise<void> => {
    if (ioStopped && replica) {
      const restarted = await queryRows(replica, 'START SLAVE IO_THREAD').then(() => true, (error: Error) => error.message);
      progress('rollback', restarted === true ? `${candidate.name}: IO thread started again; it is still a replica` : `${candidate.name}: could not start its IO thread again (${restarted}): run START SLAVE IO_THREAD on it`);
    }
    for (const old of liveOld) {
      const connection = await connectMariaDb(options.servers.find((s) => s.name === old.name)!).catch(() => undefined);
      const writable = connection ? await queryRows(connection, 'SET GLOBAL read_only = 0').then(() => true, () => false) : false;
      connection?.destroy();
      const admitted = await balancer.admit(old.name).then(() => true, () => false);
      progress('rollback', writable && admitted
        ? `${old.name}: writable and back in HAProxy`
        : `${old.name}: ${writable ? 'writable' : 'could NOT be made writable again'}, ${admitted ? 'back in HAProxy' : 'NOT back in HAProxy'}: fix by hand`);
    }
  };
  try {
    replica = await connectMariaDb(setting);

    for (const old of oldPrimaries) {
      await balancer.fence(old.name);
      fenced.push(old.name);
      let note = 'unreachable, left as it is';
      if (old.reachable) {
        const connection = await connectMariaDb(options.servers.find((s) => s.name === old.name)!).catch(() => undefined);
        if (connection) {
          try {
            await queryRows(connection, 'SET GLOBAL read_only = 1');
            note = 'read_only=1';
          } catch (error) {
            note = `read_only=1 failed: ${(error as Error).message}`;
          } finally {
            connection.destroy();
          }
        }
      }
      progress('fence', `${old.name}: out of HAProxy's ${options.backend} backend, its connections closed; ${note}`);
    }

    for (const old of liveOld) {
      // Written while we fenced it: read its final position after read_only=1.
      const final = await inspectMariaDb(options.servers.find((s) => s.name === old.name)!);
      const target = parseGtidPosition(final.binlogPos);
      const deadline = Date.now() + options.catchUpTimeoutMs;
      for (;;) {
        const [status] = await queryRows(replica, 'SHOW SLAVE STATUS');
        if (gtidCovers(parseGtidPosition(String(status?.Gtid_IO_Pos ?? '')), target)) break;
        if (Date.now() > deadline) throw new PromotionError(`${candidate.name} did not receive ${final.binlogPos} from ${old.name} within ${options.catchUpTimeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      progress('fence', `${candidate.name} received everything ${old.name} wrote (${final.binlogPos})`);
    }

    await queryRows(replica, 'STOP SLAVE IO_THREAD');
    ioStopped = true;
    const [status] = await queryRows(replica, 'SHOW SLAVE STATUS');
    receivedPos = String(status?.Gtid_IO_Pos ?? '') || String((await queryRows(replica, 'SELECT @@gtid_slave_pos AS pos'))[0]?.pos ?? '');
    progress('stop-io', `${candidate.name}: IO thread stopped; it received ${receivedPos || 'nothing'}`);

    if (String(status?.Slave_SQL_Running) !== 'Yes') {
      throw new PromotionError(`${candidate.name}'s SQL thread is not running (${String(status?.Last_SQL_Error || 'stopped')}): it cannot apply what it received; fix replication first`);
    }
    const waitStarted = performance.now();
    const timeoutS = options.catchUpTimeoutMs / 1000;
    const [{ done }] = await queryRows(replica, 'SELECT MASTER_GTID_WAIT(?, ?) AS done', [receivedPos, timeoutS], options.catchUpTimeoutMs + 5000);
    if (Number(done) !== 0) {
      const [{ pos }] = await queryRows(replica, 'SELECT @@gtid_slave_pos AS pos');
      throw new PromotionError(`${candidate.name} did not apply what it received (${receivedPos}) within ${timeoutS} s; it applied ${String(pos)}. Not promoted: promoting now would lose the rest`);
    }
    appliedPos = String((await queryRows(replica, 'SELECT @@gtid_slave_pos AS pos'))[0]?.pos ?? '');
    progress('catch-up', `${candidate.name} applied ${appliedPos || 'nothing'} in ${Math.round(performance.now() - waitStarted)} ms`);

    await queryRows(replica, 'STOP SLAVE');
    await queryRows(replica, 'RESET SLAVE ALL');
    ioStopped = false;
    await queryRows(replica, 'SET GLOBAL rpl_semi_sync_master_enabled = 1');
    await queryRows(replica, 'SET GLOBAL read_only = 0');
    const [{ ro }] = await queryRows(replica, 'SELECT @@read_only AS ro');
    if (Number(ro) !== 0) throw new PromotionError(`${candidate.name} is still read_only after SET GLOBAL read_only = 0`);
    writableAfterMs = elapsed();
    progress('promote', `${candidate.name}: replication reset, semi-sync master on, writable (${writableAfterMs} ms)`);
  } catch (error) {
    // Undo on the same connection first: the IO thread is restarted through it.
    if (writableAfterMs === undefined) await rollback();
    replica?.destroy();
    const message = error instanceof PromotionError ? error.message : `${candidate.name}: ${(error as Error).message}`;
    return result(false, message);
  }
  replica.destroy();

  try {
    await balancer.admit(candidate.name);
    admittedAfterMs = elapsed();
    progress('admit', `HAProxy ${options.backend}/${candidate.name}: ready (${admittedAfterMs} ms)`);
    // Writes flow once its health check passes (rise 1): report that, do not fail on it.
    for (let i = 0; i < 100; i++) {
      const state = (await balancer.servers()).find((s) => s.name === candidate.name);
      if (state?.status.startsWith('UP')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    return result(false, `${candidate.name} is primary and writable, but HAProxy did not take it: ${(error as Error).message}; run \`set server ${options.backend}/${candidate.name} state ready\` on its runtime API`);
  }
  reports = await Promise.all(options.servers.map(inspectMariaDb));
  progress('done', `${candidate.name} is the primary; fenced ${fenced.join(', ') || 'nothing'}; ${elapsed()} ms`);
  return result(true);
}
