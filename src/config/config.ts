import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Which jobs one process runs: the HTTP API, the order writer (queue → database, expiry). */
export type Role = 'api' | 'writer';

/** How durable a reservation must be before the API answers 2xx. */
export type Durability = 'leader' | 'replica';

/**
 * The whole configuration, validated once and deep-frozen. Precedence:
 * defaults < JSON file (`--config`) < `SECKILL_*` environment variables.
 * Nothing else in the program reads `process.env`.
 */
export interface SeckillConfig {
  readonly host: string;
  readonly port: number;
  /** Folder for the embedded database and generated secrets. */
  readonly dataDir: string;
  /** `sqlite:<path>`, `mysql://…`, `mariadb://…` or `postgres://…`; default SQLite in dataDir. */
  readonly databaseUrl: string;
  /** Empty: the in-process stock store. `redis://…`: Redis. */
  readonly redisUrl: string;
  readonly redisKeyPrefix: string;
  /** Bearer token for /api/admin; generated into dataDir when empty. */
  readonly adminToken: string;
  /** HS256 key for user tokens; generated into dataDir when empty. */
  readonly jwtSecret: string;
  /** Purchase attempts per user per sale per second; 0 = off. */
  readonly rateLimitPerUser: number;
  /** Requests per client address per second on the purchase route; 0 = off. */
  readonly rateLimitPerIp: number;
  /** Trust X-Forwarded-For (true behind a balancer you run, false when exposed directly). */
  readonly trustProxy: boolean;
  readonly durability: Durability;
  /** How long `durability: replica` waits for a replica before answering 503. */
  readonly replicaTimeoutMs: number;
  /** Redis command timeout: how long a purchase waits on a stuck Redis before 503. */
  readonly redisCommandTimeoutMs: number;
  /** Most orders the writer takes from the queue in one batch. */
  readonly writerBatchSize: number;
  /** How long an entry may sit unacknowledged at a writer before another writer takes it over. */
  readonly writerClaimIdleMs: number;
  /** How often unpaid orders past their payment window are expired. */
  readonly expiryIntervalMs: number;
  /** How often the writer role rebuilds sales whose stock state is missing (I5); 0 = only on demand. */
  readonly reconcileIntervalMs: number;
  readonly defaultPaymentWindowSeconds: number;
  /** Largest request body accepted, in bytes. */
  readonly bodyLimitBytes: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Worker processes for `seckill start` (node cluster). */
  readonly workers: number;
  readonly roles: readonly Role[];
}

