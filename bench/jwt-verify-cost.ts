/**
 * `node dist/bench/jwt-verify-cost.js`: CPU cost of checking one buyer's token, in isolation.
 *
 * Every purchase verifies an HS256 token, and in a flash sale almost every buyer is new, so
 * the verified-token cache of `UserTokens` (fast-jwt `cache: 10_000`) nearly never hits but
 * still hashes each token for its key and inserts it. This prints the three cases side by
 * side, to size that cost against a whole hello-world request (about 20 µs of server CPU on
 * the 2-core benchmark machine, see docs/benchmarks.md).
 */
import { createVerifier } from 'fast-jwt';
import { mintUserToken, UserTokens } from '../src/http/auth.js';

const SECRET = 'bench-secret-bench-secret-bench-secret-bench-secret';
const COUNT = 60_000;
const WARM = 5_000;

const headers = Array.from({ length: COUNT }, (_, i) => `Bearer ${mintUserToken(SECRET, `bench-user-${i}`, 3600)}`);

/** Microseconds per call of `check` over the tokens after the first WARM (JIT warm-up). */
function measure(check: (authorization: string) => unknown): number {
  for (let i = 0; i < WARM; i++) check(headers[i]);
  const started = performance.now();
  for (let i = WARM; i < COUNT; i++) check(headers[i]);
  return ((performance.now() - started) * 1000) / (COUNT - WARM);
}

const uncached = createVerifier({ key: SECRET, algorithms: ['HS256'], requiredClaims: ['sub'] });
const users = new UserTokens(SECRET);
const rows: [string, number][] = [
  ['fast-jwt verifier without a cache, every user new', measure((h) => uncached(h.slice(7)))],
  ['UserTokens.userOf (cache 10,000), every user new', measure((h) => users.userOf(h))],
];
// The same user again (a buyer retrying): the case the cache is for.
const repeat = new UserTokens(SECRET);
for (let i = 0; i < WARM; i++) repeat.userOf(headers[i]);
const started = performance.now();
for (let round = 0; round < 10; round++) for (let i = 0; i < WARM; i++) repeat.userOf(headers[i]);
rows.push(['UserTokens.userOf (cache 10,000), same users again', ((performance.now() - started) * 1000) / (10 * WARM)]);

for (const [name, us] of rows) process.stdout.write(`${us.toFixed(1).padStart(6)} µs  ${name}\n`);
