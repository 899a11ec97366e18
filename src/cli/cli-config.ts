import { loadConfig, resolveSecrets } from '../config/index.js';
import type { SeckillConfig } from '../config/index.js';

/** Options every command accepts. */
export interface GlobalOptions {
  readonly config?: string;
}

/**
 * The configuration for a command: defaults < `--config` file < `SECKILL_*` environment <
 * the command's own options. This is the one place that reads `process.env`.
 */
export function commandConfig(global: GlobalOptions, overrides: Partial<Record<keyof SeckillConfig, unknown>> = {}): SeckillConfig {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return loadConfig({ file: global.config, env: process.env, overrides: defined });
}

/** The configuration with its secrets filled in from the data folder (generated on first use). */
export function commandConfigWithSecrets(global: GlobalOptions, overrides: Partial<Record<keyof SeckillConfig, unknown>> = {}) {
  return resolveSecrets(commandConfig(global, overrides));
}

/** The base URL of the running server a client command talks to. */
export function serverUrl(config: SeckillConfig, explicit?: string): string {
  if (explicit) return explicit.replace(/\/$/, '');
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
}
