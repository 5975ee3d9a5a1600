import { describe, expect, it } from 'vitest';
import { SqliteScriptSplitter, splitScript } from '../../src/db/sqlite/script.js';
import { sqliteDialect, lockNameFor } from '../../src/db/sqlite/dialect.js';
import { checkSqliteDatasource, databasePath } from '../../src/db/sqlite/options.js';
import { sqliteParams } from '../../src/db/sqlite/session.js';
import { loadDriverFactory } from '../../src/db/registry.js';
import { sqliteDriverFactory } from '../../src/db/sqlite/index.js';
import { isQueryBatchError } from '../../src/errors.js';

/** The SQLite dialect's pure parts: the script splitter, statement traits, error classes, URL and option checks. */

const sqlOf = (text: string) => splitScript(text).map((s) => s.sql);

function byCharacters(text: string): string[] {
  const splitter = new SqliteScriptSplitter();
  const out = [];
  for (const c of text) out.push(...splitter.push(c));
  out.push(...splitter.end());
  return out.map((s) => s.sql);
}

const SCRIPT = `-- schema
CREATE TABLE "t;1" (a TEXT DEFAULT 'x;y', [b;c] INTEGER, \`d;e\` BLOB);
/* a ; in a block comment */ INSERT INTO "t;1" VALUES ('it''s; fine', 1, NULL);
CREATE TEMP TRIGGER IF NOT EXISTS trg AFTER INSERT ON "t;1" WHEN NEW.a <> 'end;' BEGIN
  UPDATE "t;1" SET a = CASE WHEN NEW.a = 'x' THEN 'y;' ELSE 'z' END WHERE rowid = NEW.rowid;
  SELECT CASE 1 WHEN 1 THEN 'begin' END;
END;
-- the end;
SELECT 1`;

describe('SQLite script splitter', () => {
  const expected = [
    `CREATE TABLE "t;1" (a TEXT DEFAULT 'x;y', [b;c] INTEGER, \`d;e\` BLOB)`,
    `INSERT INTO "t;1" VALUES ('it''s; fine', 1, NULL)`,
    `CREATE TEMP TRIGGER IF NOT EXISTS trg AFTER INSERT ON "t;1" WHEN NEW.a <> 'end;' BEGIN
  UPDATE "t;1" SET a = CASE WHEN NEW.a = 'x' THEN 'y;' ELSE 'z' END WHERE rowid = NEW.rowid;
  SELECT CASE 1 WHEN 1 THEN 'begin' END;
END`,
    'SELECT 1',
  ];

  it("ends statements at ; outside quotes, [identifiers], comments and a trigger's BEGIN … END body (CASE … END counted)", () => {
    expect(sqlOf(SCRIPT)).toEqual(expected);
  });

  it('splits the same however the text is pieced', () => {
    expect(byCharacters(SCRIPT)).toEqual(expected);
  });

  it('numbers statements and gives the line each starts on', () => {
    expect(splitScript(SCRIPT).map((s) => [s.index, s.line])).toEqual([[1, 2], [2, 3], [3, 4], [4, 9]]);
  });

  it('drops comments and blanks between statements; keeps an unterminated last statement', () => {
    expect(sqlOf(';;  -- x\n;SELECT 2 -- tail')).toEqual(['SELECT 2 -- tail']);
  });
});

describe('SQLite statement traits', () => {
  it.each([
    ['INSERT INTO t VALUES (1)', true, false],
    ['  with x AS (SELECT 1) SELECT * FROM x', true, false],
    ['CREATE TABLE t (a)', true, false],
    ['DROP TABLE t', true, false],
    ['ALTER TABLE t ADD b', true, false],
    ['CREATE TEMP TABLE t (a)', true, true],
    ['CREATE TEMPORARY VIEW v AS SELECT 1', true, true],
    ['PRAGMA foreign_keys = ON', false, true],
    ["ATTACH 'x.db' AS x", false, true],
    ['DETACH x', false, true],
    ['VACUUM', false, false],
    ['BEGIN', false, true],
    ['COMMIT', false, true],
    ['INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)', false, true],
    ['INSERT INTO t VALUES (1);', true, false],
  ])('%s: transactional %s, changes the session %s', (sql, transactional, changesSession) => {
    expect(sqliteDialect.inspect(sql)).toMatchObject({ transactional, changesSession });
  });

  it.each([
    ['PRAGMA journal_mode', 'session'],
    ["ATTACH 'x.db' AS x", 'session'],
    ['CREATE TEMP TABLE t (a)', 'session'],
    ['BEGIN IMMEDIATE', 'control'],
    ['END TRANSACTION', 'control'],
    ['SAVEPOINT a', 'control'],
    ['CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END', 'transactional'],
    ['UPDATE t SET a = 1', 'transactional'],
    ['VACUUM', 'other'],
  ])('%s: script role %s', (sql, role) => {
    expect(sqliteDialect.scriptRole(sql)).toBe(role);
  });
});

