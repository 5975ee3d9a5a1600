import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import {
  CONFIG_FILE_NAME,
  checkDatasourceUrl,
  checkWebhookUrl,
  defaults,
  environmentOptions,
  mergeOptions,
  readConfigFile,
  redactUrl,
  resolveConfig,
} from '../../src/config.js';
import type { QueryBatchOptions } from '../../src/interfaces.js';
import { expectError } from './thrown.js';

const URL_MAIN = 'mysql://app:secret@127.0.0.1:3306/test';
const URL_OTHER = 'mariadb://reader@db.example:3307/reports';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'querybatch-unit-config-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('defaults', () => {
  it('holds every documented default', () => {
    expect(defaults()).toEqual({
      datasource: { retry: { maxAttempts: 5, backoffMs: 100 } },
      maxConnectionAttempts: 3,
      durability: 'fsync',
      dropInSettleMs: 1000,
      tmpMaxAgeMs: 3600000,
      limits: { maxSqlBytes: null, maxParamsBytes: 16777216, maxFileBytes: 33554432, maxScriptBytes: 268435456 },
      logs: { maxSize: 10485760, maxFiles: 5, logParams: false },
      schedule: { cron: '*/5 * * * *', timezone: null, startDelayMs: 10000, watch: true, runOnDrop: false, dropDebounceMs: 200, continuous: false, keepLockMs: 1000, stopTimeoutMs: 30000 },
      timeoutMs: 300000,
      retentionMs: 86400000,
      keyRetentionMs: 86400000,
      webhooks: { secret: null, maxAttempts: 5, backoffMs: 1000, timeoutMs: 10000, concurrency: 4, maxQueued: 10000, closeWaitMs: 30000 },
      dashboard: { token: null },
    });
  });
});

