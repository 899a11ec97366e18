import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SeckillConfig } from './config.js';

/** File in the data folder that keeps generated secrets across restarts. */
export const SECRETS_FILE = 'secrets.json';

export interface ResolvedSecrets {
  readonly config: SeckillConfig;
  /** True when this call generated new secrets (first start): the caller shows them once. */
  readonly generated: boolean;
}

/**
 * Fills in the admin token and JWT secret: configured values win; otherwise they are read
 * from `<dataDir>/secrets.json`, or generated into it (mode 0600) on first start.
 */
export function resolveSecrets(config: SeckillConfig): ResolvedSecrets {
  if (config.adminToken && config.jwtSecret) return { config, generated: false };
  mkdirSync(config.dataDir, { recursive: true });
  const path = join(config.dataDir, SECRETS_FILE);
  let stored: { adminToken?: string; jwtSecret?: string } = {};
  let generated = false;
  if (existsSync(path)) {
    stored = JSON.parse(readFileSync(path, 'utf8')) as typeof stored;
  }
  if (!stored.adminToken || !stored.jwtSecret) {
    stored = {
      adminToken: stored.adminToken || randomBytes(24).toString('base64url'),
      jwtSecret: stored.jwtSecret || randomBytes(32).toString('base64url'),
    };
    writeFileSync(path, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
    generated = true;
  }
  const merged = {
    ...config,
    adminToken: config.adminToken || stored.adminToken!,
    jwtSecret: config.jwtSecret || stored.jwtSecret!,
  };
  return { config: Object.freeze(merged), generated };
}