type Kind =
  | { readonly type: 'string'; readonly allowEmpty?: boolean }
  | { readonly type: 'integer'; readonly min: number; readonly max: number }
  | { readonly type: 'boolean' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | { readonly type: 'list'; readonly values: readonly string[] };

interface Setting {
  readonly key: keyof SeckillConfig;
  readonly kind: Kind;
  /** Default; a function of the settings read so far where it depends on them. */
  readonly fallback: unknown | ((partial: Record<string, unknown>) => unknown);
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every setting, in the order defaults are resolved (dataDir before databaseUrl). */
const SETTINGS: readonly Setting[] = [
  { key: 'host', kind: { type: 'string' }, fallback: '127.0.0.1' },
  { key: 'port', kind: { type: 'integer', min: 0, max: 65535 }, fallback: 8080 },
  { key: 'dataDir', kind: { type: 'string' }, fallback: './data' },
  {
    key: 'databaseUrl',
    kind: { type: 'string' },
    fallback: (partial: Record<string, unknown>) => `sqlite:${join(String(partial.dataDir), 'seckill.db')}`,
  },
  { key: 'redisUrl', kind: { type: 'string', allowEmpty: true }, fallback: '' },
  { key: 'redisKeyPrefix', kind: { type: 'string' }, fallback: 'seckill:' },
  { key: 'adminToken', kind: { type: 'string', allowEmpty: true }, fallback: '' },
  { key: 'jwtSecret', kind: { type: 'string', allowEmpty: true }, fallback: '' },
  { key: 'rateLimitPerUser', kind: { type: 'integer', min: 0, max: 1_000_000 }, fallback: 5 },
  { key: 'rateLimitPerIp', kind: { type: 'integer', min: 0, max: 10_000_000 }, fallback: 0 },
  { key: 'trustProxy', kind: { type: 'boolean' }, fallback: false },
  { key: 'durability', kind: { type: 'enum', values: ['leader', 'replica'] }, fallback: 'leader' },
  { key: 'replicaTimeoutMs', kind: { type: 'integer', min: 1, max: 60_000 }, fallback: 200 },
  { key: 'redisCommandTimeoutMs', kind: { type: 'integer', min: 10, max: 60_000 }, fallback: 1000 },
  { key: 'writerBatchSize', kind: { type: 'integer', min: 1, max: 10_000 }, fallback: 1000 },
  { key: 'writerClaimIdleMs', kind: { type: 'integer', min: 100, max: 3_600_000 }, fallback: 10_000 },
  { key: 'expiryIntervalMs', kind: { type: 'integer', min: 10, max: 3_600_000 }, fallback: 1000 },
  { key: 'reconcileIntervalMs', kind: { type: 'integer', min: 0, max: 3_600_000 }, fallback: 5000 },
  { key: 'defaultPaymentWindowSeconds', kind: { type: 'integer', min: 1, max: 30 * 86_400 }, fallback: 900 },
  { key: 'bodyLimitBytes', kind: { type: 'integer', min: 1024, max: 10 * 1024 * 1024 }, fallback: 16_384 },
  { key: 'logLevel', kind: { type: 'enum', values: LOG_LEVELS }, fallback: 'info' },
  { key: 'workers', kind: { type: 'integer', min: 1, max: 256 }, fallback: 1 },
  { key: 'roles', kind: { type: 'list', values: ['api', 'writer'] }, fallback: ['api', 'writer'] },
];

/** `rateLimitPerUser` → `SECKILL_RATE_LIMIT_PER_USER`. */
export function envName(key: string): string {
  return `SECKILL_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** A configuration value that is not allowed; the message names the key, the value and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Where a value came from, for error messages. */
type Source = 'default' | 'file' | 'env';

function describeAllowed(kind: Kind): string {
  switch (kind.type) {
    case 'string':
      return kind.allowEmpty ? 'any text' : 'a non-empty text';
    case 'integer':
      return `an integer from ${kind.min} to ${kind.max}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${kind.values.join(', ')}`;
    case 'list':
      return `a comma-separated list of ${kind.values.join(', ')}`;
  }
}

function parseValue(setting: Setting, raw: unknown, source: Source): unknown {
  const { kind, key } = setting;
  const where = source === 'env' ? `${envName(key)}=${JSON.stringify(raw)}` : `"${key}": ${JSON.stringify(raw)} (config file)`;
  const fail = (): never => {
    throw new ConfigError(`invalid configuration ${where}: ${key} must be ${describeAllowed(kind)}`);
  };
  const text = typeof raw === 'string' ? raw.trim() : raw;
  switch (kind.type) {
    case 'string':
      if (typeof text !== 'string' || (!kind.allowEmpty && text === '')) fail();
      return text;
    case 'integer': {
      const n = typeof text === 'number' ? text : typeof text === 'string' && /^-?\d+$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(n) || n < kind.min || n > kind.max) fail();
      return n;
    }
    case 'boolean':
      if (typeof text === 'boolean') return text;
      if (text === 'true' || text === '1') return true;
      if (text === 'false' || text === '0') return false;
      return fail();
    case 'enum':
      if (typeof text !== 'string' || !kind.values.includes(text)) fail();
      return text;
    case 'list': {
      const items = Array.isArray(text) ? text : typeof text === 'string' ? text.split(',').map((s) => s.trim()) : null;
      if (!items || items.length === 0 || items.some((i) => typeof i !== 'string' || !kind.values.includes(i))) fail();
      return [...new Set(items as string[])];
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export interface LoadConfigOptions {
  /** Path of a JSON file with any of the settings, by their camelCase names. */
  readonly file?: string;
  /** The environment to read `SECKILL_*` from; the caller passes `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values that win over everything (command-line options). */
  readonly overrides?: Partial<Record<keyof SeckillConfig, unknown>>;
}

/**
 * Builds the configuration from defaults, an optional JSON file, the environment and
 * command-line overrides, validating every value.
 *
 * @example
 * const config = loadConfig({ file: opts.config, env: process.env });
 * @throws {ConfigError} naming the key, the value and what is allowed.
 */
export function loadConfig(options: LoadConfigOptions = {}): SeckillConfig {
  let fileValues: Record<string, unknown> = {};
  if (options.file) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${options.file}: ${(err as Error).message}`);
    }
    try {
      fileValues = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`config file ${options.file} is not valid JSON: ${(err as Error).message}`);
    }
    if (!fileValues || typeof fileValues !== 'object' || Array.isArray(fileValues)) {
      throw new ConfigError(`config file ${options.file} must hold a JSON object of settings`);
    }
    const known = new Set<string>(SETTINGS.map((s) => s.key));
    for (const key of Object.keys(fileValues)) {
      if (!known.has(key)) {
        throw new ConfigError(`config file ${options.file} has an unknown setting "${key}"; known settings: ${[...known].join(', ')}`);
      }
    }
  }
  const env = options.env ?? {};
  const result: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const override = options.overrides?.[setting.key];
    const fromEnv = env[envName(setting.key)];
    let value: unknown;
    if (override !== undefined) value = parseValue(setting, override, 'env');
    else if (fromEnv !== undefined && fromEnv !== '') value = parseValue(setting, fromEnv, 'env');
    else if (setting.key in fileValues) value = parseValue(setting, fileValues[setting.key], 'file');
    else value = typeof setting.fallback === 'function' ? setting.fallback(result) : setting.fallback;
    // Relative folders are fixed against the start folder once, so later defaults agree.
    result[setting.key] = setting.key === 'dataDir' ? resolve(String(value)) : value;
  }
  const config = result as unknown as SeckillConfig;
  checkCombination(config);
  return deepFreeze(config);
}

/** Rules that involve more than one setting. */
function checkCombination(config: SeckillConfig): void {
  if (!/^(sqlite:|mysql:\/\/|mariadb:\/\/|postgres:\/\/|postgresql:\/\/)/.test(config.databaseUrl)) {
    throw new ConfigError(
      `invalid configuration SECKILL_DATABASE_URL=${JSON.stringify(redactUrl(config.databaseUrl))}: it must start with sqlite:, mysql://, mariadb://, postgres:// or postgresql://`,
    );
  }
  if (config.redisUrl && !/^rediss?:\/\//.test(config.redisUrl)) {
    throw new ConfigError(
      `invalid configuration SECKILL_REDIS_URL=${JSON.stringify(redactUrl(config.redisUrl))}: it must start with redis:// or rediss:// (or be empty for the in-process stock store)`,
    );
  }
  if (!config.redisUrl) {
    if (config.workers > 1) {
      throw new ConfigError(
        `invalid configuration SECKILL_WORKERS=${config.workers}: the in-process stock store lives in one process; set SECKILL_REDIS_URL to run several workers`,
      );
    }
    if (config.roles.length !== 2) {
      throw new ConfigError(
        `invalid configuration SECKILL_ROLES=${config.roles.join(',')}: the in-process stock store needs the api and writer roles in the same process; set SECKILL_REDIS_URL to split roles`,
      );
    }
    if (config.durability === 'replica') {
      throw new ConfigError('invalid configuration SECKILL_DURABILITY=replica: it needs Redis replicas; set SECKILL_REDIS_URL');
    }
  }
}

/** Hides the password of a connection URL, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}