describe('resolveConfig with configFile: false', () => {
  it('fills in every default', () => {
    expect(resolveConfig({ configFile: false })).toEqual({
      home: process.cwd(),
      datasources: {},
      defaultDatasource: 'main',
      maxConnectionAttempts: 3,
      durability: 'fsync',
      dropInSettleMs: 1000,
      tmpMaxAgeMs: 3600000,
      limits: { maxSqlBytes: null, maxParamsBytes: 16777216, maxFileBytes: 33554432, maxScriptBytes: 268435456 },
      logs: { maxSize: 10485760, maxFiles: 5, logParams: false },
      schedule: { cron: '*/5 * * * *', timezone: null, startDelayMs: 10000, watch: true, runOnDrop: false, dropDebounceMs: 200, continuous: false, keepLockMs: 1000, stopTimeoutMs: 30000 },
      timeoutMs: 300000,
      retentionMs: 86400000,
      keyRetentionMs: 86400000,
      webhooks: { secret: null, maxAttempts: 5, backoffMs: 1000, timeoutMs: 10000, concurrency: 4, maxQueued: 10000, closeWaitMs: 30000 },
      dashboard: { token: null },
    });
  });

  it('resolves home to an absolute path', () => {
    expect(resolveConfig({ configFile: false, home: 'some/relative' }).home).toBe(resolve(process.cwd(), 'some/relative'));
    expect(resolveConfig({ configFile: false, home: '/var/lib/qb/../qb2' }).home).toBe('/var/lib/qb2');
  });

  it('does not read a config file in home', () => {
    const home = tempDir();
    writeFileSync(join(home, CONFIG_FILE_NAME), JSON.stringify({ maxConnectionAttempts: 9, bogus: true }));
    expect(resolveConfig({ home, configFile: false }).maxConnectionAttempts).toBe(3);
  });

  it('takes a datasource given as a URL string as { url }', () => {
    const config = resolveConfig({ configFile: false, datasources: { main: URL_MAIN } });
    expect(config.datasources).toEqual({ main: { url: URL_MAIN, options: {}, webhook: null, init: [], ledger: { table: 'querybatch_ledger', batch: 32, coalesce: true }, retry: { maxAttempts: 5, backoffMs: 100 }, strictOrder: false } });
  });

  it('turns the ledger on by default, off with false, and takes its table name', () => {
    const config = resolveConfig({
      configFile: false,
      datasources: { a: URL_MAIN, b: { url: URL_MAIN, ledger: false }, c: { url: URL_MAIN, ledger: { table: 'db1.my_ledger' } }, d: { url: URL_MAIN, ledger: true } },
    });
    expect(config.datasources.a!.ledger).toEqual({ table: 'querybatch_ledger', batch: 32, coalesce: true });
    expect(config.datasources.b!.ledger).toBeNull();
    expect(config.datasources.c!.ledger).toEqual({ table: 'db1.my_ledger', batch: 32, coalesce: true });
    expect(config.datasources.d!.ledger).toEqual({ table: 'querybatch_ledger', batch: 32, coalesce: true });
  });

  it('takes ledger.coalesce: false (single-row INSERTs never merge)', () => {
    const config = resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, ledger: { coalesce: false } } } });
    expect(config.datasources.main!.ledger).toEqual({ table: 'querybatch_ledger', batch: 32, coalesce: false });
  });

  it.each([
    [{ table: 'bad name' }, /ledger.table to be a table name/],
    [{ table: 'a.b.c' }, /ledger.table to be a table name/],
    [{ tabel: 'x' }, /Unknown option "tabel"/],
    [{ batch: 0 }, /ledger.batch. to be a whole number >= 1/],
    [{ coalesce: 'no' }, /ledger.coalesce to be true or false/],
    ['yes', /ledger to be true, false or/],
  ])('rejects ledger %j', (ledger, message) => {
    expect(() => resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, ledger: ledger as never } } })).toThrow(message);
  });

  it('retries transient errors by default, not with retry: false, and takes maxAttempts and backoffMs', () => {
    const config = resolveConfig({
      configFile: false,
      datasources: { a: URL_MAIN, b: { url: URL_MAIN, retry: false }, c: { url: URL_MAIN, retry: { maxAttempts: 2 } }, d: { url: URL_MAIN, retry: { backoffMs: 0 } } },
    });
    expect(config.datasources.a!.retry).toEqual({ maxAttempts: 5, backoffMs: 100 });
    expect(config.datasources.b!.retry).toEqual({ maxAttempts: 1, backoffMs: 0 });
    expect(config.datasources.c!.retry).toEqual({ maxAttempts: 2, backoffMs: 100 });
    expect(config.datasources.d!.retry).toEqual({ maxAttempts: 5, backoffMs: 0 });
  });

  it.each([
    [{ maxAttempts: 0 }, 'Expected `datasources.main.retry.maxAttempts` to be a whole number >= 1; got 0'],
    [{ backoffMs: -1 }, 'Expected `datasources.main.retry.backoffMs` to be a whole number >= 0; got -1'],
    [{ backoffMs: 1.5 }, 'Expected `datasources.main.retry.backoffMs` to be a whole number >= 0; got 1.5'],
    [{ attempts: 3 }, 'Unknown option "attempts" in datasource "main" retry; expected maxAttempts, backoffMs'],
    [3, 'Expected datasource "main" retry to be false or { "maxAttempts": 5, "backoffMs": 100 }; got a number'],
  ])('rejects retry %j', (retry, message) => {
    expect(() => resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, retry: retry as never } } })).toThrow(message);
  });

  it('takes strictOrder (default false) and refuses what is not true or false', () => {
    const config = resolveConfig({ configFile: false, datasources: { a: URL_MAIN, b: { url: URL_MAIN, strictOrder: true }, c: { url: URL_MAIN, strictOrder: false } } });
    expect([config.datasources.a!.strictOrder, config.datasources.b!.strictOrder, config.datasources.c!.strictOrder]).toEqual([false, true, false]);
    expect(() => resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, strictOrder: 'yes' as never } } })).toThrow('Expected datasource "main" strictOrder to be true or false; got "yes"');
    expect(() => resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, strictorder: true } as never } })).toThrow(/Unknown option "strictorder" in datasource "main"; expected .*strictOrder/);
  });

  it('checks tmpMaxAgeMs', () => {
    expect(resolveConfig({ configFile: false, tmpMaxAgeMs: 0 }).tmpMaxAgeMs).toBe(0);
    expect(() => resolveConfig({ configFile: false, tmpMaxAgeMs: -1 })).toThrow(/tmpMaxAgeMs/);
  });

  it('keeps a datasource given as { url, options }', () => {
    const config = resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, options: { connectTimeout: 5000 } } } });
    expect(config.datasources.main).toEqual({ url: URL_MAIN, options: { connectTimeout: 5000 }, webhook: null, init: [], ledger: { table: 'querybatch_ledger', batch: 32, coalesce: true }, retry: { maxAttempts: 5, backoffMs: 100 }, strictOrder: false });
  });

  it('keeps a datasource webhook, checks webhook options, and takes the secret from QUERYBATCH_WEBHOOK_SECRET', () => {
    const config = resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, webhook: 'https://hooks.example/qb' } }, webhooks: { secret: 's', maxAttempts: 2 } });
    expect(config.datasources.main?.webhook).toBe('https://hooks.example/qb');
    expect(config.webhooks).toMatchObject({ secret: 's', maxAttempts: 2, backoffMs: 1000 });
    expect(() => resolveConfig({ configFile: false, webhooks: { maxAttempts: 0 } })).toThrow('Expected `webhooks.maxAttempts` to be a whole number >= 1; got 0');
    expect(() => resolveConfig({ configFile: false, webhooks: { secret: '' } })).toThrow('Expected `webhooks.secret` to be a non-empty string; got a string');
    expect(() => resolveConfig({ configFile: false, webhooks: { retries: 3 } as never })).toThrow('Unknown option "retries" in `webhooks`');
    expect(() => resolveConfig({ configFile: false, retentionMs: -1 })).toThrow('Expected `retentionMs` to be a whole number >= 0; got -1');
    expect(() => resolveConfig({ configFile: false, keyRetentionMs: 1.5 })).toThrow('Expected `keyRetentionMs` to be a whole number >= 0; got 1.5');
    // Longer than retentionMs only when every datasource has the ledger (it remembers keyed jobs).
    const noLedger = { main: { url: URL_MAIN, ledger: false }, other: URL_MAIN };
    expect(() => resolveConfig({ configFile: false, datasources: noLedger, retentionMs: 1000, keyRetentionMs: 1001 })).toThrow('Expected `keyRetentionMs` to be at most `retentionMs` (1000: how long finished jobs are remembered, which is what tells a key\'s job finished) while a datasource has no ledger ("main"); got 1001');
    expect(resolveConfig({ configFile: false, datasources: noLedger, retentionMs: 1000 }).keyRetentionMs).toBe(1000);
    expect(resolveConfig({ configFile: false, datasources: { main: URL_MAIN }, retentionMs: 1000, keyRetentionMs: 5000 }).keyRetentionMs).toBe(5000);
    expect(resolveConfig({ configFile: false, datasources: { main: URL_MAIN }, retentionMs: 1000 }).keyRetentionMs).toBe(86400000);
    expect(resolveConfig({ configFile: false, keyRetentionMs: 5 }).keyRetentionMs).toBe(5);
    expect(() => resolveConfig({ configFile: false, timeoutMs: 1.5 })).toThrow('Expected `timeoutMs` to be a whole number >= 0; got 1.5');
    expect(environmentOptions({ QUERYBATCH_WEBHOOK_SECRET: 'from-env' })).toEqual({ webhooks: { secret: 'from-env' } });
    expect(environmentOptions({ QUERYBATCH_DASHBOARD_TOKEN: 'tok' })).toEqual({ dashboard: { token: 'tok' } });
  });

  it('makes the only datasource the default', () => {
    expect(resolveConfig({ configFile: false, datasources: { reporting: URL_OTHER } }).defaultDatasource).toBe('reporting');
  });

  it('defaults to "main" when there are several datasources', () => {
    const config = resolveConfig({ configFile: false, datasources: { main: URL_MAIN, reporting: URL_OTHER } });
    expect(config.defaultDatasource).toBe('main');
    expect(Object.keys(config.datasources)).toEqual(['main', 'reporting']);
  });

  it('uses the defaultDatasource given', () => {
    const config = resolveConfig({ configFile: false, datasources: { main: URL_MAIN, reporting: URL_OTHER }, defaultDatasource: 'reporting' });
    expect(config.defaultDatasource).toBe('reporting');
  });

  it('rejects an unknown defaultDatasource with UNKNOWN_DATASOURCE, naming the configured ones', () => {
    expectError(
      () => resolveConfig({ configFile: false, datasources: { main: URL_MAIN, reporting: URL_OTHER }, defaultDatasource: 'nope' }),
      'UNKNOWN_DATASOURCE',
      'Expected defaultDatasource to be one of the configured datasources (main, reporting)',
      'got "nope"',
    );
  });

  it('rejects a defaultDatasource when none are configured', () => {
    expectError(() => resolveConfig({ configFile: false, defaultDatasource: 'main' }), 'UNKNOWN_DATASOURCE', '(none)', 'got "main"');
  });

  it.each([
    ['not a URL at all', 'not a url', 'url to look like mysql://user@host:3306/database', 'got "not a url"'],
    ['a bad port', 'mysql://app@host:notaport/db', 'url to look like', 'got "mysql://app@host:notaport/db"'],
    ['http://', 'http://app@host:3306/db', 'url to start with mysql://, mariadb://, postgres://, postgresql:// or sqlite:', 'got http://'],
    ['https://', 'https://host/db', 'url to start with mysql://, mariadb://, postgres://, postgresql:// or sqlite:', 'got https://'],
    ['postgres:// with an unknown option', 'postgres://host/db?bogus=1', 'url query parameters to be pg connection options', 'got "bogus"'],
    ['no host', 'mysql:///db', 'url to name a host', 'got "mysql:///db"'],
    ['an empty string', '', 'to have a url like mysql://user@host:3306/database', 'got a string'],
  ])('rejects a datasource URL that is %s with INVALID_DATASOURCE_URL', (_label, url, expected, got) => {
    const error = expectError(
      () => resolveConfig({ configFile: false, datasources: { main: url } }),
      'INVALID_DATASOURCE_URL',
      'datasource "main"',
      expected,
    );
    expect(error.message).toContain(got);
    expect(error.isUsageError).toBe(true);
  });

  it('rejects a { url } that is not a string', () => {
    expectError(
      () => resolveConfig({ configFile: false, datasources: { main: { url: 42 } as unknown as { url: string } } }),
      'INVALID_DATASOURCE_URL',
      'datasource "main" to have a url',
      'got a number',
    );
  });

  it('does not show the password of a URL it rejects', () => {
    const error = expectError(
      () => resolveConfig({ configFile: false, datasources: { main: 'mysql://app:hunter2@host:notaport/db' } }),
      'INVALID_DATASOURCE_URL',
      'mysql://app:***@host:notaport/db',
    );
    expect(error.message).not.toContain('hunter2');
  });

  it.each(['bad name', '-main', 'a/b', '', 'x'.repeat(65), 'é'])('rejects the datasource name %j with CONFIG_INVALID', (name) => {
    expectError(
      () => resolveConfig({ configFile: false, datasources: { [name]: URL_MAIN } }),
      'CONFIG_INVALID',
      'Expected datasource names of letters, digits, _ and -',
      `got ${JSON.stringify(name)}`,
    );
  });

  it('rejects a datasource that is neither a string nor an object', () => {
    expectError(
      () => resolveConfig({ configFile: false, datasources: { main: null as unknown as string } }),
      'CONFIG_INVALID',
      'Expected datasource "main" to be a URL string or { "url": ... }',
      'got null',
    );
  });

  it('rejects datasource options that are not an object', () => {
    expectError(
      () => resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, options: [] as unknown as Record<string, unknown> } } }),
      'CONFIG_INVALID',
      'Expected datasource "main" options to be an object of mysql2 pool options',
      'got an array',
    );
  });

  it.each([
    [0, 'got 0'],
    [1.5, 'got 1.5'],
    [-1, 'got -1'],
    ['3', 'got "3"'],
    [Number.NaN, 'got NaN'],
    [Number.POSITIVE_INFINITY, 'got Infinity'],
  ])('rejects maxConnectionAttempts %s, naming the option and the value', (value, got) => {
    expectError(
      () => resolveConfig({ configFile: false, maxConnectionAttempts: value as number }),
      'CONFIG_INVALID',
      'Expected `maxConnectionAttempts` to be a whole number >= 1',
      got,
    );
  });

  it('accepts maxConnectionAttempts 1', () => {
    expect(resolveConfig({ configFile: false, maxConnectionAttempts: 1 }).maxConnectionAttempts).toBe(1);
  });

  it.each([
    [{ dropInSettleMs: -1 }, '`dropInSettleMs` to be a whole number >= 0; got -1'],
    [{ limits: { maxSqlBytes: 0 } }, '`limits.maxSqlBytes` to be a whole number >= 1; got 0'],
    [{ limits: { maxParamsBytes: 1 } }, '`limits.maxParamsBytes` to be a whole number >= 2; got 1'],
    [{ limits: { maxFileBytes: 63 } }, '`limits.maxFileBytes` to be a whole number >= 64; got 63'],
    [{ limits: { maxScriptBytes: 0 } }, '`limits.maxScriptBytes` to be a whole number >= 1; got 0'],
    [{ logs: { maxSize: 1023 } }, '`logs.maxSize` to be a whole number >= 1024; got 1023'],
    [{ logs: { maxFiles: 0.5 } }, '`logs.maxFiles` to be a whole number >= 1; got 0.5'],
  ] as Array<[QueryBatchOptions, string]>)('rejects %j', (options, fragment) => {
    expectError(() => resolveConfig({ configFile: false, ...options }), 'CONFIG_INVALID', fragment);
  });

  it('rejects a durability other than fsync or none', () => {
    expectError(
      () => resolveConfig({ configFile: false, durability: 'sometimes' as 'fsync' }),
      'CONFIG_INVALID',
      'Expected `durability` to be "fsync" or "none"; got "sometimes"',
    );
  });

  it('keeps given limits and logs and defaults the rest', () => {
    const config = resolveConfig({ configFile: false, durability: 'none', dropInSettleMs: 0, limits: { maxSqlBytes: 10 }, logs: { logParams: true } });
    expect(config.durability).toBe('none');
    expect(config.dropInSettleMs).toBe(0);
    expect(config.limits).toEqual({ maxSqlBytes: 10, maxParamsBytes: 16777216, maxFileBytes: 33554432, maxScriptBytes: 268435456 });
    expect(config.logs).toEqual({ maxSize: 10485760, maxFiles: 5, logParams: true });
  });
});

