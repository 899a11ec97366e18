import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createSigner } from 'fast-jwt';
import { startTestNode, TEST_SECRETS } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';
import { freshDatabaseUrl } from './support/servers.js';

function unsignedToken(payload: object): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(payload)}.`;
}

function hs256(secret: string, payload: object, header: object = { alg: 'HS256', typ: 'JWT' }): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${part(header)}.${part(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('bad input', () => {
  let app: TestNode;
  let saleId: number;

  before(async () => {
    app = await startTestNode({ databaseUrl: await freshDatabaseUrl('sqlite') });
    saleId = await app.client.createSale(10);
  });
  after(() => app?.stop());

  const admin = () => ({ token: TEST_SECRETS.adminToken });
  const validSale = () => ({ name: 'x', stock: 5, startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 60_000).toISOString() });

  it('answers malformed JSON with 400 INVALID_JSON', async () => {
    const answer = await app.client.request('POST', '/api/admin/sales', { ...admin(), body: '{"name": "x", stock: }' });
    assert.deepEqual([answer.status, answer.body.code], [400, 'INVALID_JSON']);
  });

  it('answers wrong types and out-of-range values with 400 VALIDATION_FAILED', async () => {
    for (const body of [
      { ...validSale(), stock: '5' },
      { ...validSale(), stock: 0 },
      { ...validSale(), stock: 10_000_001 },
      { ...validSale(), stock: 1.5 },
      { ...validSale(), startsAt: 'tomorrow' },
      { ...validSale(), endsAt: validSale().startsAt, startsAt: new Date(Date.now() + 120_000).toISOString() },
      { ...validSale(), name: '' },
      { ...validSale(), surprise: true },
      [],
    ]) {
      const answer = await app.client.request('POST', '/api/admin/sales', { ...admin(), body });
      assert.deepEqual([answer.status, answer.body.code], [400, 'VALIDATION_FAILED'], `body ${JSON.stringify(body)} → ${JSON.stringify(answer.body)}`);
    }
  });

  it('answers a 10 MB body with 413 PAYLOAD_TOO_LARGE and keeps serving', async () => {
    const huge = JSON.stringify({ name: 'x'.repeat(10 * 1024 * 1024) });
    const answer = await app.client.request('POST', '/api/admin/sales', { ...admin(), body: huge }).catch((err: Error) => ({ status: 0, body: { code: err.message } }));
    // The server may close the connection while the client is still sending; either way it must not be a 5xx.
    assert.ok(answer.status === 413 || answer.status === 0, `got ${answer.status}`);
    if (answer.status === 413) assert.equal((answer.body as { code: string }).code, 'PAYLOAD_TOO_LARGE');
    const health = await app.client.request('GET', '/health/live');
    assert.equal(health.status, 200);
  });

  it('answers a non-JSON content type with 415', async () => {
    const answer = await app.client.request('POST', '/api/admin/sales', { ...admin(), body: 'name=x', headers: { 'content-type': 'text/plain' } });
    assert.deepEqual([answer.status, answer.body.code], [415, 'UNSUPPORTED_MEDIA_TYPE']);
  });

  it('answers unknown sale and order ids with 404 and their codes', async () => {
    const token = app.client.tokenFor('u1');
    for (const path of ['/api/sales/999999/purchase', '/api/sales/abc/purchase', '/api/sales/-1/purchase']) {
      const answer = await app.client.request('POST', path, { token });
      assert.deepEqual([answer.status, answer.body.code], [404, 'SALE_NOT_FOUND'], path);
    }
    assert.equal((await app.client.request('GET', '/api/sales/424242')).body.code, 'SALE_NOT_FOUND');
    for (const orderId of ['nope', '1-000000000aaaaaaaaaaaaaaaa', `${saleId}-zzzzzzzzz0000000000000000`]) {
      const answer = await app.client.request('GET', `/api/orders/${orderId}`, { token });
      assert.deepEqual([answer.status, answer.body.code], [404, 'ORDER_NOT_FOUND'], orderId);
      const pay = await app.client.request('POST', `/api/orders/${orderId}/pay`, { token });
      assert.deepEqual([pay.status, pay.body.code], [404, 'ORDER_NOT_FOUND'], orderId);
    }
    const stats = await app.client.request('GET', '/api/admin/sales/31337/stats', admin());
    assert.deepEqual([stats.status, stats.body.code], [404, 'SALE_NOT_FOUND']);
    const route = await app.client.request('GET', '/api/nothing-here');
    assert.deepEqual([route.status, route.body.code], [404, 'NOT_FOUND']);
  });

  it('refuses tokens signed with another key, alg none, expired, or missing', async () => {
    const path = `/api/sales/${saleId}/purchase`;
    const bad = {
      'another key': hs256('some-other-secret', { sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 600 }),
      'alg none': unsignedToken({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 600 }),
      'HS512 instead of HS256': createSigner({ key: TEST_SECRETS.jwtSecret, algorithm: 'HS512', expiresIn: 60_000 })({ sub: 'mallory' }),
      'header and signature disagree': hs256(TEST_SECRETS.jwtSecret, { sub: 'mallory' }, { alg: 'HS512', typ: 'JWT' }),
      expired: createSigner({ key: TEST_SECRETS.jwtSecret, algorithm: 'HS256' })({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) - 10 }),
      'no subject': createSigner({ key: TEST_SECRETS.jwtSecret, algorithm: 'HS256', expiresIn: 60_000 })({ name: 'mallory' }),
      garbage: 'not.a.token',
    };
    for (const [what, token] of Object.entries(bad)) {
      const answer = await app.client.request('POST', path, { token });
      assert.deepEqual([answer.status, answer.body.code], [401, 'UNAUTHORIZED'], what);
    }
    const none = await app.client.request('POST', path);
    assert.deepEqual([none.status, none.body.code], [401, 'UNAUTHORIZED']);
    const userAsAdmin = await app.client.request('POST', '/api/admin/sales', { token: app.client.tokenFor('mallory'), body: validSale() });
    assert.deepEqual([userAsAdmin.status, userAsAdmin.body.code], [401, 'UNAUTHORIZED'], 'a user token is not an admin token');
    assert.equal((await app.node.db.countOrders(saleId)).created, 0, 'nothing was bought');
  });

  it('answers a sale this node knows is sold out with 409 before looking at the token', async () => {
    const tiny = await app.client.createSale(1);
    assert.equal((await app.client.purchase(tiny, 'lucky')).status, 202);
    assert.equal((await app.client.purchase(tiny, 'late')).body.code, 'SOLD_OUT');
    const forged = await app.client.request('POST', `/api/sales/${tiny}/purchase`, { token: 'not.a.token' });
    assert.deepEqual([forged.status, forged.body.code], [409, 'SOLD_OUT']);
    const anonymous = await app.client.request('POST', `/api/sales/${tiny}/purchase`);
    assert.deepEqual([anonymous.status, anonymous.body.code], [401, 'UNAUTHORIZED'], 'a request without any bearer token is still refused');
    assert.equal((await app.node.db.countOrders(tiny)).created, 1);
  });

  it('answers a sale outside its window with 409 SALE_NOT_ACTIVE', async () => {
    const later = await app.client.createSale(5, { startsAt: Date.now() + 3_600_000, endsAt: Date.now() + 7_200_000 });
    const answer = await app.client.purchase(later, 'early-bird');
    assert.deepEqual([answer.status, answer.body.code], [409, 'SALE_NOT_ACTIVE']);
    assert.equal((await app.client.request('GET', `/api/sales/${later}`)).body.state, 'upcoming');
  });

  it('accepts a purchase sent with a JSON content type and an empty body', async () => {
    const answer = await app.client.request('POST', `/api/sales/${saleId}/purchase`, {
      token: app.client.tokenFor('json-client'),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
  });

  it('limits a user to the configured purchase attempts per second', async () => {
    const limited = await startTestNode({ databaseUrl: await freshDatabaseUrl('sqlite'), rateLimitPerUser: 3 });
    try {
      const other = await limited.client.createSale(100);
      const answers = await Promise.all(Array.from({ length: 8 }, () => limited.client.purchase(other, 'hammer')));
      const refused = answers.filter((a) => a.status === 429).length;
      // 3 a second: 5 of 8 are refused, or at least 2 if the burst straddles a second boundary.
      assert.ok(refused >= 2 && refused <= 5, JSON.stringify(answers.map((a) => [a.status, a.body])));
      assert.equal(answers.filter((a) => a.status === 202).length, 1);
      assert.equal(new Set(answers.filter((a) => a.status < 300).map((a) => a.body.orderId)).size, 1, 'the attempts let through share one order');
      assert.ok(answers.filter((a) => a.status === 429).every((a) => a.headers.get('retry-after') === '1'));
    } finally {
      await limited.stop();
    }
  });
});
