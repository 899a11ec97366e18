import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseRedisUrl } from '../ha/redis-url.js';

/**
 * Which jobs one process runs: the HTTP API, the order writer (queue → database, expiry),
 * and ops (scheduled backups, verification, pruning, drills, alerts).
 */
export type Role = 'api' | 'writer' | 'ops';

/** Where backups go: a name, and `file:///path` (or a plain path) or `s3://key:secret@bucket/prefix?endpoint=…&region=…`. */
export interface BackupTargetSetting {
  readonly name: string;
  readonly url: string;
}

/** A set of program or configuration files to back up, as globs relative to `root`. */
export interface FileSetSetting {
  readonly name: string;
  readonly root: string;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

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
  /**
   * Replicas of the database for reads that may be a little stale (order status, a sale's
   * first load); empty = every read goes to `databaseUrl`.
   */
  readonly databaseReplicaUrls: readonly string[];
  /** Most replication lag a replica may have and still serve those reads; beyond it the primary answers. */
  readonly databaseReplicaMaxLagMs: number;
  /** Empty: the in-process stock store. `redis://…`: Redis. `redis-sentinel://…`: the primary Redis Sentinel names. `redis-cluster://…`: a Redis Cluster. */
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
  /** Batch the Redis commands of one event-loop tick into one socket write (fewer system calls under load). */
  readonly redisAutoPipelining: boolean;
  /** Most orders the writer takes from the queue in one batch. */
  readonly writerBatchSize: number;
  /** How long an entry may sit unacknowledged at a writer before another writer takes it over. */
  readonly writerClaimIdleMs: number;
  /**
   * With Redis stock and both api and writer roles, run the order writer (and the payment
   * window and repair sweeps) in a worker thread, so batch writes never hold up the
   * purchase path's event loop. Off by default: on the 2-core machine the benchmark runs
   * on, the thread cost more CPU per purchase than it freed (see docs/benchmarks.md); it
   * pays where the process has a core to itself beside the load.
   */
  readonly writerThread: boolean;
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
  /**
   * On SIGTERM, how long a node answers `/health/ready` 503 while still serving before it
   * closes its listener: long enough for the balancer's health check to take it out of
   * rotation first (HAProxy `inter × fall`), so a rolling restart loses no request.
   * 0 for a single process with nothing in front of it.
   */
  readonly drainMs: number;
  readonly roles: readonly Role[];

  /** Backup targets, in order; `backup run` writes to all of them unless told one. */
  readonly backupTargets: readonly BackupTargetSetting[];
  /** File with the 32-byte backup encryption key (hex or base64); generated into dataDir when empty and no key is given. */
  readonly backupKeyFile: string;
  /** The backup encryption key itself (hex or base64 of 32 bytes); wins over the file. */
  readonly backupKey: string;
  readonly backupCompression: 'zstd' | 'gzip';
  /** MariaDB/MySQL: `logical` (mariadb-dump --single-transaction) or `physical` (mariabackup). */
  readonly backupMysqlMethod: 'logical' | 'physical';
  readonly backupFileSets: readonly FileSetSetting[];
  readonly backupKeepLast: number;
  readonly backupKeepHourly: number;
  readonly backupKeepDaily: number;
  readonly backupKeepWeekly: number;
  readonly backupKeepMonthly: number;
  /** Cron expressions (croner syntax) run by the ops role; empty = never. */
  readonly backupSchedule: string;
  readonly verifySchedule: string;
  readonly pruneSchedule: string;
  readonly drillSchedule: string;
  /** POSTed a JSON alert when a job fails or a backup policy is breached; empty = metrics and log only. */
  readonly alertWebhookUrl: string;
  /** Alert when the newest complete backup is older than this. */
  readonly backupMaxAgeMinutes: number;
  /** Alert when no drill has passed within this many hours. */
  readonly drillMaxAgeHours: number;
  /** Alert when a backup's database artifact is smaller than this fraction of the previous one. */
  readonly backupShrinkAlertRatio: number;
  /** Ops role: archive the MariaDB binlog or PostgreSQL WAL continuously, for `restore --until`. */
  readonly pitrArchive: boolean;
  /** Backup target that holds the binlog/WAL archive and PostgreSQL base backups; empty = the first target. */
  readonly pitrTarget: string;
  /** How often the growing binlog/WAL file is copied to the target: the recovery point's lag. */
  readonly pitrSyncIntervalMs: number;

