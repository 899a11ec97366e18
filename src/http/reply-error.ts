import type { FastifyReply } from 'fastify';
import { ERRORS } from './errors.js';
import type { ErrorCode } from './errors.js';

/**
 * Answers with an error code without throwing: the purchase path answers SOLD_OUT and
 * friends thousands of times a second, and an exception's stack trace is not free.
 */
export function replyError(reply: FastifyReply, code: ErrorCode, message?: string, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) void reply.header('retry-after', String(retryAfter));
  return reply.code(ERRORS[code].status).send({ code, message: message ?? ERRORS[code].message });
}

/** Parses a numeric id from a path; null when it is not one (the caller answers 404). */
export function parseId(text: string): number | null {
  return /^[1-9][0-9]{0,14}$/.test(text) ? Number(text) : null;
}
