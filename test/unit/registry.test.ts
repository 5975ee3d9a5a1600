import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { driverFactoryFor, findDriverFactory, knownSchemes, loadDriverFactory, registerDriver, type DriverFactory } from '../../src/db/registry.js';
import { lockNameFor, mysqlDialect, mysqlDriverFactory } from '../../src/db/mysql/index.js';
import { MysqlDriver } from '../../src/db/mysql/driver.js';
import { LazyDriver } from '../../src/db/lazy-driver.js';
import { postgresDriverFactory } from '../../src/db/postgres/index.js';
import { classifyError } from '../../src/db/mysql/classify.js';
import { runsOnceWithLedger, type Dialect, type Driver } from '../../src/db/driver.js';
import { QueryBatchError } from '../../src/errors.js';
import { resolveConfig } from '../../src/config.js';
import { SpoolWriter } from '../../src/spool/writer.js';
import { ensureLayout, layoutOf } from '../../src/spool/layout.js';
import { DirSyncer } from '../../src/spool/durable.js';
import { expectError } from './thrown.js';

/** A dialect that says what it is told about every statement. */
function fakeDialect(transactional: boolean): Dialect {
  return {
    name: 'fake',
    classifyError: () => 'sql',
    inspect: (sql) => ({ keyword: sql.trim().split(/\s/)[0]!.toUpperCase(), transactional, changesSession: !transactional }),
    lockKey: () => 42n,
    scriptSplitter: () => ({ push: () => [], end: () => [] }),
    scriptRole: () => 'other',
  };
}

/** A factory that makes no driver; check() returns what it was given, marked. */
function fakeFactory(schemes: readonly string[], transactional = true): DriverFactory {
  return {
    schemes,
    dialect: fakeDialect(transactional),
    example: 'fake:memory',
    check(datasource, url, options) {
      if (options !== undefined && typeof options !== 'object') throw new QueryBatchError('CONFIG_INVALID', `Expected datasource "${datasource}" options to be an object of fake options`);
      return { checked: url.href, ...(options as object) };
    },
    create() {
      return { dialect: this.dialect, capabilities: { groupCommit: false, streaming: false } } as unknown as Driver;
    },
  };
}

afterEach(() => {
  // Fakes registered for the built-in schemes give them back.
  registerDriver(mysqlDriverFactory);
});

describe('driverFactoryFor picks a driver by URL scheme', () => {
  it.each(['mysql://app@db:3306/test', 'mariadb://app@db/test', 'MySQL://app@db/test', 'MARIADB://db/x', ' mysql://db/x'])('%s: the MySQL driver', async (url) => {
    expect(await loadDriverFactory(url)).toBe(mysqlDriverFactory);
    expect(await findDriverFactory(url)?.load()).toBe(mysqlDriverFactory);
  });

  it('names the known schemes when none matches', async () => {
    expectError(() => driverFactoryFor('oracle://db/x'), 'INVALID_DATASOURCE_URL', 'Expected a datasource url to start with mysql://, mariadb://, postgres://, postgresql:// or sqlite:; got oracle://');
    expectError(() => driverFactoryFor('http://db/x', 'main'), 'INVALID_DATASOURCE_URL', 'Expected datasource "main" url to start with mysql://, mariadb://, postgres://, postgresql:// or sqlite:; got http://');
    expectError(() => driverFactoryFor('duckdb:file.db'), 'INVALID_DATASOURCE_URL', 'got duckdb:');
    expect(findDriverFactory('oracle://db/x')).toBeUndefined();
    expect(await findDriverFactory('postgresql://db/x')?.load()).toBe(postgresDriverFactory);
  });

  it('shows a URL without a scheme with its password hidden', () => {
    expectError(() => driverFactoryFor('//app:hunter2@db/x'), 'INVALID_DATASOURCE_URL', 'got "//app:***@db/x"');
    expectError(() => driverFactoryFor(''), 'INVALID_DATASOURCE_URL', 'got ""');
    expect(knownSchemes()).toBe('mysql://, mariadb://, postgres://, postgresql:// or sqlite:');
  });
});