  /**
   * MariaDB servers `seckill db promote|status` manage, as `name=url` pairs separated by
   * commas (`db1=mysql://root:…@10.0.0.11:3306/,db2=…`): the name is the server's name in
   * HAProxy's writer backend, the URL an account with SUPER/REPLICATION privileges.
   */
  readonly mariadbServers: string;
  /** HAProxy runtime API of the database balancer: a Unix socket path, or `host:port`. */
  readonly mariadbHaproxySocket: string;
  /** The HAProxy backend that sends writes to the current primary. */
  readonly mariadbHaproxyBackend: string;
  /** How long a promotion waits for the chosen replica to apply what it received before giving up. */
  readonly mariadbCatchUpTimeoutMs: number;
  /**
   * Ops role: promote a replica by itself (the `seckill db promote` procedure) when the
   * primary has not answered for `mariadbFailoverAfterMs` and a replica lost it too.
   */
  readonly mariadbAutoFailover: boolean;
  readonly mariadbFailoverAfterMs: number;
}

type Kind =
  | { readonly type: 'string'; readonly allowEmpty?: boolean }
  | { readonly type: 'integer'; readonly min: number; readonly max: number }
  | { readonly type: 'boolean' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | { readonly type: 'list'; readonly values: readonly string[] }
  | { readonly type: 'urls' }
  | { readonly type: 'number'; readonly min: number; readonly max: number }
  | { readonly type: 'targets' }
  | { readonly type: 'fileSets' };

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
  { key: 'databaseReplicaUrls', kind: { type: 'urls' }, fallback: [] },
  { key: 'databaseReplicaMaxLagMs', kind: { type: 'integer', min: 0, max: 3_600_000 }, fallback: 1000 },
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
  { key: 'redisAutoPipelining', kind: { type: 'boolean' }, fallback: true },
  { key: 'writerBatchSize', kind: { type: 'integer', min: 1, max: 10_000 }, fallback: 1000 },
  { key: 'writerClaimIdleMs', kind: { type: 'integer', min: 100, max: 3_600_000 }, fallback: 10_000 },
  { key: 'writerThread', kind: { type: 'boolean' }, fallback: false },
  { key: 'expiryIntervalMs', kind: { type: 'integer', min: 10, max: 3_600_000 }, fallback: 1000 },
  { key: 'reconcileIntervalMs', kind: { type: 'integer', min: 0, max: 3_600_000 }, fallback: 5000 },
  { key: 'defaultPaymentWindowSeconds', kind: { type: 'integer', min: 1, max: 30 * 86_400 }, fallback: 900 },
  { key: 'bodyLimitBytes', kind: { type: 'integer', min: 1024, max: 10 * 1024 * 1024 }, fallback: 16_384 },
  { key: 'logLevel', kind: { type: 'enum', values: LOG_LEVELS }, fallback: 'info' },
  { key: 'workers', kind: { type: 'integer', min: 1, max: 256 }, fallback: 1 },
  { key: 'drainMs', kind: { type: 'integer', min: 0, max: 600_000 }, fallback: 0 },
  { key: 'roles', kind: { type: 'list', values: ['api', 'writer', 'ops'] }, fallback: ['api', 'writer'] },
  {
    key: 'backupTargets',
    kind: { type: 'targets' },
    fallback: (partial: Record<string, unknown>) => [{ name: 'local', url: join(String(partial.dataDir), 'backups') }],
  },
  { key: 'backupKeyFile', kind: { type: 'string', allowEmpty: true }, fallback: '' },
  { key: 'backupKey', kind: { type: 'string', allowEmpty: true }, fallback: '' },
  { key: 'backupCompression', kind: { type: 'enum', values: ['zstd', 'gzip'] }, fallback: 'zstd' },
  { key: 'backupMysqlMethod', kind: { type: 'enum', values: ['logical', 'physical'] }, fallback: 'logical' },
  {
    key: 'backupFileSets',
    kind: { type: 'fileSets' },
    fallback: [
      {
        name: 'app',
        root: '.',
        include: ['package.json', 'package-lock.json', 'dist/**', 'deploy/**', '*.config.json', 'seckill.json', 'data/secrets.json'],
        exclude: ['node_modules/**', 'data/backups/**'],
      },
    ],
  },
  { key: 'backupKeepLast', kind: { type: 'integer', min: 0, max: 10_000 }, fallback: 7 },
  { key: 'backupKeepHourly', kind: { type: 'integer', min: 0, max: 10_000 }, fallback: 24 },
  { key: 'backupKeepDaily', kind: { type: 'integer', min: 0, max: 10_000 }, fallback: 7 },
  { key: 'backupKeepWeekly', kind: { type: 'integer', min: 0, max: 10_000 }, fallback: 4 },
  { key: 'backupKeepMonthly', kind: { type: 'integer', min: 0, max: 10_000 }, fallback: 12 },
  { key: 'backupSchedule', kind: { type: 'string', allowEmpty: true }, fallback: '5 * * * *' },
  { key: 'verifySchedule', kind: { type: 'string', allowEmpty: true }, fallback: '40 2 * * *' },
  { key: 'pruneSchedule', kind: { type: 'string', allowEmpty: true }, fallback: '50 2 * * *' },
  { key: 'drillSchedule', kind: { type: 'string', allowEmpty: true }, fallback: '15 3 * * *' },
  { key: 'alertWebhookUrl', kind: { type: 'string', allowEmpty: true }, fallback: '' },
  { key: 'backupMaxAgeMinutes', kind: { type: 'integer', min: 1, max: 525_600 }, fallback: 120 },
  { key: 'drillMaxAgeHours', kind: { type: 'integer', min: 1, max: 8760 }, fallback: 48 },
  { key: 'backupShrinkAlertRatio', kind: { type: 'number', min: 0, max: 1 }, fallback: 0.5 },
  { key: 'pitrArchive', kind: { type: 'boolean' }, fallback: false },
  { key: 'pitrTarget', kind: { type: 'string', allowEmpty: true }, fallback: '' },
  { key: 'pitrSyncIntervalMs', kind: { type: 'integer', min: 100, max: 3_600_000 }, fallback: 5000 },
  { key: 'mariadbServers', kind: { type: 'string', allowEmpty: true }, fallback: '' },
  { key: 'mariadbHaproxySocket', kind: { type: 'string', allowEmpty: true }, fallback: '' },
  { key: 'mariadbHaproxyBackend', kind: { type: 'string' }, fallback: 'writer' },
  { key: 'mariadbCatchUpTimeoutMs', kind: { type: 'integer', min: 100, max: 3_600_000 }, fallback: 60_000 },
  { key: 'mariadbAutoFailover', kind: { type: 'boolean' }, fallback: false },
  { key: 'mariadbFailoverAfterMs', kind: { type: 'integer', min: 500, max: 3_600_000 }, fallback: 5000 },
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
    case 'urls':
      return 'a comma-separated list of database URLs (mysql://…, mariadb://…, postgres://…), or empty';
    case 'number':
      return `a number from ${kind.min} to ${kind.max}`;
    case 'targets':
      return 'a comma-separated list of name=url (url: a folder path, file:///path or s3://bucket/prefix?endpoint=…), with distinct names';
    case 'fileSets':
      return 'a JSON array of { "name", "root", "include": [globs], "exclude": [globs] } with distinct names';
  }
}

