export { ConfigError, envName, loadConfig, redactUrl } from './config.js';
export type { Durability, LoadConfigOptions, Role, SeckillConfig } from './config.js';
export { resolveSecrets, SECRETS_FILE } from './secrets.js';
export type { ResolvedSecrets } from './secrets.js';
