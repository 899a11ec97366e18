/**
 * Which replica `seckill db promote` picks, and which servers it fences, from server
 * reports and HAProxy's view; no servers needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gtidCovers, gtidDistance, parseGtidPosition } from '../src/ha/mariadb-gtid.js';
import type { WriterServerState } from '../src/ha/mariadb-haproxy.js';
import { chooseCandidate, PromotionError } from '../src/ha/mariadb-promotion.js';
import type { MariaDbServerReport } from '../src/ha/mariadb-servers.js';
import { parseMariaDbServers } from '../src/ha/mariadb-servers.js';

const replica = (name: string, received: string, applied = received): MariaDbServerReport => ({
  name,
  url: `mysql://root@${name}:3306/`,
  reachable: true,
  role: 'replica',
  readOnly: true,
  slavePos: applied,
  binlogPos: applied,
  replication: { source: 'db1:3306', ioRunning: 'Connecting', sqlRunning: 'Yes', receivedPos: received, secondsBehind: null, lastError: '' },
});
const dead = (name: string): MariaDbServerReport => ({ name, url: `mysql://root@${name}:3306/`, reachable: false, role: 'unreachable', error: 'connect ECONNREFUSED' });
const haproxy = (...states: [string, string][]): WriterServerState[] => states.map(([name, status]) => ({ name, status, maint: status === 'MAINT' }));

describe('MariaDB promotion: GTID positions and the choice of replica', () => {
  it('compares GTID positions domain by domain, by sequence number', () => {
    const a = parseGtidPosition('0-1-100,1-2-5');
    const b = parseGtidPosition('0-2-90,1-2-7');
    assert.equal(gtidCovers(a, b), false);
    assert.equal(gtidCovers(parseGtidPosition('0-3-100,1-1-7'), b), true);
    assert.equal(gtidDistance(a, b), 8);
    assert.equal(parseGtidPosition('').size, 0);
    assert.throws(() => parseGtidPosition('garbage'), /not a MariaDB GTID position/);
  });

  it('promotes the replica that received the most, and fences the server HAProxy sends writes to', () => {
    const reports = [dead('db1'), replica('db2', '0-1-500', '0-1-450'), replica('db3', '0-1-480', '0-1-480')];
    const choice = chooseCandidate(reports, haproxy(['db1', 'DOWN'], ['db2', 'MAINT'], ['db3', 'MAINT']));
    assert.equal(choice.candidate.name, 'db2', 'received counts, not applied: the rest is applied before promotion');
    assert.deepEqual(choice.oldPrimaries.map((r) => r.name), ['db1']);
    assert.deepEqual(choice.liveOld, []);
  });

  it('refuses clearly: no reachable replica, a named server that is not one, names HAProxy does not know', () => {
    assert.throws(() => chooseCandidate([dead('db1'), dead('db2')], haproxy(['db1', 'DOWN'], ['db2', 'MAINT'])), (e: Error) => e instanceof PromotionError && /no reachable replica to promote: db1 is unreachable/.test(e.message));
    assert.throws(() => chooseCandidate([dead('db1'), replica('db2', '0-1-5')], haproxy(['db1', 'DOWN'], ['db2', 'MAINT']), 'db1'), /cannot promote db1: db1 is unreachable/);
    assert.throws(() => chooseCandidate([dead('db1'), replica('db2', '0-1-5')], haproxy(['db1', 'DOWN'], ['other', 'MAINT'])), /no server named db2/);
  });

  it('reads SECKILL_MARIADB_SERVERS and says what is wrong with it', () => {
    assert.deepEqual(parseMariaDbServers('db1=mysql://root@10.0.0.1:3306/, db2=mariadb://u:p@10.0.0.2/'), [
      { name: 'db1', url: 'mysql://root@10.0.0.1:3306/' },
      { name: 'db2', url: 'mariadb://u:p@10.0.0.2/' },
    ]);
    assert.throws(() => parseMariaDbServers('db1=mysql://root@h/'), /at least two/);
    assert.throws(() => parseMariaDbServers('db1=postgres://u:secret@h/,db2=mysql://h/'), (e: Error) => /entry "db1=postgres:\/\/u:\*\*\*@h\/"/.test(e.message) && !e.message.includes('secret'));
    assert.throws(() => parseMariaDbServers('db1=mysql://a/,db1=mysql://b/'), /appears twice/);
  });
});