describe('SQLite error classes', () => {
  const classify = (code: string, phase: 'connect' | 'execute' = 'execute') => sqliteDialect.classifyError(Object.assign(new Error('x'), { code }), phase);
  it.each([
    ['SQLITE_BUSY', 'transient'],
    ['SQLITE_BUSY_SNAPSHOT', 'transient'],
    ['SQLITE_LOCKED_SHAREDCACHE', 'transient'],
    ['SQLITE_IOERR_WRITE', 'connection'],
    ['SQLITE_CANTOPEN', 'connection'],
    ['SQLITE_FULL', 'connection'],
    ['SQLITE_NOTADB', 'connection'],
    ['SQLITE_READONLY', 'connection'],
    ['SQLITE_PROCESS_LOST', 'connection'],
    ['SQLITE_INTERRUPT', 'sql'],
    ['SQLITE_CONSTRAINT_UNIQUE', 'sql'],
    ['SQLITE_ERROR', 'sql'],
    ['SQLITE_RANGE', 'sql'],
  ])('%s: %s', (code, expected) => {
    expect(classify(code)).toBe(expected);
  });

  it('anything while connecting is a connection failure', () => {
    expect(classify('SQLITE_ERROR', 'connect')).toBe('connection');
  });
});

describe('SQLite URLs and options', () => {
  const refused = (url: string, options?: unknown): string => {
    try {
      checkSqliteDatasource('main', new URL(url), options);
    } catch (error) {
      expect(isQueryBatchError(error)).toBe(true);
      return (error as Error).message;
    }
    throw new Error(`Expected ${url} to be refused`);
  };

  it('the registry picks the SQLite driver for sqlite:', async () => {
    expect(await loadDriverFactory('sqlite:q.db')).toBe(sqliteDriverFactory);
    expect(await loadDriverFactory('SQLite:///tmp/q.db')).toBe(sqliteDriverFactory);
  });

  it('reads relative paths from the home, absolute ones as they are, %-escapes decoded', () => {
    expect(databasePath('sqlite:q.db', '/home/app')).toBe('/home/app/q.db');
    expect(databasePath('sqlite:data/q%20b.db', '/home/app')).toBe('/home/app/data/q b.db');
    expect(databasePath('sqlite:///var/lib/q.db', '/home/app')).toBe('/var/lib/q.db');
  });

  it('defaults busyTimeoutMs; takes a valid one', () => {
    expect(checkSqliteDatasource('main', new URL('sqlite:q.db'), undefined)).toEqual({ busyTimeoutMs: 5000 });
    expect(checkSqliteDatasource('main', new URL('sqlite:q.db'), { busyTimeoutMs: 0 })).toEqual({ busyTimeoutMs: 0 });
  });

  it('refuses what names no file, or options it does not know', () => {
    expect(refused('sqlite::memory:')).toMatch(/in-memory database ends with its session/);
    expect(refused('sqlite:')).toMatch(/to name a database file, like sqlite:querybatch.db/);
    expect(refused('sqlite:dir/')).toMatch(/to name a database file/);
    expect(refused('sqlite://host/q.db')).toMatch(/no host/);
    expect(refused('sqlite:q.db?cache=shared')).toMatch(/no query or fragment/);
    expect(refused('sqlite:q%zz.db')).toMatch(/%-escaped UTF-8/);
    expect(refused('sqlite:q.db', 'fast')).toMatch(/options to be an object like \{ "busyTimeoutMs": 5000 \}; got/);
    expect(refused('sqlite:q.db', { timeout: 1 })).toMatch(/SQLite options \(busyTimeoutMs\); got "timeout"/);
    expect(refused('sqlite:q.db', { busyTimeoutMs: 1.5 })).toMatch(/busyTimeoutMs to be a whole number of milliseconds >= 0; got 1.5/);
  });
});

describe('SQLite params and locks', () => {
  it('Dates as ISO 8601 UTC text, booleans as 1/0, the rest as they are', () => {
    const date = new Date('2024-01-02T03:04:05.006Z');
    expect(sqliteParams([date, true, false, 1n, null, Buffer.from('a'), 'x'])).toEqual(['2024-01-02T03:04:05.006Z', 1, 0, 1n, null, Buffer.from('a'), 'x']);
    expect(sqliteParams({ d: date, t: true })).toEqual({ d: '2024-01-02T03:04:05.006Z', t: 1 });
  });

  it('lock names are per spool and datasource', () => {
    expect(lockNameFor('s1', 'main')).toMatch(/^querybatch-lock-[0-9a-f]{16}$/);
    expect(lockNameFor('s1', 'main')).not.toBe(lockNameFor('s1', 'other'));
    expect(lockNameFor('s1', 'main')).not.toBe(lockNameFor('s2', 'main'));
  });
});
