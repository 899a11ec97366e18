import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Viewer } from '../../orders/order-book.js';
import type { ApiContext } from '../app.js';
import { replyError } from '../reply-error.js';

const orderView = {
  type: 'object',
  properties: {
    orderId: { type: 'string' },
    saleId: { type: 'integer' },
    userId: { type: 'string' },
    status: { type: 'string' },
    createdAt: { type: 'string' },
  },
} as const;

type OrderRequest = FastifyRequest<{ Params: { orderId: string } }>;

/** Order status, payment and cancellation, for the order's owner (or an admin). */
export function registerOrderRoutes(app: FastifyInstance, ctx: ApiContext): void {
  /** The caller as a viewer, or null after answering 401. */
  const viewerOf = (request: FastifyRequest, reply: FastifyReply): Viewer | null => {
    const { authorization } = request.headers;
    if (ctx.admin.matches(authorization)) return { admin: true };
    const userId = ctx.users.userOf(authorization);
    if (userId !== null) return { userId };
    replyError(reply, 'UNAUTHORIZED');
    return null;
  };
  const unavailable = (reply: FastifyReply, err: unknown): FastifyReply =>
    replyError(reply, 'UNAVAILABLE', `cannot reach the order store: ${(err as Error).message}`, 1);

  app.get('/api/orders/:orderId', { schema: { response: { 200: orderView } } }, async (request: OrderRequest, reply) => {
    const viewer = viewerOf(request, reply);
    if (!viewer) return reply;
    let order;
    try {
      order = await ctx.orders.find(request.params.orderId, viewer);
    } catch (err) {
      return unavailable(reply, err);
    }
    if (!order) return replyError(reply, 'ORDER_NOT_FOUND');
    return { ...order, createdAt: new Date(order.createdAt).toISOString() };
  });

  app.post('/api/orders/:orderId/pay', async (request: OrderRequest, reply) => {
    const viewer = viewerOf(request, reply);
    if (!viewer) return reply;
    let outcome;
    try {
      outcome = await ctx.orders.pay(request.params.orderId, viewer);
    } catch (err) {
      return unavailable(reply, err);
    }
    switch (outcome) {
      case 'paid':
      case 'already_paid':
        return { status: 'paid' };
      case 'expired':
        return replyError(reply, 'ORDER_EXPIRED');
      case 'cancelled':
        return replyError(reply, 'ORDER_CANCELLED');
      case 'pending':
        return replyError(reply, 'ORDER_PENDING', undefined, 1);
      case 'not_found':
        return replyError(reply, 'ORDER_NOT_FOUND');
    }
  });

  app.post('/api/orders/:orderId/cancel', async (request: OrderRequest, reply) => {
    const viewer = viewerOf(request, reply);
    if (!viewer) return reply;
    let outcome;
    try {
      outcome = await ctx.orders.cancel(request.params.orderId, viewer);
    } catch (err) {
      return unavailable(reply, err);
    }
    switch (outcome) {
      case 'cancelled':
      case 'already_cancelled':
        return { status: 'cancelled' };
      case 'paid':
        return replyError(reply, 'ORDER_PAID');
      case 'expired':
        return replyError(reply, 'ORDER_EXPIRED');
      case 'pending':
        return replyError(reply, 'ORDER_PENDING', undefined, 1);
      case 'not_found':
        return replyError(reply, 'ORDER_NOT_FOUND');
    }
  });
}