describe('resolveConfig with a config file', () => {
  it('reads <home>/querybatch.config.json and lets given options win over it', () => {
    const home = tempDir();
    writeFileSync(join(home, CONFIG_FILE_NAME), JSON.stringify({
      datasources: { main: URL_MAIN },
      maxConnectionAttempts: 7,
      limits: { maxSqlBytes: 100, maxFileBytes: 1000 },
    }));
    const config = resolveConfig({ home, datasources: { reporting: URL_OTHER }, limits: { maxSqlBytes: 200 } });
    expect(config.home).toBe(home);
    expect(Object.keys(config.datasources)).toEqual(['main', 'reporting']);
    expect(config.maxConnectionAttempts).toBe(7);
    expect(config.limits).toEqual({ maxSqlBytes: 200, maxParamsBytes: 16777216, maxFileBytes: 1000, maxScriptBytes: 268435456 });
  });

  it('treats a missing <home>/querybatch.config.json as empty', () => {
    const home = tempDir();
    expect(resolveConfig({ home }).maxConnectionAttempts).toBe(3);
  });

  it('reads the file named by configFile and requires it', () => {
    const dir = tempDir();
    const file = join(dir, 'other.json');
    writeFileSync(file, JSON.stringify({ durability: 'none' }));
    expect(resolveConfig({ home: dir, configFile: file }).durability).toBe('none');
    expectError(() => resolveConfig({ home: dir, configFile: join(dir, 'missing.json') }), 'CONFIG_INVALID', 'missing.json', 'ENOENT');
  });
});

