/**
 * Every error code the HTTP API answers with, its status and the message a client sees.
 * Clients and tests depend on these codes; each is documented in docs/errors.md (a test
 * checks that).
 */
export const ERRORS = {
  VALIDATION_FAILED: { status: 400, message: 'The request is not valid' },
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON' },
  UNAUTHORIZED: { status: 401, message: 'A valid bearer token is required' },
  SALE_NOT_FOUND: { status: 404, message: 'No such sale' },
  ORDER_NOT_FOUND: { status: 404, message: 'No such order' },
  NOT_FOUND: { status: 404, message: 'No such route' },
  SOLD_OUT: { status: 409, message: 'The sale is sold out' },
  SALE_NOT_ACTIVE: { status: 409, message: 'The sale is not open now' },
  ORDER_EXPIRED: { status: 409, message: 'The payment window of this order has passed' },
  ORDER_CANCELLED: { status: 409, message: 'The order was cancelled' },
  ORDER_PAID: { status: 409, message: 'The order is paid and can no longer be cancelled' },
  ORDER_PENDING: { status: 409, message: 'The order is accepted but not yet recorded; retry in a moment' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body must be application/json' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; slow down' },
  INTERNAL: { status: 500, message: 'Internal error' },
  UNAVAILABLE: { status: 503, message: 'A service needed to sell is unavailable; retry shortly' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error answered to the client as `{ code, message }` with the code's status. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  /** Seconds a client should wait before retrying (sent as Retry-After), if any. */
  readonly retryAfter?: number;

  constructor(readonly code: ErrorCode, message?: string, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(message ?? ERRORS[code].message, { cause: options.cause });
    this.status = ERRORS[code].status;
    this.retryAfter = options.retryAfter ?? (code === 'UNAVAILABLE' ? 1 : undefined);
  }
}
