import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startNode } from '../../src/app/seckill-node.js';
import type { SeckillNode } from '../../src/app/seckill-node.js';
import { loadConfig } from '../../src/config/index.js';
import type { SeckillConfig } from '../../src/config/index.js';
import { AppClient } from './app-client.js';

/** A Seckill node started inside the test process, with a client for its API. */
export interface TestNode {
  readonly node: SeckillNode;
  readonly client: AppClient;
  readonly config: SeckillConfig;
  stop(): Promise<void>;
}

/** Fixed secrets for tests, so a test can mint tokens and call admin routes. */
export const TEST_SECRETS = { adminToken: 'test-admin-token', jwtSecret: 'test-jwt-secret-that-is-long-enough' } as const;

/**
 * Starts a node on a free port with the given settings (database URL, Redis URL, …) and
 * test secrets; `stop()` closes it and removes its data folder.
 */
export async function startTestNode(settings: Partial<Record<keyof SeckillConfig, unknown>> = {}): Promise<TestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'seckill-node-'));
  const config = loadConfig({
    overrides: {
      host: '127.0.0.1',
      port: 0,
      dataDir,
      logLevel: 'warn',
      ...TEST_SECRETS,
      ...settings,
    },
  });
  const node = await startNode(config, { log: pino({ level: config.logLevel }) });
  return {
    node,
    config,
    client: new AppClient(node.url, TEST_SECRETS.adminToken, TEST_SECRETS.jwtSecret),
    async stop() {
      await node.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