/** `local=/var/backups,offsite=s3://…` (env) or `[{ name, url }]` (file) → targets. */
function parseTargets(value: unknown): BackupTargetSetting[] | null {
  const items = typeof value === 'string'
    ? value.split(',').map((part) => part.trim()).filter(Boolean).map((part) => {
        const eq = part.indexOf('=');
        return eq > 0 ? { name: part.slice(0, eq).trim(), url: part.slice(eq + 1).trim() } : null;
      })
    : Array.isArray(value) ? value : null;
  if (!items || items.length === 0) return null;
  const targets: BackupTargetSetting[] = [];
  for (const item of items) {
    if (!item || typeof item !== 'object') return null;
    const { name, url } = item as Record<string, unknown>;
    if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,31}$/i.test(name) || typeof url !== 'string' || url === '') return null;
    if (targets.some((t) => t.name === name)) return null;
    targets.push({ name, url });
  }
  return targets;
}

/** A JSON array (text in env, array in the file) → file sets. */
function parseFileSets(value: unknown): FileSetSetting[] | null {
  let items = value;
  if (typeof value === 'string') {
    try {
      items = JSON.parse(value);
    } catch {
      return null;
    }
  }
  if (!Array.isArray(items)) return null;
  const sets: FileSetSetting[] = [];
  const globs = (v: unknown): v is string[] => Array.isArray(v) && v.every((g) => typeof g === 'string' && g !== '');
  for (const item of items) {
    if (!item || typeof item !== 'object') return null;
    const { name, root = '.', include, exclude = [] } = item as Record<string, unknown>;
    if (typeof name !== 'string' || name === '' || typeof root !== 'string' || !globs(include) || include.length === 0 || !globs(exclude)) return null;
    if (sets.some((s) => s.name === name)) return null;
    sets.push({ name, root, include, exclude });
  }
  return sets;
}

