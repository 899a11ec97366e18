import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../app.js';

/** How long readiness waits for the database: a hung one must not slow the balancer's check past its timeout. */
const DATABASE_CHECK_MS = 250;

async function databaseAnswers(ctx: ApiContext): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), DATABASE_CHECK_MS);
  });
  try {
    return await Promise.race([ctx.db.ping().catch(() => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `/health/live` (the process runs), `/health/ready` (it can sell now: stock store up and
 * not draining; `degraded` while the database is down), `/metrics`.
 */
export function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/health/live', async () => ({ status: 'ok' }));

  app.get('/health/ready', async (_request, reply) => {
    const [store, db] = await Promise.all([ctx.store.ping().catch(() => false), databaseAnswers(ctx)]);
    const accepting = ctx.isAccepting();
    // Selling needs only the stock store: accepted orders wait in its queue while the
    // database is down or failing over, and the writer persists them once it answers.
    // Were the database part of readiness, a database failover would take every node out
    // of the balancer at once. Its state is still reported, for operators and alerts.
    const ready = store && accepting;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? (db ? 'ready' : 'degraded') : 'unavailable',
      checks: { stockStore: store ? 'ok' : 'down', database: db ? 'ok' : 'down', accepting: accepting ? 'yes' : 'draining' },
    });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await ctx.metrics.text();
    return reply.header('content-type', ctx.metrics.registry.contentType).send(text);
  });
}
