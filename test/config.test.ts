import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, resolveSecrets } from '../src/config/index.js';

describe('configuration', () => {
  it('defaults to SQLite in the data folder and the in-process stock store on 127.0.0.1:8080', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 8080);
    assert.equal(config.redisUrl, '');
    assert.equal(config.databaseUrl, `sqlite:${join(config.dataDir, 'seckill.db')}`);
  });

  it('lets the environment win over the file, and the file over defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seckill-config-'));
    const file = join(dir, 'seckill.json');
    writeFileSync(file, JSON.stringify({ port: 9000, rateLimitPerUser: 7, host: '0.0.0.0' }));
    const config = loadConfig({ file, env: { SECKILL_PORT: '9100', SECKILL_REDIS_URL: 'redis://127.0.0.1:1/0', SECKILL_DATABASE_URL: 'postgres://u@h/db' } });
    assert.equal(config.port, 9100);
    assert.equal(config.rateLimitPerUser, 7);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.redisUrl, 'redis://127.0.0.1:1/0');
    assert.equal(config.databaseUrl, 'postgres://u@h/db');
  });

  it('is frozen', () => {
    const config = loadConfig({ env: {} });
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
    assert.ok(Object.isFrozen(config.roles));
  });

  it('stops on an invalid value with a message naming the key, the value and what is allowed', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ SECKILL_PORT: 'eighty' }, /SECKILL_PORT="eighty".*port must be an integer from 0 to 65535/],
      [{ SECKILL_PORT: '70000' }, /SECKILL_PORT="70000"/],
      [{ SECKILL_DURABILITY: 'always', SECKILL_REDIS_URL: 'redis://x' }, /SECKILL_DURABILITY="always".*one of leader, replica/],
      [{ SECKILL_DATABASE_URL: 'oracle://x' }, /SECKILL_DATABASE_URL="oracle:\/\/x".*sqlite:, mysql:\/\//],
      [{ SECKILL_REDIS_URL: 'http://x' }, /SECKILL_REDIS_URL/],
      [{ SECKILL_TRUST_PROXY: 'maybe' }, /SECKILL_TRUST_PROXY="maybe".*true or false/],
      [{ SECKILL_ROLES: 'api,cook' }, /SECKILL_ROLES.*api, writer/],
      [{ SECKILL_WORKERS: '4' }, /SECKILL_WORKERS=4.*SECKILL_REDIS_URL/],
      // A replica list names its URLs without their passwords.
      [{ SECKILL_DATABASE_URL: 'mysql://db/s', SECKILL_DATABASE_REPLICA_URLS: 'mysql://u:hunter2@r1/s,ftp://r2' }, /SECKILL_DATABASE_REPLICA_URLS="mysql:\/\/u:\*\*\*@r1\/s,ftp:\/\/r2".*comma-separated list of database URLs/],
      [{ SECKILL_DATABASE_REPLICA_URLS: 'mysql://r1/s' }, /SECKILL_DATABASE_REPLICA_URLS="mysql:\/\/r1\/s".*same kind as SECKILL_DATABASE_URL \(sqlite\)/],
      [{ SECKILL_DATABASE_URL: 'postgres://db/s', SECKILL_DATABASE_REPLICA_URLS: 'mysql://r1/s' }, /replicas must be servers of the same kind/],
    ];
    for (const [env, message] of cases) {
      assert.throws(() => loadConfig({ env }), (err: Error) => err instanceof ConfigError && message.test(err.message), JSON.stringify(env));
    }
  });

  it('refuses an unknown key in the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seckill-config-'));
    const file = join(dir, 'seckill.json');
    writeFileSync(file, JSON.stringify({ prot: 9000 }));
    assert.throws(() => loadConfig({ file, env: {} }), /unknown setting "prot"/);
  });

  it('generates secrets once into a 0600 file and keeps them across restarts', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'seckill-secrets-'));
    const first = resolveSecrets(loadConfig({ env: { SECKILL_DATA_DIR: dataDir } }));
    assert.equal(first.generated, true);
    assert.ok(first.config.adminToken.length >= 24 && first.config.jwtSecret.length >= 32);
    assert.equal(statSync(join(dataDir, 'secrets.json')).mode & 0o777, 0o600);
    const second = resolveSecrets(loadConfig({ env: { SECKILL_DATA_DIR: dataDir } }));
    assert.equal(second.generated, false);
    assert.equal(second.config.adminToken, first.config.adminToken);
    assert.equal(second.config.jwtSecret, first.config.jwtSecret);
  });

  it('generates nothing when the admin token and JWT secret are configured', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'seckill-secrets-'));
    const result = resolveSecrets(loadConfig({ env: { SECKILL_DATA_DIR: dataDir, SECKILL_ADMIN_TOKEN: 'a'.repeat(30), SECKILL_JWT_SECRET: 'b'.repeat(40) } }));
    assert.equal(result.generated, false);
    assert.equal(result.config.adminToken, 'a'.repeat(30));
    assert.throws(() => statSync(join(dataDir, 'secrets.json')));
  });
});