function parseValue(setting: Setting, raw: unknown, source: Source): unknown {
  const { kind, key } = setting;
  // A list of URLs may carry passwords: an error names them without.
  const shown = kind.type === 'urls' && typeof raw === 'string' ? raw.split(',').map((u) => redactUrl(u.trim())).join(',') : raw;
  const where = source === 'env' ? `${envName(key)}=${JSON.stringify(shown)}` : `"${key}": ${JSON.stringify(shown)} (config file)`;
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
    case 'urls': {
      const items = Array.isArray(text) ? text : typeof text === 'string' ? text.split(',').map((s) => s.trim()).filter(Boolean) : null;
      if (!items || items.some((i) => typeof i !== 'string' || !/^(mysql|mariadb|postgres|postgresql):\/\/\S+$/i.test(i))) fail();
      return [...new Set(items as string[])];
    }
    case 'number': {
      const n = typeof text === 'number' ? text : typeof text === 'string' && text !== '' ? Number(text) : NaN;
      if (!Number.isFinite(n) || n < kind.min || n > kind.max) fail();
      return n;
    }
    case 'targets':
      return parseTargets(text) ?? fail();
    case 'fileSets':
      return parseFileSets(text) ?? fail();
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
  if (config.redisUrl) {
    try {
      parseRedisUrl(config.redisUrl);
    } catch (error) {
      throw new ConfigError(
        `invalid configuration SECKILL_REDIS_URL=${JSON.stringify(redactUrl(config.redisUrl))}: ${(error as Error).message} (or leave it empty for the in-process stock store)`,
      );
    }
  }
  const family = (url: string): string => (/^(mysql|mariadb):/i.test(url) ? 'mysql' : /^postgres(ql)?:/i.test(url) ? 'postgres' : 'sqlite');
  const strangers = config.databaseReplicaUrls.filter((url) => family(url) !== family(config.databaseUrl));
  if (strangers.length > 0) {
    throw new ConfigError(
      `invalid configuration SECKILL_DATABASE_REPLICA_URLS=${JSON.stringify(strangers.map(redactUrl).join(','))}: replicas must be servers of the same kind as SECKILL_DATABASE_URL (${family(config.databaseUrl)}); SQLite has none`,
    );
  }
  if (config.pitrTarget && !config.backupTargets.some((t) => t.name === config.pitrTarget)) {
    throw new ConfigError(
      `invalid configuration SECKILL_PITR_TARGET=${JSON.stringify(config.pitrTarget)}: no backup target has that name; targets: ${config.backupTargets.map((t) => t.name).join(', ')}`,
    );
  }
  if (!config.redisUrl) {
    if (config.workers > 1) {
      throw new ConfigError(
        `invalid configuration SECKILL_WORKERS=${config.workers}: the in-process stock store lives in one process; set SECKILL_REDIS_URL to run several workers`,
      );
    }
    if (!config.roles.includes('api') || !config.roles.includes('writer')) {
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
