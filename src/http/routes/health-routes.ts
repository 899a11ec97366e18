import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../app.js';

/**
 * How long readiness waits for the database's answer. A hung database (SIGSTOP, a network
 * black hole) must not hang the balancer's health check, which gives up after 400 ms; and
 * since the answer only feeds the report, not readiness, it must not eat into that budget
 * on a starved machine either.
 */
const DATABASE_CHECK_MS = 100;

/**
 * The database's ping, false when it fails or does not answer in time. One ping at a time:
 * against a hung database each would wait for a pool connection, and checks every few
 * hundred milliseconds would pile them up; later checks share the one in flight.
 */
function databaseProbe(ping: () => Promise<boolean>): () => Promise<boolean> {
  let inFlight: Promise<boolean> | undefined;
  return async () => {
    inFlight ??= ping()
      .catch(() => false)
      .finally(() => (inFlight = undefined));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), DATABASE_CHECK_MS)));
    try {
      return await Promise.race([inFlight, late]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * `/health/live` (the process runs), `/health/ready` (it can sell now: stock store up and
 * not draining; `degraded` while the database is down), `/metrics`.
 */
export function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/health/live', async () => ({ status: 'ok' }));

  const databaseAnswers = databaseProbe(() => ctx.db.ping());
  app.get('/health/ready', async (_request, reply) => {
    const [store, db] = await Promise.all([ctx.store.ping().catch(() => false), databaseAnswers()]);
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