describe('readConfigFile', () => {
  it('returns the options in the file', () => {
    const file = join(tempDir(), CONFIG_FILE_NAME);
    writeFileSync(file, JSON.stringify({ home: '/x', datasources: { main: URL_MAIN }, logs: { maxFiles: 2 } }));
    expect(readConfigFile(file)).toEqual({ home: '/x', datasources: { main: URL_MAIN }, logs: { maxFiles: 2 } });
  });

  it('rejects unknown keys, naming the key and the file', () => {
    const file = join(tempDir(), CONFIG_FILE_NAME);
    writeFileSync(file, JSON.stringify({ datasources: {}, maxConnectionAttempt: 3 }));
    expectError(() => readConfigFile(file), 'CONFIG_INVALID', 'Unknown option "maxConnectionAttempt"', file, 'expected one of', 'maxConnectionAttempts');
  });

  it('rejects a file that is not JSON', () => {
    const file = join(tempDir(), CONFIG_FILE_NAME);
    writeFileSync(file, '{ datasources: ');
    expectError(() => readConfigFile(file), 'CONFIG_INVALID', `Expected ${file} to be JSON`);
  });

  it.each([
    ['[]', 'an array'],
    ['null', 'null'],
    ['"x"', 'a string'],
    ['3', 'a number'],
  ])('rejects a file holding %s', (text, found) => {
    const file = join(tempDir(), CONFIG_FILE_NAME);
    writeFileSync(file, text);
    expectError(() => readConfigFile(file), 'CONFIG_INVALID', `Expected ${file} to hold a JSON object; found ${found}`);
  });

  it('returns {} for a missing file unless it is required', () => {
    const file = join(tempDir(), 'nope.json');
    expect(readConfigFile(file)).toEqual({});
    expectError(() => readConfigFile(file, true), 'CONFIG_INVALID', `Expected a readable config file at ${file}; found ENOENT`);
  });

  it('returns {} when home is a file (ENOTDIR) unless required', () => {
    const dir = tempDir();
    const notADir = join(dir, 'plain');
    writeFileSync(notADir, 'x');
    expect(readConfigFile(join(notADir, CONFIG_FILE_NAME))).toEqual({});
    expectError(() => readConfigFile(join(notADir, CONFIG_FILE_NAME), true), 'CONFIG_INVALID', 'found ENOTDIR');
  });

  it('rejects a path that is a directory', () => {
    const dir = tempDir();
    expectError(() => readConfigFile(dir), 'CONFIG_INVALID', `Expected a readable config file at ${dir}; found EISDIR`);
  });
});

