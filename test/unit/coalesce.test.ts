import { describe, expect, it } from 'vitest';
import { coalesceRuns, mergedInsert, perJob } from '../../src/db/coalesce.js';
import type { InsertShape } from '../../src/db/insert-shape.js';
import { mysqlInsertShape } from '../../src/db/mysql/insert-shape.js';
import { postgresInsertShape } from '../../src/db/postgres/insert-shape.js';
import { sqliteInsertShape } from '../../src/db/sqlite/insert-shape.js';

/** Coalescing (issue 15): which statements may share a multi-row INSERT, and how a group is cut into runs. */

const shapes = { mysql: (sql: string) => mysqlInsertShape(sql), postgres: postgresInsertShape, sqlite: sqliteInsertShape };

describe.each(Object.entries(shapes))('%s single-row INSERT shape', (_, shape) => {
  it('splits a single-row INSERT of constants at its row', () => {
    expect(shape("INSERT INTO t (a, b) VALUES (1, 'x')")).toEqual({ prefix: 'INSERT INTO t (a, b) VALUES ', row: "(1, 'x')", placeholders: 0 });
    expect(shape('insert into s.t values (?, -2, NULL, TRUE, DEFAULT);')).toEqual({ prefix: 'insert into s.t values ', row: '(?, -2, NULL, TRUE, DEFAULT)', placeholders: 1 });
    expect(shape("INSERT INTO t VALUES ('a''b', ?) -- note")?.row).toBe("('a''b', ?)");
  });
  it.each([
    ['a function (its value may differ in one statement)', 'INSERT INTO t (a) VALUES (NOW())'],
    ['a subquery', 'INSERT INTO t (a) VALUES ((SELECT max(a) FROM t))'],
    ['a column name', 'INSERT INTO t (a, b) VALUES (1, a)'],
    ['several rows already', 'INSERT INTO t (a) VALUES (1), (2)'],
    ['a suffix (ON CONFLICT / ON DUPLICATE KEY / RETURNING)', 'INSERT INTO t (a) VALUES (1) RETURNING a'],
    ['INSERT … SELECT', 'INSERT INTO t (a) SELECT 1'],
    ['an empty row', 'INSERT INTO t VALUES ()'],
    ['a second statement', 'INSERT INTO t VALUES (1); DELETE FROM t'],
    ['an UPDATE', 'UPDATE t SET a = 1'],
    ['a variable', 'INSERT INTO t VALUES (@a)'],
    ['an unclosed quote', "INSERT INTO t VALUES ('a)"],
    ['a named placeholder', 'INSERT INTO t VALUES (:a)'],
    ['a quoted name in the row', 'INSERT INTO t VALUES ("a")'],
  ])('refuses %s', (_, sql) => {
    expect(shape(sql)).toBeNull();
  });
  it('a quote, comment or parenthesis inside a string is the string’s', () => {
    expect(shape("INSERT INTO t VALUES (') -- (', '/*')")?.row).toBe("(') -- (', '/*')");
  });
});

describe('dialect rules', () => {
  it('MySQL: IGNORE, REPLACE, ON DUPLICATE KEY UPDATE and executable comments are never merged; VALUE and X\'…\' are read', () => {
    expect(mysqlInsertShape('INSERT IGNORE INTO t VALUES (1)')).toBeNull();
    expect(mysqlInsertShape('REPLACE INTO t VALUES (1)')).toBeNull();
    expect(mysqlInsertShape('INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)')).toBeNull();
    expect(mysqlInsertShape('INSERT /*! IGNORE */ INTO t VALUES (1)')).toBeNull();
    expect(mysqlInsertShape("INSERT INTO `t` VALUE (X'0a', 'it\\'s')")?.row).toBe("(X'0a', 'it\\'s')");
    // Under NO_BACKSLASH_ESCAPES a backslash ends nothing: 'a\' is a whole string.
    expect(mysqlInsertShape("INSERT INTO t VALUES ('a\\', 1)", false)?.row).toBe("('a\\', 1)");
    expect(mysqlInsertShape("INSERT INTO t VALUES ('a\\', 1)", true)).toBeNull();
  });
  it('PostgreSQL: casts and E strings are constants; ON CONFLICT and a WITH are never merged', () => {
    expect(postgresInsertShape("INSERT INTO t VALUES ('1'::int, E'a\\'b', $$x$$)")?.row).toBe("('1'::int, E'a\\'b', $$x$$)");
    expect(postgresInsertShape('INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING')).toBeNull();
    expect(postgresInsertShape('WITH x AS (SELECT 1) INSERT INTO t VALUES (1)')).toBeNull();
    expect(postgresInsertShape('INSERT INTO t VALUES ($1)')).toBeNull();
  });
  it('SQLite: OR IGNORE / OR REPLACE and numbered placeholders are never merged; [names] are names', () => {
    expect(sqliteInsertShape('INSERT OR IGNORE INTO t VALUES (1)')).toBeNull();
    expect(sqliteInsertShape('INSERT INTO t VALUES (?1)')).toBeNull();
    expect(sqliteInsertShape("INSERT INTO [my t] ([a]) VALUES (?, X'00')")).toEqual({ prefix: 'INSERT INTO [my t] ([a]) VALUES ', row: "(?, X'00')", placeholders: 1 });
  });
});

const s = (prefix: string, row: string, placeholders = 0): InsertShape => ({ prefix, row, placeholders });

describe('coalesceRuns', () => {
  const limits = { maxRows: 3, maxPlaceholders: 100 };
  it('merges consecutive shapes with the same prefix, in order, up to maxRows', () => {
    const a = 'INSERT INTO a VALUES ';
    const runs = coalesceRuns([s(a, '(1)'), s(a, '(2)'), s(a, '(3)'), s(a, '(4)'), null, s(a, '(5)'), s('INSERT INTO b VALUES ', '(6)')], limits);
    expect(runs).toEqual([
      { from: 0, count: 3, sql: 'INSERT INTO a VALUES (1), (2), (3)' },
      { from: 3, count: 1, sql: null },
      { from: 4, count: 1, sql: null },
      { from: 5, count: 1, sql: null },
      { from: 6, count: 1, sql: null },
    ]);
  });
  it('never merges prefixes that differ by a byte (case, space)', () => {
    const runs = coalesceRuns([s('INSERT INTO a VALUES ', '(1)'), s('insert into a values ', '(2)'), s('INSERT INTO a  VALUES ', '(3)')], limits);
    expect(runs.map((r) => r.count)).toEqual([1, 1, 1]);
  });
  it('keeps a statement’s placeholders under maxPlaceholders', () => {
    const runs = coalesceRuns([s('p ', '(?, ?)', 2), s('p ', '(?, ?)', 2), s('p ', '(?, ?)', 2)], { maxRows: 10, maxPlaceholders: 5 });
    expect(runs.map((r) => r.count)).toEqual([2, 1]);
    expect(mergedInsert([s('p ', '(?)'), s('p ', '(?)')])).toBe('p (?), (?)');
  });
  it('shares a merged INSERT’s figure out one row per job, or refuses', () => {
    const runs = [{ from: 0, count: 1, sql: null }, { from: 1, count: 3, sql: 'x' }];
    expect(perJob(runs, [5, 3])).toEqual([5, 1, 1, 1]);
    // A trigger skipped a row: which job's is unknown.
    expect(perJob(runs, [5, 2])).toBeNull();
  });
});
