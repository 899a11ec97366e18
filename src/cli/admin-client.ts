/** A failed call to the running server's admin API, with what to do about it. */
export class AdminApiError extends Error {
  override readonly name = 'AdminApiError';
}

/**
 * Calls the running server's admin API with the admin token; returns the parsed JSON body.
 * Fails with a message that says whether the server is down or refused the call.
 */
export async function callAdmin<T>(baseUrl: string, adminToken: string, method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
  } catch (err) {
    throw new AdminApiError(`cannot reach the Seckill server at ${baseUrl} (${(err as Error).message}); start it with \`seckill start\` or pass --url`);
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (!response.ok) {
    const detail = parsed && typeof parsed === 'object' && 'code' in parsed ? `${(parsed as { code: string }).code}: ${(parsed as { message?: string }).message ?? ''}` : text;
    throw new AdminApiError(`${method} ${path} answered ${response.status} ${detail}`);
  }
  return parsed as T;
}
