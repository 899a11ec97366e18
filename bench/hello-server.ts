/**
 * The baseline of the benchmark: a bare fastify 5 server answering `{"hello":"world"}`,
 * run as its own Node process exactly like `seckill start` is, so the ratio
 * purchase ÷ baseline measures what Seckill adds on top of fastify on this machine.
 *
 * Usage: `node dist/bench/hello-server.js <port>`; prints `listening <url>` once ready and
 * stops on SIGTERM/SIGINT.
 *
 * It answers POST as well as GET on `/` because the benchmark sends the baseline the very
 * same requests it sends the purchase route (POST with a bearer token), so both runs make
 * wrk do the same work on the same 2 cores.
 */
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? '0');
const app = Fastify({ logger: false });
const hello = async (): Promise<{ hello: string }> => ({ hello: 'world' });
app.get('/', hello);
app.post('/', hello);

const url = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`listening ${url}\n`);

const stop = (): void => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
