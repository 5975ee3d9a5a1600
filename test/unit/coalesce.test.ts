import { describe, expect, it } from 'vitest';
import { coalesceRuns, inlinedShape, mergedInsert, perJob } from '../../src/db/coalesce.js';
import { escapeLiteral, inlineStatement } from '../../src/db/mysql/inline.js';
import { inspectStatement } from '../../src/db/mysql/statement.js';
import { inlineStatement as pgInlineStatement } from '../../src/db/postgres/session.js';
import { qmarksOf } from '../../src/db/postgres/statement.js';
import { literalOf } from '../../src/db/postgres/values.js';
import type { ParamValue } from '../../src/spool/record.js';
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

/**
 * A job's row is written from its template's shape (read once per text) and its values: it
 * must be exactly what reading the statement with its values written in gives, for every kind
 * of value and placement, so that the text merged is the text the job would run alone.
 */
describe('inlinedShape: a template’s row with its values written in', () => {
  const templates = [
    'INSERT INTO t (a, b) VALUES (?, ?)',
    "insert into t values (?, '?', ?);",
    'INSERT INTO t VALUES (-?, +?) -- a note ?',
    'INSERT INTO t VALUES (?, /* ? */ ?)',
    'INSERT INTO t VALUES (?,?)  ;  ',
  ];
  const values: ParamValue[] = [
    0, -2, 1.5, -0.25, 1e21, -1e-7, 'x', "it's", 'back\\slash\\', 'q?', '-- c', '/* c', '*/', 'a\nb', '', 'é☃', null, true, false,
    10n ** 20n, -5n, new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 6)), Buffer.from([0, 1, 39, 92, 255]), new Uint8Array([1, 2]),
  ];
  const pairs = values.flatMap((a) => values.map((b) => [a, b] as const));
  it.each([true, false])('MySQL (backslash escapes %s)', (escapes) => {
    const rules = { timezone: 'Z', noBackslashEscapes: !escapes };
    let compared = 0;
    for (const sql of templates) {
      const template = mysqlInsertShape(sql, escapes);
      expect(template, sql).not.toBeNull();
      for (const params of pairs) {
        const inline = inlineStatement(sql, params, rules);
        const expected = inline === null ? null : mysqlInsertShape(inline, escapes);
        const got = inlinedShape(template!, inspectStatement(sql, escapes).placeholders, params.map((v) => escapeLiteral(v, rules)));
        expect(got, `${sql} ${inline}`).toEqual(expected === null ? null : { ...expected, placeholders: 0 });
        compared++;
      }
    }
    expect(compared).toBe(templates.length * pairs.length);
  });
  it('PostgreSQL', () => {
    for (const sql of templates) {
      const template = postgresInsertShape(sql);
      expect(template, sql).not.toBeNull();
      for (const params of pairs) {
        const inline = pgInlineStatement(sql, params);
        const expected = inline === null ? null : postgresInsertShape(inline);
        const got = inlinedShape(template!, qmarksOf(sql).map((t) => t.start), params.map((v) => literalOf(v)!));
        expect(got, `${sql} ${inline}`).toEqual(expected === null ? null : { ...expected, placeholders: 0 });
      }
    }
  });
  it('refuses a placeholder outside the row, or a missing value', () => {
    const template = s('INSERT INTO t VALUES ', '(?, ?)', 2);
    expect(inlinedShape(template, [22, 25], ['1', '2'])).toEqual(s('INSERT INTO t VALUES ', '(1, 2)'));
    expect(inlinedShape(template, [3, 22, 25], ['0', '1', '2'])).toBeNull();
    expect(inlinedShape(template, [22, 25], ['1'])).toBeNull();
  });
});
