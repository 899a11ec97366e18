/**
 * Loaded into a `seckill start` process with `NODE_OPTIONS=--import=<this file>` by
 * `npm run bench -- --profile`: records a V8 CPU profile of the whole process and writes it
 * to `$BENCH_CPU_PROF_DIR/<pid>.cpuprofile` when the process exits.
 *
 * `node --cpu-prof` would do the same, but Node refuses it in NODE_OPTIONS, and the test
 * harness that starts the process (`startAppProcess`) only passes environment variables.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  // A session in the same thread answers synchronously, so this works in an 'exit' listener,
  // which is where `seckill start` ends up after SIGTERM (it calls process.exit).
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
