import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Sale } from '../../db/seckill-database.js';
import type { ApiContext } from '../app.js';
import { parseId, replyError } from '../reply-error.js';

const createSaleBody = {
  type: 'object',
  required: ['name', 'stock', 'startsAt', 'endsAt'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    stock: { type: 'integer', minimum: 1, maximum: 10_000_000 },
    startsAt: { type: 'string', format: 'date-time' },
    endsAt: { type: 'string', format: 'date-time' },
    paymentWindowSeconds: { type: 'integer', minimum: 1, maximum: 30 * 86_400 },
  },
} as const;

interface CreateSaleBody {
  name: string;
  stock: number;
  startsAt: string;
  endsAt: string;
  paymentWindowSeconds?: number;
}

/** The sale as admins see it. */
function adminSaleView(sale: Sale) {
  return {
    id: sale.id,
    name: sale.name,
    stock: sale.stock,
    sold: sale.sold,
    startsAt: new Date(sale.startsAt).toISOString(),
    endsAt: new Date(sale.endsAt).toISOString(),
    paymentWindowSeconds: sale.paymentWindowSeconds,
  };
}

/** Admin routes: create and list sales, sale statistics, reconciliation. */
export function registerAdminRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const requireAdmin = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!ctx.admin.matches(request.headers.authorization)) {
      replyError(reply, 'UNAUTHORIZED', 'the admin token is required');
    }
  };

  app.register(async (admin) => {
    admin.addHook('onRequest', requireAdmin);

    admin.post<{ Body: CreateSaleBody }>('/api/admin/sales', { schema: { body: createSaleBody } }, async (request, reply) => {
      const body = request.body;
      const startsAt = Date.parse(body.startsAt);
      const endsAt = Date.parse(body.endsAt);
      if (!(endsAt > startsAt)) return replyError(reply, 'VALIDATION_FAILED', 'endsAt must be after startsAt');
      let sale: Sale;
      try {
        sale = await ctx.db.createSale({
          name: body.name,
          stock: body.stock,
          startsAt,
          endsAt,
          paymentWindowSeconds: body.paymentWindowSeconds ?? ctx.config.defaultPaymentWindowSeconds,
          now: Date.now(),
        });
      } catch (err) {
        return replyError(reply, 'UNAVAILABLE', `could not create the sale: ${(err as Error).message}`, 1);
      }
      try {
        await ctx.store.warm({ saleId: sale.id, stock: sale.stock, remaining: sale.stock, epoch: randomUUID(), buyers: [], released: [] });
      } catch (err) {
        return replyError(
          reply,
          'UNAVAILABLE',
          `sale ${sale.id} was created but its stock could not be loaded into the stock store (${(err as Error).message}); it will not sell until \`seckill reconcile --repair\` succeeds`,
          1,
        );
      }
      ctx.catalog.remember(sale);
      const { sold: _sold, ...view } = adminSaleView(sale);
      return reply.code(201).send(view);
    });

    admin.get('/api/admin/sales', async () => {
      const sales = await ctx.db.listSales();
      return { sales: sales.map(adminSaleView) };
    });

    admin.get<{ Params: { id: string } }>('/api/admin/sales/:id/stats', async (request, reply) => {
      const saleId = parseId(request.params.id);
      const sale = saleId === null ? undefined : await ctx.db.getSale(saleId);
      if (!sale) return replyError(reply, 'SALE_NOT_FOUND', `no sale with id ${request.params.id}`);
      const [counts, snapshot] = await Promise.all([ctx.db.countOrders(sale.id), ctx.store.snapshot(sale.id).catch(() => null)]);
      return {
        id: sale.id,
        stock: sale.stock,
        remaining: snapshot ? snapshot.remaining : null,
        pending: snapshot ? snapshot.pending : null,
        created: counts.created,
        paid: counts.paid,
        expired: counts.expired,
        cancelled: counts.cancelled,
      };
    });

    admin.post<{ Querystring: { repair?: string; sale?: string } }>('/api/admin/reconcile', async (request, reply) => {
      const repair = request.query.repair === 'true' || request.query.repair === '1';
      let saleIds: number[] | undefined;
      if (request.query.sale !== undefined) {
        const id = parseId(request.query.sale);
        if (id === null) return replyError(reply, 'VALIDATION_FAILED', 'sale must be a sale id');
        saleIds = [id];
      }
      const report = await ctx.reconciler.run({ repair, saleIds });
      for (const finding of report.sales) if (finding.repaired) ctx.catalog.clearSoldOut(finding.saleId);
      return report;
    });
  });
}