describe('environmentOptions', () => {
  it('reads QUERYBATCH_HOME and QUERYBATCH_DATASOURCE_<NAME>, lower-casing unknown names', () => {
    expect(environmentOptions({ QUERYBATCH_HOME: '/srv/qb', QUERYBATCH_DATASOURCE_MAIN: URL_MAIN, PATH: '/bin' })).toEqual({
      home: '/srv/qb',
      datasources: { main: URL_MAIN },
    });
  });

  it('matches NAME to a known datasource case-insensitively', () => {
    expect(environmentOptions({ QUERYBATCH_DATASOURCE_MAIN: URL_MAIN }, ['Main'])).toEqual({ datasources: { Main: URL_MAIN } });
    expect(environmentOptions({ QUERYBATCH_DATASOURCE_REPORTING_DB: URL_OTHER }, ['main', 'reporting_db'])).toEqual({
      datasources: { reporting_db: URL_OTHER },
    });
    expect(environmentOptions({ QUERYBATCH_DATASOURCE_main: URL_MAIN }, ['MAIN'])).toEqual({ datasources: { MAIN: URL_MAIN } });
  });

  it('matches the prefix case-insensitively too', () => {
    expect(environmentOptions({ querybatch_datasource_Other: URL_OTHER })).toEqual({ datasources: { other: URL_OTHER } });
  });

  it('skips empty values and unrelated variables', () => {
    expect(environmentOptions({ QUERYBATCH_HOME: '', QUERYBATCH_DATASOURCE_MAIN: '', QUERYBATCH_DATASOURCE_: URL_MAIN, HOME: '/root' })).toEqual({});
    expect(environmentOptions({})).toEqual({});
  });

  it('reads several datasources', () => {
    expect(environmentOptions({ QUERYBATCH_DATASOURCE_A: URL_MAIN, QUERYBATCH_DATASOURCE_B: URL_OTHER })).toEqual({
      datasources: { a: URL_MAIN, b: URL_OTHER },
    });
  });
});

