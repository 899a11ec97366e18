import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyServerOptions } from 'fastify';
import type { SeckillMetrics } from '../ops/metrics.js';
import type { Checkout } from '../orders/checkout.js';
import { unverifiedSubject } from './auth.js';
import { ERRORS } from './errors.js';
import { standardErrorBody } from './reply-error.js';

/** `POST /api/sales/<id>/purchase`, optionally with a query string: the only route the gate answers. */
const PURCHASE_PATH = /^\/api\/sales\/([1-9][0-9]{0,14})\/purchase(?:\?|$)/;

/** What the gate needs from the node. */
export interface SoldOutGateServices {
  readonly checkout: Checkout;
  readonly metrics: SeckillMetrics;
  /** False while starting or draining: then fastify answers everything (503 while closing). */
  readonly isAccepting: () => boolean;
}

/**
 * The sold-out gate. Once a sale sells out, nearly every request a flash-sale node gets is a
 * purchase of that sale, and the answer is the same `409 SOLD_OUT` for all. The gate answers
 * those straight from node's HTTP server, before fastify builds its request, reply and child
 * logger and routes the URL: the answer a buyer sees is byte for byte the one the purchase
 * route gives (the route still answers it too, for the first request after a sell-out and
 * for anything the gate lets through).
 *
 * It answers only what it is sure of: a POST to the purchase path, without a body, that
 * carries a bearer header (so a request without one still gets 401 from the route) for a
 * sale this node knows to be open and sold out, from a user who holds no order in it (see
 * {@link Checkout.mayHoldOrder}: a buyer retrying after the sell-out gets the order back
 * from the route). Everything else goes to fastify.
 *
 * @returns a fastify `serverFactory`: the HTTP server fastify would make, with the gate in front.
 */
export function soldOutGateServer(
  services: SoldOutGateServices,
): (handler: (req: IncomingMessage, res: ServerResponse) => void, options: FastifyServerOptions) => Server {
  const body = standardErrorBody('SOLD_OUT');
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  };
  const status = ERRORS.SOLD_OUT.status;
  const { checkout, metrics, isAccepting } = services;

  const answeredByGate = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST') return false;
    const match = PURCHASE_PATH.exec(req.url ?? '');
    if (match === null) return false;
    const { authorization, 'content-length': length, 'transfer-encoding': chunked } = req.headers;
    if (authorization === undefined || !authorization.startsWith('Bearer ')) return false;
    // A purchase has no body. One that comes with a body goes to fastify, whose body limit
    // applies: answered here, node would read and throw away whatever the client sends.
    if (chunked !== undefined || (length !== undefined && length !== '0')) return false;
    const saleId = Number(match[1]);
    if (!checkout.knownSoldOut(saleId) || !isAccepting() || checkout.mayHoldOrder(saleId, () => unverifiedSubject(authorization))) return false;
    // Timed from here: every purchase passes the checks above, in stock ones too, and only
    // the ones answered here are counted.
    const started = performance.now();
    res.writeHead(status, headers);
    res.end(body);
    metrics.purchases.inc('sold_out');
    metrics.purchaseSeconds.observe((performance.now() - started) / 1000);
    return true;
  };

  return (handler, options) => {
    const server = createServer((req, res) => {
      if (!answeredByGate(req, res)) handler(req, res);
    });
    // What fastify sets on the server it makes itself (lib/server.js), which it skips for a factory's.
    if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout;
    if (options.requestTimeout !== undefined) server.requestTimeout = options.requestTimeout;
    if (options.connectionTimeout !== undefined) server.setTimeout(options.connectionTimeout);
    if (options.maxRequestsPerSocket) server.maxRequestsPerSocket = options.maxRequestsPerSocket;
    return server;
  };
}
