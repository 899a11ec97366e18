/**
 * Entry point of the writer thread started by writer-thread.ts: runs the writer role of
 * this process's configuration, without an HTTP listener, and answers the main thread's
 * requests for its metrics and for a clean stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { startNode } from './seckill-node.js';
import type { WriterThreadData, WriterThreadReply, WriterThreadRequest } from './writer-thread.js';

const port = parentPort;
if (!port) throw new Error('writer-thread-main.js runs only as a worker thread');
const { config, consumer } = workerData as WriterThreadData;
const reply = (message: WriterThreadReply): void => port.postMessage(message);

try {
  const log = pino({ level: config.logLevel, name: 'seckill-writer' });
  const node = await startNode({ ...config, roles: ['writer'] }, { log, migrate: false, consumer, writerThread: true });
  port.on('message', (message: WriterThreadRequest) => {
    if (message.type === 'metrics') {
      node.metrics.registry
        .getMetricsAsJSON()
        .then((metrics) => reply({ type: 'metrics', id: message.id, metrics }))
        .catch(() => undefined);
    } else if (message.type === 'stop') {
      node
        .close()
        .catch((err: unknown) => log.error({ err }, 'order writer thread: stopping failed'))
        .finally(() => {
          reply({ type: 'stopped' });
          port.close();
        });
    }
  });
  reply({ type: 'ready' });
} catch (err) {
  reply({ type: 'failed', message: (err as Error).message });
  port.close();
}