describe('mergeOptions', () => {
  it('lets later layers win', () => {
    const merged = mergeOptions({ home: '/a', maxConnectionAttempts: 1, durability: 'none' }, { home: '/b' }, { maxConnectionAttempts: 5 });
    expect(merged.home).toBe('/b');
    expect(merged.maxConnectionAttempts).toBe(5);
    expect(merged.durability).toBe('none');
  });

  it('merges datasources, limits and logs by key', () => {
    const merged = mergeOptions(
      { datasources: { main: URL_MAIN, reporting: URL_OTHER }, limits: { maxSqlBytes: 1, maxFileBytes: 100 }, logs: { maxFiles: 2 } },
      { datasources: { main: URL_OTHER }, limits: { maxSqlBytes: 5 }, logs: { logParams: true } },
    );
    expect(merged.datasources).toEqual({ main: URL_OTHER, reporting: URL_OTHER });
    expect(merged.limits).toEqual({ maxSqlBytes: 5, maxFileBytes: 100 });
    expect(merged.logs).toEqual({ maxFiles: 2, logParams: true });
  });

  it('gives the CLI order file < environment < flags', () => {
    const file: QueryBatchOptions = { home: '/file', datasources: { main: 'mysql://file@h/db' }, maxConnectionAttempts: 2 };
    const env = environmentOptions({ QUERYBATCH_HOME: '/env', QUERYBATCH_DATASOURCE_MAIN: 'mysql://env@h/db' }, ['main']);
    const flags: QueryBatchOptions = { home: '/flags' };
    const merged = mergeOptions(file, env, flags);
    expect(merged.home).toBe('/flags');
    expect(merged.datasources).toEqual({ main: 'mysql://env@h/db' });
    expect(merged.maxConnectionAttempts).toBe(2);
    expect(mergeOptions(flags, env, file).home).toBe('/file');
  });

  it('returns empty maps for no layers', () => {
    expect(mergeOptions()).toEqual({});
    expect(mergeOptions({})).toEqual({ datasources: {}, limits: {}, logs: {}, schedule: {}, webhooks: {}, dashboard: {} });
  });

  it('does not change its inputs', () => {
    const a: QueryBatchOptions = { datasources: { main: URL_MAIN } };
    const b: QueryBatchOptions = { datasources: { other: URL_OTHER } };
    mergeOptions(a, b);
    expect(a).toEqual({ datasources: { main: URL_MAIN } });
    expect(b).toEqual({ datasources: { other: URL_OTHER } });
  });
});

