import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { mintUserToken } from '../src/http/auth.js';

/**
 * Writes `count` user tokens, one per line, for the users `<prefix>0` … `<prefix>{count-1}`,
 * signed with `secret` (HS256) and valid for `ttlSeconds`.
 *
 * Minted ahead of the run so wrk spends no time signing and every request can be a new buyer.
 *
 * @returns how long minting took, in milliseconds.
 */
export async function writeTokenFile(path: string, secret: string, prefix: string, count: number, ttlSeconds = 3600): Promise<number> {
  const started = performance.now();
  const out = createWriteStream(path);
  const CHUNK = 5000;
  for (let first = 0; first < count; first += CHUNK) {
    const lines: string[] = [];
    for (let i = first; i < Math.min(count, first + CHUNK); i++) lines.push(mintUserToken(secret, `${prefix}${i}`, ttlSeconds));
    // Respect back-pressure so a large file is not buffered whole in memory.
    if (!out.write(`${lines.join('\n')}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return performance.now() - started;
}
