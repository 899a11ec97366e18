import type { FastifyInstance } from 'fastify';
import { saleState } from '../../orders/sale-catalog.js';
import type { PurchaseOutcome } from '../../ops/metrics.js';
import type { ApiContext } from '../app.js';
import { unverifiedSubject } from '../auth.js';
import { parseId, replyError } from '../reply-error.js';

const orderRef = {
  type: 'object',
  properties: { orderId: { type: 'string' }, status: { type: 'string' } },
} as const;

const errorBody = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' } },
} as const;

const saleView = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    stock: { type: 'integer' },
    remaining: { type: 'integer' },
    startsAt: { type: 'string' },
    endsAt: { type: 'string' },
    state: { type: 'string' },
  },
} as const;

/** The buyer-facing sale routes: the sale page and the purchase itself. */
export function registerSaleRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Params: { id: string } }>('/api/sales/:id', { schema: { response: { 200: saleView } } }, async (request, reply) => {
    const saleId = parseId(request.params.id);
    const sale = saleId === null ? undefined : await ctx.catalog.get(saleId).catch(() => null);
    if (sale === null) return replyError(reply, 'UNAVAILABLE', 'the database is unavailable', 1);
    if (!sale) return replyError(reply, 'SALE_NOT_FOUND', `no sale with id ${request.params.id}`);
    const snapshot = await ctx.store.snapshot(sale.id).catch(() => undefined);
    if (!snapshot) {
      return replyError(reply, 'UNAVAILABLE', `the stock of sale ${sale.id} is not available right now`, 1);
    }
    const now = Date.now();
    return {
      id: sale.id,
      name: sale.name,
      stock: sale.stock,
      remaining: snapshot.remaining,
      startsAt: new Date(sale.startsAt).toISOString(),
      endsAt: new Date(sale.endsAt).toISOString(),
      state: saleState(sale, snapshot.remaining, now),
    };
  });

  let lastUnavailableLog = -Infinity;
  const count = (outcome: PurchaseOutcome): void => ctx.metrics.purchases.inc(outcome);

  app.post<{ Params: { id: string } }>(
    '/api/sales/:id/purchase',
    { schema: { response: { 200: orderRef, 202: orderRef, '4xx': errorBody, '5xx': errorBody } } },
    async (request, reply) => {
      const started = performance.now();
      try {
        const { authorization } = request.headers;
        if (authorization === undefined || !authorization.startsWith('Bearer ')) return replyError(reply, 'UNAUTHORIZED');
        const saleId = parseId(request.params.id);
        if (saleId === null) {
          count('not_found');
          return replyError(reply, 'SALE_NOT_FOUND', `no sale with id ${request.params.id}`);
        }
        const now = Date.now();
        const soldOut = ctx.checkout.knownSoldOut(saleId, now);
        if (soldOut && !ctx.checkout.mayHoldOrder(saleId, () => unverifiedSubject(authorization))) {
          // Before the token check: "sold out" tells nothing that GET /api/sales/:id does not
          // tell anyone, and skipping the HMAC is most of what keeps a sold-out sale cheap.
          count('sold_out');
          return replyError(reply, 'SOLD_OUT');
        }
        const userId = ctx.users.userOf(authorization);
        if (userId === null) {
          if (soldOut) {
            // A token that fails the check gets SOLD_OUT as any other on a sold-out sale, so
            // forging one with someone's user id tells nothing about whether they bought.
            count('sold_out');
            return replyError(reply, 'SOLD_OUT');
          }
          return replyError(reply, 'UNAUTHORIZED');
        }
        const result = await ctx.checkout.purchase(saleId, userId, request.ip, now);
        count(result.kind);
        switch (result.kind) {
          case 'reserved':
            return reply.code(202).send({ orderId: result.orderId, status: 'pending' });
          case 'existing': {
            const order = await ctx.orders.find(result.orderId, { userId }).catch(() => undefined);
            return reply.code(200).send({ orderId: result.orderId, status: order?.status ?? 'pending' });
          }
          case 'sold_out':
            return replyError(reply, 'SOLD_OUT');
          case 'not_active':
            return replyError(reply, 'SALE_NOT_ACTIVE');
          case 'not_found':
            return replyError(reply, 'SALE_NOT_FOUND', `no sale with id ${saleId}`);
          case 'rate_limited':
            return replyError(reply, 'RATE_LIMITED', undefined, 1);
          case 'unavailable':
            if (started - lastUnavailableLog > 1000) {
              // Once a second is enough to see an outage; once per request would flood the log.
              lastUnavailableLog = started;
              request.log.warn({ saleId, reason: result.reason }, 'purchase refused: a dependency is unavailable');
            }
            return replyError(reply, 'UNAVAILABLE', `cannot sell now: ${result.reason}`, 1);
        }
      } finally {
        ctx.metrics.purchaseSeconds.observe((performance.now() - started) / 1000);
      }
    },
  );
}