describe('registerDriver', () => {
  it('adds a driver for its schemes; config checks its URLs and options with it', async () => {
    const fake = fakeFactory(['fake:']);
    registerDriver(fake);
    expect(await loadDriverFactory('fake:memory')).toBe(fake);
    expect(knownSchemes()).toBe('mysql://, mariadb://, postgres://, postgresql://, sqlite: or fake:');
    const config = resolveConfig({ configFile: false, datasources: { main: { url: 'fake:memory', options: { size: 1 } } } });
    expect(config.datasources.main!.options).toEqual({ checked: 'fake:memory', size: 1 });
    expectError(
      () => resolveConfig({ configFile: false, datasources: { main: { url: 'fake:memory', options: 'big' as unknown as Record<string, unknown> } } }),
      'CONFIG_INVALID',
      'Expected datasource "main" options to be an object of fake options',
    );
  });

  it('a later registration of a scheme wins, for that scheme only', async () => {
    const fake = fakeFactory(['mysql:']);
    registerDriver(fake);
    expect(await loadDriverFactory('mysql://db/x')).toBe(fake);
    expect(await loadDriverFactory('mariadb://db/x')).toBe(mysqlDriverFactory);
    const config = resolveConfig({ configFile: false, datasources: { main: 'mysql://db/x' } });
    expect(config.datasources.main!.options).toEqual({ checked: 'mysql://db/x' });
    registerDriver(mysqlDriverFactory);
    expect(await loadDriverFactory('mysql://db/x')).toBe(mysqlDriverFactory);
  });

  it.each(['mysql', 'MySQL:', 'my sql:', ''])('refuses the scheme %j', (scheme) => {
    expect(() => registerDriver(fakeFactory(['other:', scheme]))).toThrow(/Expected a driver's URL schemes to be lower-case with their colon/);
    expect(findDriverFactory('other:x')).toBeUndefined();
  });
});

describe('the MySQL factory', () => {
  const url = new URL('mysql://app@db:3306/test');

  it('takes mysql:// and mariadb://, with the MySQL dialect', () => {
    expect(mysqlDriverFactory.schemes).toEqual(['mysql:', 'mariadb:']);
    expect(mysqlDriverFactory.dialect).toBe(mysqlDialect);
  });

  it('returns a copy of the options, {} for none', () => {
    const options = { connectTimeout: 5000 };
    const checked = mysqlDriverFactory.check('main', url, options);
    expect(checked).toEqual(options);
    expect(checked).not.toBe(options);
    expect(mysqlDriverFactory.check('main', url, undefined)).toEqual({});
  });

  it.each([
    [[], 'got an array'],
    [null, 'got null'],
    ['connectTimeout=5', 'got a string'],
    [5, 'got a number'],
  ])('refuses options %j with CONFIG_INVALID', (options, got) => {
    expectError(() => mysqlDriverFactory.check('main', url, options), 'CONFIG_INVALID', 'Expected datasource "main" options to be an object of mysql2 pool options', got);
  });

  it('refuses a URL without a host or with a port that is not a number', () => {
    expectError(() => mysqlDriverFactory.check('r', new URL('mysql:///db'), undefined), 'INVALID_DATASOURCE_URL', 'Expected datasource "r" url to name a host; got "mysql:///db"');
    expectError(() => mysqlDriverFactory.check('r', new URL('mysql://db:0/x'), undefined), 'INVALID_DATASOURCE_URL', 'Expected datasource "r" url port to be a number; got 0');
  });

  it('makes a MysqlDriver that connects nothing until asked', async () => {
    const driver = mysqlDriverFactory.create({ url: 'mysql://app@127.0.0.1:1/test', home: '/nonexistent', init: [], options: {}, ledger: null });
    expect(driver).toBeInstanceOf(LazyDriver);
    expect(driver.dialect).toBe(mysqlDialect);
    expect(driver.capabilities).toEqual({ groupCommit: true, streaming: true });
    // mysql2 is loaded and the MysqlDriver made on the first connect(), with the capabilities known before.
    const loaded = await (driver as LazyDriver).loaded();
    expect(loaded).toBeInstanceOf(MysqlDriver);
    expect(loaded.capabilities).toEqual(driver.capabilities);
    expect(await (driver as LazyDriver).loaded()).toBe(loaded);
    await driver.close();
  });
});

describe('the MySQL dialect', () => {
  it('reads a statement: its keyword, and whether it can share the ledger transaction', () => {
    expect(mysqlDialect.inspect("insert into t values ('a;b')")).toEqual({ keyword: 'INSERT', transactional: true, changesSession: false });
    expect(mysqlDialect.inspect('CREATE TABLE t (a INT)')).toEqual({ keyword: 'CREATE', transactional: false, changesSession: true });
    expect(mysqlDialect.inspect('UPDATE t SET a = 1; DELETE FROM t')).toEqual({ keyword: 'UPDATE', transactional: false, changesSession: true });
    expect(mysqlDialect.inspect('-- nothing')).toEqual({ keyword: '', transactional: false, changesSession: true });
  });

  it('keys the lock with a GET_LOCK name of at most 64 characters', () => {
    const key = mysqlDialect.lockKey('0123456789abcdef01234567', 'd'.repeat(64));
    expect(key).toBe(lockNameFor('0123456789abcdef01234567', 'd'.repeat(64)));
    expect(key).toMatch(/^querybatch:[0-9a-f]{40}$/);
    expect(mysqlDialect.lockKey('0123456789abcdef01234567', 'other')).not.toBe(key);
  });

  it('classifies errors as classifyError does', () => {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- compared, never called
    expect(mysqlDialect.classifyError).toBe(classifyError);
  });
});

describe('runsOnceWithLedger', () => {
  it("asks the dialect, and leaves captured results out", () => {
    expect(runsOnceWithLedger(fakeDialect(true), { sql: 'ANYTHING' })).toBe(true);
    expect(runsOnceWithLedger(fakeDialect(false), { sql: 'INSERT INTO t VALUES (1)' })).toBe(false);
    expect(runsOnceWithLedger(fakeDialect(true), { sql: 'SELECT 1', captureResult: true })).toBe(false);
    expect(runsOnceWithLedger(mysqlDialect, { sql: 'INSERT INTO t VALUES (1)' })).toBe(true);
  });
});

describe('the spool writer asks the datasource dialect whether jobs may share a segment', () => {
  async function filesAfterConcurrentSpools(url: string, sql: string): Promise<number> {
    const home = await mkdtemp(join(tmpdir(), 'qb-registry-'));
    try {
      const config = resolveConfig({ configFile: false, home, durability: 'none', datasources: { main: url } });
      const layout = layoutOf(home);
      await ensureLayout(layout);
      const writer = new SpoolWriter(layout, config, new DirSyncer());
      const ids = await Promise.all(Array.from({ length: 8 }, () => writer.spool(sql, [])));
      expect(new Set(ids).size).toBe(8);
      const entries = await readdir(layout.spoolDir, { recursive: true });
      return entries.filter((name) => name.endsWith('.batchsql') && !name.split(/[/\\]/).some((part) => part.startsWith('.'))).length;
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }

  it('jobs its dialect calls transactional share files; others get one each', async () => {
    registerDriver(fakeFactory(['fake:'], true));
    expect(await filesAfterConcurrentSpools('fake:memory', 'CREATE TABLE t (a INT)')).toBeLessThan(8);
    registerDriver(fakeFactory(['fake:'], false));
    expect(await filesAfterConcurrentSpools('fake:memory', 'INSERT INTO t VALUES (1)')).toBe(8);
    expect(await filesAfterConcurrentSpools('mysql://db/x', 'CREATE TABLE t (a INT)')).toBe(8);
    expect(await filesAfterConcurrentSpools('mysql://db/x', 'INSERT INTO t VALUES (1)')).toBeLessThan(8);
  });
});
