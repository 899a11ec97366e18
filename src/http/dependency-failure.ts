/**
 * Error codes meaning a connection to a dependency could not be made or was lost: the
 * operating system's, mysql2's (MariaDB/MySQL) and PostgreSQL's SQLSTATEs for a server
 * going away or refusing connections.
 */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  // PostgreSQL: admin/crash shutdown, cannot connect now, too many connections.
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/** Messages of client libraries that lost their server without an error code. */
const CONNECTION_MESSAGES = /connection terminated|connection is closed|timeout exceeded when trying to connect|command timed out|stream isn't writeable|server closed the connection/i;

/**
 * Whether `error` (or an error it wraps) says a database or Redis could not be reached,
 * rather than that the request or our code is wrong: the API answers it 503 with
 * Retry-After, as the purchase path does, never 500.
 */
export function isDependencyFailure(error: unknown, depth = 0): boolean {
  if (depth > 4 || typeof error !== 'object' || error === null) return false;
  const { code, message, cause, errors } = error as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  if (typeof message === 'string' && CONNECTION_MESSAGES.test(message)) return true;
  if (Array.isArray(errors) && errors.some((e) => isDependencyFailure(e, depth + 1))) return true;
  return isDependencyFailure(cause, depth + 1);
}
