import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { SeckillConfig } from '../config/config.js';
import type { SeckillDatabase } from '../db/seckill-database.js';
import type { SeckillMetrics } from '../ops/metrics.js';
import type { Checkout } from '../orders/checkout.js';
import type { OrderBook } from '../orders/order-book.js';
import type { Reconciler } from '../orders/reconciler.js';
import type { SaleCatalog } from '../orders/sale-catalog.js';
import type { StockStore } from '../stock/stock-store.js';
import { AdminToken, UserTokens } from './auth.js';
import { isDependencyFailure } from './dependency-failure.js';
import { ApiError, ERRORS } from './errors.js';
import { registerAdminRoutes } from './routes/admin-routes.js';
import { registerHealthRoutes } from './routes/health-routes.js';
import { registerOrderRoutes } from './routes/order-routes.js';
import { registerSaleRoutes } from './routes/sale-routes.js';
import { soldOutGateServer } from './sold-out-gate.js';

/** Everything the routes need, built once by the node and shared by all requests. */
export interface ApiServices {
  readonly config: SeckillConfig;
  readonly db: SeckillDatabase;
  readonly store: StockStore;
  readonly catalog: SaleCatalog;
  readonly checkout: Checkout;
  readonly orders: OrderBook;
  readonly reconciler: Reconciler;
  readonly metrics: SeckillMetrics;
  /** False while starting or draining: /health/ready answers 503 so balancers stop sending. */
  readonly isAccepting: () => boolean;
}

/** Per-request helpers the routes use for authentication. */
export interface ApiContext extends ApiServices {
  readonly users: UserTokens;
  readonly admin: AdminToken;
}

/** Fastify's own error codes that are the client's fault, mapped to ours. */
const CLIENT_ERRORS: Record<string, keyof typeof ERRORS> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
};

/**
 * Builds the HTTP server (not yet listening): health and metrics always, the API when the
 * process has the api role. Errors always leave as `{ code, message }`:
 * a client mistake is a 4xx with its code, a failed dependency a 503 with Retry-After, and
 * only a bug a 500.
 */
export function buildApi(services: ApiServices, log: Logger): FastifyInstance {
  const { config } = services;
  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // One log line per purchase would cost more than the purchase itself.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // Purchases of a sale known to be sold out are answered before fastify sees them.
    ...(config.roles.includes('api') ? { serverFactory: soldOutGateServer(services) } : {}),
  });

  // A purchase has no body, but clients often send `content-type: application/json` anyway.
  const json = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined);
    else json(request, body as string, done);
  });

  // Every body we accept is JSON; anything else is answered 415 rather than half-parsed.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    if (error instanceof ApiError) {
      if (error.retryAfter !== undefined) void reply.header('retry-after', String(error.retryAfter));
      return reply.code(error.status).send({ code: error.code, message: error.message });
    }
    if (error.validation) {
      return reply.code(400).send({ code: 'VALIDATION_FAILED', message: `${error.validationContext ?? 'request'} ${error.message}` });
    }
    const mapped = error.code ? CLIENT_ERRORS[error.code] : undefined;
    if (mapped) return reply.code(ERRORS[mapped].status).send({ code: mapped, message: error.message });
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(400).send({ code: 'VALIDATION_FAILED', message: error.message });
    }
    if (isDependencyFailure(error)) {
      // The database (or Redis) is down or failing over: a retry will do, nothing is wrong
      // with the request or the code.
      request.log.warn({ err: error, url: request.url }, 'a dependency is unreachable');
      void reply.header('retry-after', '1');
      // The client gets the standard message: the error's own names internal hosts and ports.
      return reply.code(503).send({ code: 'UNAVAILABLE', message: ERRORS.UNAVAILABLE.message });
    }
    request.log.error({ err: error, url: request.url }, 'unhandled error');
    return reply.code(500).send({ code: 'INTERNAL', message: ERRORS.INTERNAL.message });
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ code: 'NOT_FOUND', message: `${ERRORS.NOT_FOUND.message}: ${request.method} ${request.url}` });
  });

  const context: ApiContext = {
    ...services,
    users: new UserTokens(config.jwtSecret),
    admin: new AdminToken(config.adminToken),
  };
  registerHealthRoutes(app, context);
  if (config.roles.includes('api')) {
    registerSaleRoutes(app, context);
    registerOrderRoutes(app, context);
    registerAdminRoutes(app, context);
  }
  return app;
}
