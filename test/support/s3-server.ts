/**
 * A private S3-compatible server for tests: s3rver (an S3 API over a folder), run as a
 * child process on a free loopback port with its data in a scratch folder.
 *
 * It runs in a child process rather than in the test process because s3rver encrypts its
 * list continuation tokens with DES, which OpenSSL 3 only offers through its legacy
 * provider (`node --openssl-legacy-provider`); the test process should not change its
 * crypto for that. This same file is the child's entry point (`serve` below).
 */
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from './free-port.js';
import { createScratchDir, removeScratchDir } from './scratch-dir.js';
import { ServerProcess, ServerStartError } from './server-process.js';

/** The access key pair s3rver accepts. */
const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';

/** A running test S3 server. */
export interface S3Server {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly port: number;
  /** The bucket created at start. */
  readonly bucket: string;
  /**
   * A backup target URL on this server: `s3://S3RVER:S3RVER@<bucket>/<prefix>?endpoint=…&region=us-east-1`.
   * Use a distinct prefix per test so tests do not see each other's backups.
   */
  targetUrl(prefix: string): string;
  /** The folder s3rver keeps objects in (to damage one on purpose). */
  readonly dataDir: string;
  stop(): Promise<void>;
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/**
 * Starts s3rver on a free loopback port with one bucket.
 *
 * @example
 * const s3 = await startS3Server();
 * after(() => s3.stop());
 * const target = openTarget({ name: 'offsite', url: s3.targetUrl('test-1') });
 */
export async function startS3Server(bucket = 'seckill-backups'): Promise<S3Server> {
  const entry = fileURLToPath(import.meta.url);
  for (let attempt = 1; ; attempt += 1) {
    const dir = createScratchDir('s3');
    const dataDir = join(dir, 'data');
    const port = await freePort();
    const server = await ServerProcess.start({
      name: 's3rver',
      command: process.execPath,
      args: ['--openssl-legacy-provider', entry, 'serve', dataDir, String(port), bucket],
      logFile: join(dir, 's3rver.log'),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      scratchDir: dir,
    });
    try {
      await server.waitUntilReady(() => answers(port), { timeoutMs: 20_000 });
    } catch (error) {
      await server.stop({ signal: 'SIGKILL' });
      await removeScratchDir(dir);
      if (error instanceof ServerStartError && error.addressInUse && attempt < 3) continue;
      throw error;
    }
    const endpoint = `http://127.0.0.1:${port}`;
    return {
      endpoint,
      port,
      bucket,
      dataDir,
      targetUrl: (prefix) => `s3://${ACCESS_KEY}:${SECRET_KEY}@${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}&region=us-east-1`,
      async stop() {
        await server.stop();
        await removeScratchDir(dir);
      },
    };
  }
}

/** The child: `node --openssl-legacy-provider s3-server.js serve <dir> <port> <bucket>`. */
async function serve(directory: string, port: number, bucket: string): Promise<void> {
  const { createRequire } = await import('node:module');
  const S3rver = createRequire(import.meta.url)('s3rver') as new (options: Record<string, unknown>) => { run(): Promise<unknown>; close(): Promise<void> };
  const server = new S3rver({ address: '127.0.0.1', port, directory, silent: true, configureBuckets: [{ name: bucket }] });
  await server.run();
  process.stdout.write(`s3rver listening on 127.0.0.1:${port}\n`);
  const stop = (): void => void server.close().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === 'serve') {
  await serve(process.argv[3]!, Number(process.argv[4]), process.argv[5]!);
}
