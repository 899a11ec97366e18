import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../app.js';

/**
 * How long readiness waits for the database's answer. A hung database (SIGSTOP, a network
 * black hole) must not hang the balancer's health check, which gives up after 400 ms; and
 * since the answer only feeds the report, not readiness, it must not eat into that budget
 * on a starved machine either.
 */
const DATABASE_PING_TIMEOUT_MS = 100;

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
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), DATABASE_PING_TIMEOUT_MS)));
    try {
      return await Promise.race([inFlight, late]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** `/health/live` (the process runs), `/health/ready` (it can sell now), `/metrics`. */
export function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/health/live', async () => ({ status: 'ok' }));

  const databaseAnswers = databaseProbe(() => ctx.db.ping());
  app.get('/health/ready', async (_request, reply) => {
    const [store, db] = await Promise.all([ctx.store.ping().catch(() => false), databaseAnswers()]);
    const accepting = ctx.isAccepting();
    // The database is not on the purchase path: accepted orders wait in the stock store's
    // queue and the writer pauses until it is back. So a node that reaches the stock store
    // can still sell, and its readiness must not depend on the database: during a database
    // outage or a primary promotion every node would fail the check at once, and the
    // balancer would turn a paused writer into failed purchases. The check still reports
    // the database, and `degraded` says orders are piling up.
    const ready = store && accepting;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? (db ? 'ready' : 'degraded') : 'unavailable',
      checks: { stockStore: store ? 'ok' : 'down', database: db ? 'ok' : 'down', accepting: accepting ? 'yes' : 'draining' },
    });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await ctx.metrics.registry.metrics();
    return reply.header('content-type', ctx.metrics.registry.contentType).send(text);
  });
}