describe('redactUrl', () => {
  it('hides the password', () => {
    expect(redactUrl('mysql://app:secret@127.0.0.1:3306/test')).toBe('mysql://app:***@127.0.0.1:3306/test');
    expect(redactUrl('mariadb://u:p4ss@db/x?ssl=true')).toBe('mariadb://u:***@db/x?ssl=true');
    expect(redactUrl('MYSQL://u:p@db/x')).toBe('MYSQL://u:***@db/x');
  });

  it('hides a password holding : or percent-escapes', () => {
    expect(redactUrl('mysql://u:pa:ss@db/x')).toBe('mysql://u:***@db/x');
    expect(redactUrl('mysql://u:p%40ss%2F@db/x')).toBe('mysql://u:***@db/x');
  });

  it('hides an empty password and a password with no user', () => {
    expect(redactUrl('mysql://u:@db/x')).toBe('mysql://u:***@db/x');
    expect(redactUrl('mysql://:secret@db/x')).toBe('mysql://:***@db/x');
  });

  it('hides all of a password holding a raw @, which the URL parser accepts', () => {
    const url = 'mysql://app:p@ss@db.example/x';
    // WHATWG URL (and so mysql2) reads the password as "p@ss" and the host as db.example.
    expect(new URL(url).password).toBe('p%40ss');
    expect(new URL(url).hostname).toBe('db.example');
    expect(redactUrl(url)).toBe('mysql://app:***@db.example/x');
  });

  it.each([
    ['mysql//u:PW@h', 'mysql//u:***@h'],
    ['mysql:/u:PW@h/db', 'mysql:/u:***@h/db'],
    ['mysql:u:PW@h/db', 'mysql:***@h/db'],
    ['u:PW@h', 'u:***@h'],
    ['mysql://u:P/W@h/db', 'mysql://u:***@h/db'],
    ['mysql://u:P?W@h/db', 'mysql://u:***@h/db'],
    ['mysql:\\\\u:PW@h/db', 'mysql:\\\\u:***@h/db'],
    [' mysql://u:PW@h/db', ' mysql://u:***@h/db'],
    ['mysql://u:PW@h/db?x=a@b', 'mysql://u:***@b'],
  ])('hides the password of the malformed or unusual %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });

  it('leaves URLs without a password alone', () => {
    expect(redactUrl('mysql://root@localhost/test?socketPath=/run/mysqld/mysqld.sock')).toBe('mysql://root@localhost/test?socketPath=/run/mysqld/mysqld.sock');
    expect(redactUrl('mysql://app@db/x')).toBe('mysql://app@db/x');
    expect(redactUrl('mysql://db:3306/x')).toBe('mysql://db:3306/x');
    expect(redactUrl('not a url')).toBe('not a url');
  });
});

describe('no message shows a datasource or webhook password', () => {
  const SECRET = 'Hunter2secret';
  it.each([
    `mysql//u:${SECRET}@h`,
    `mysql:/u:${SECRET}@h/db`,
    `mysql:u:${SECRET}@h/db`,
    `mysql://u:${SECRET}@/db`,
    `mysql://u:${SECRET}@h:port/db`,
    `mysql://u:${SECRET}/x@h/db`,
    `mysql://u:${SECRET}?x@h/db`,
    `postgres://u:${SECRET}@h/db?bogus=1`,
    `u:${SECRET}@h`,
    `mysql://u:${SECRET}@/db?x=a@b`,
  ])('%s', (url) => {
    for (const check of [
      () => resolveConfig({ configFile: false, datasources: { main: url } }),
      () => resolveConfig({ configFile: false, datasources: { main: { url } } }),
      () => checkDatasourceUrl('main', url),
      () => checkWebhookUrl(url, 'options.webhook'),
      () => resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, webhook: url } } }),
    ]) {
      const error = (() => {
        try {
          check();
          return null;
        } catch (thrown) {
          return thrown as Error;
        }
      })();
      expect(error, url).not.toBeNull();
      expect(error!.message).not.toContain(SECRET);
      expect(inspect(error)).not.toContain(SECRET); // its stack and cause too
    }
  });
});

