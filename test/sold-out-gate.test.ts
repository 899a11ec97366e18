import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestNode } from './support/app-node.js';
import type { TestNode } from './support/app-node.js';

/**
 * Purchases of a sale the node knows is sold out are answered by the sold-out gate in front
 * of fastify (src/http/sold-out-gate.ts). A buyer must not be able to tell which of the two
 * answered: same status, body and headers, same order of checks, and counted the same.
 */
describe('sold-out gate', () => {
  let app: TestNode;

  before(async () => {
    app = await startTestNode({ databaseUrl: 'sqlite::memory:', rateLimitPerUser: 0 });
  });
  after(async () => {
    await app?.stop();
  });

  it('answers a sold-out sale exactly as the purchase route does, and counts every answer', async () => {
    const { client } = app;
    const saleId = await client.createSale(1);
    assert.equal((await client.purchase(saleId, 'winner')).status, 202);
    // The first refusal comes from the route (it learns the sale is sold out), the rest from the gate.
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await client.purchase(saleId, `late-${i}`));
    for (const answer of answers) {
      assert.equal(answer.status, 409);
      assert.deepEqual(answer.body, { code: 'SOLD_OUT', message: 'The sale is sold out' });
      assert.equal(answer.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.equal(answer.headers.get('content-length'), answers[0].headers.get('content-length'));
    }
    const withQuery = await client.request('POST', `/api/sales/${saleId}/purchase?src=app`, { token: client.tokenFor('late-q') });
    assert.deepEqual([withQuery.status, withQuery.body.code], [409, 'SOLD_OUT']);
    const metrics = await client.request<string>('GET', '/metrics');
    assert.match(String(metrics.body), /^seckill_purchases_total\{outcome="sold_out"\} 6$/m);
  });

  it('lets the route check the token first and leaves other routes and methods alone', async () => {
    const { client } = app;
    const saleId = await client.createSale(1);
    await client.purchase(saleId, 'winner');
    assert.equal((await client.purchase(saleId, 'late')).body.code, 'SOLD_OUT');

    const anonymous = await client.request('POST', `/api/sales/${saleId}/purchase`);
    assert.deepEqual([anonymous.status, anonymous.body.code], [401, 'UNAUTHORIZED']);
    const wrongMethod = await client.request('GET', `/api/sales/${saleId}/purchase`, { token: client.tokenFor('late') });
    assert.equal(wrongMethod.status, 404);
    const withBody = await client.request('POST', `/api/sales/${saleId}/purchase`, { token: client.tokenFor('late'), body: {} });
    assert.deepEqual([withBody.status, withBody.body.code], [409, 'SOLD_OUT'], 'a body the route accepts');
    const huge = await client.request('POST', `/api/sales/${saleId}/purchase`, { token: client.tokenFor('late'), body: { pad: 'x'.repeat(64 * 1024) } });
    assert.deepEqual([huge.status, huge.body.code], [413, 'PAYLOAD_TOO_LARGE'], 'the body limit still applies');
    const page = await client.request('GET', `/api/sales/${saleId}`);
    assert.deepEqual([page.status, page.body.state], [200, 'sold_out']);
  });

  it('stops answering as soon as a unit returns to sale', async () => {
    const { client } = app;
    const saleId = await client.createSale(1);
    const first = await client.purchase(saleId, 'canceller');
    await client.drained(saleId);
    assert.equal((await client.purchase(saleId, 'waiting')).body.code, 'SOLD_OUT');
    assert.equal((await client.purchase(saleId, 'waiting')).body.code, 'SOLD_OUT');
    const cancel = await client.request('POST', `/api/orders/${first.body.orderId}/cancel`, { token: client.tokenFor('canceller') });
    assert.equal(cancel.status, 200);
    const next = await client.purchase(saleId, 'waiting');
    assert.equal(next.status, 202, `the returned unit sells at once: ${JSON.stringify(next.body)}`);
  });
});
