import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../app.js';

/** `/health/live` (the process runs), `/health/ready` (it can sell now), `/metrics`. */
export function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/health/live', async () => ({ status: 'ok' }));

  app.get('/health/ready', async (_request, reply) => {
    const [store, db] = await Promise.all([ctx.store.ping().catch(() => false), ctx.db.ping().catch(() => false)]);
    const accepting = ctx.isAccepting();
    const ready = store && db && accepting;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'unavailable',
      checks: { stockStore: store ? 'ok' : 'down', database: db ? 'ok' : 'down', accepting: accepting ? 'yes' : 'draining' },
    });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await ctx.metrics.text();
    return reply.header('content-type', ctx.metrics.registry.contentType).send(text);
  });
}