describe('checkDatasourceUrl', () => {
  it('returns the URL with the password hidden', () => {
    expect(checkDatasourceUrl('main', URL_MAIN)).toBe('mysql://app:***@127.0.0.1:3306/test');
    expect(checkDatasourceUrl('r', URL_OTHER)).toBe(URL_OTHER);
  });

  it('accepts a unix-socket style URL with query parameters', () => {
    expect(checkDatasourceUrl('main', 'mysql://root@localhost/test?socketPath=/run/mysqld/mysqld.sock')).toContain('socketPath');
  });
});

describe('names that collide with JavaScript object internals', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'prototype'])('rejects a datasource named %s', (name) => {
    const datasources = JSON.parse(`{${JSON.stringify(name)}: "mysql://root@127.0.0.1:3306/test"}`) as Record<string, string>;
    expectError(() => resolveConfig({ configFile: false, datasources }), 'CONFIG_INVALID', 'not a JavaScript object property');
  });

  it('does not take inherited properties for configured datasources', () => {
    expectError(() => resolveConfig({ configFile: false, datasources: { main: URL_MAIN }, defaultDatasource: 'constructor' }), 'UNKNOWN_DATASOURCE');
  });
});

describe('typos in option groups are errors, not silent defaults', () => {
  it('an unknown key in a datasource', () => {
    expectError(() => resolveConfig({ configFile: false, datasources: { main: { url: URL_MAIN, user: 'x' } as never } }), 'CONFIG_INVALID', 'Unknown option "user" in datasource "main"; expected url, options');
  });

  it('an unknown key in limits or logs', () => {
    expectError(() => resolveConfig({ configFile: false, limits: { maxFileByte: 10 } as never }), 'CONFIG_INVALID', 'Unknown option "maxFileByte" in `limits`');
    expectError(() => resolveConfig({ configFile: false, logs: { maxsize: 10 } as never }), 'CONFIG_INVALID', 'Unknown option "maxsize" in `logs`; expected maxSize, maxFiles, logParams');
  });

  it('logs.logParams that is not a boolean', () => {
    expectError(() => resolveConfig({ configFile: false, logs: { logParams: 'yes' } as never }), 'CONFIG_INVALID', 'Expected `logs.logParams` to be true or false; got "yes"');
  });
});
