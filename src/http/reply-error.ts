import type { FastifyReply } from 'fastify';
import { ERRORS } from './errors.js';
import type { ErrorCode } from './errors.js';

/** Bodies of errors answered with their standard message, serialized once. */
const STANDARD_BODIES = new Map<ErrorCode, string>(
  Object.entries(ERRORS).map(([code, { message }]) => [code as ErrorCode, JSON.stringify({ code, message })]),
);

/**
 * Answers with an error code without throwing: the purchase path answers SOLD_OUT and
 * friends thousands of times a second, and an exception's stack trace is not free. A
 * standard message goes out as a string serialized once at start-up.
 */
export function replyError(reply: FastifyReply, code: ErrorCode, message?: string, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) void reply.header('retry-after', String(retryAfter));
  void reply.code(ERRORS[code].status);
  if (message === undefined) {
    return reply.header('content-type', 'application/json; charset=utf-8').send(STANDARD_BODIES.get(code));
  }
  return reply.send({ code, message });
}

/** The body of `code`'s error with its standard message, as sent. */
export function standardErrorBody(code: ErrorCode): string {
  return STANDARD_BODIES.get(code)!;
}

/** Parses a numeric id from a path; null when it is not one (the caller answers 404). */
export function parseId(text: string): number | null {
  return /^[1-9][0-9]{0,14}$/.test(text) ? Number(text) : null;
}
