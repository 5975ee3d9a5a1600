import { describe, expect, it } from 'vitest';
import { inspectStatement, replacePlaceholders } from '../../src/db/postgres/statement.js';
import { splitScript } from '../../src/db/postgres/script.js';
import { literalOf, quoteLiteral } from '../../src/db/postgres/values.js';
import { postgresDialect, advisoryKeyFor } from '../../src/db/postgres/dialect.js';
import { classifyError } from '../../src/db/postgres/classify.js';
import { checkPostgresDatasource } from '../../src/db/postgres/options.js';

const bound = (sql: string, params: unknown) => replacePlaceholders(sql, params as never, (_, n) => `$${n}`);

describe('PostgreSQL placeholders', () => {
  it('rewrites ? outside quotes, comments and dollar quoting', () => {
    const sql = `SELECT ?, '?''?', E'\\'?', "a?""b", $$ ? $$, $t$ ?$x$? $t$, -- ?\n /* ? /* ? */ ? */ ?::int, a[1:2]`;
    expect(bound(sql, [1, 2]).text).toBe(`SELECT $1, '?''?', E'\\'?', "a?""b", $$ ? $$, $t$ ?$x$? $t$, -- ?\n /* ? /* ? */ ? */ $2::int, a[1:2]`);
  });
  it('reads a backslash in a plain string as a character, in an E string as an escape', () => {
    expect(bound(`SELECT 'a\\', ?`, [1]).text).toBe(`SELECT 'a\\', $1`);
    expect(bound(`SELECT E'a\\', ?'`, [1]).text).toBe(`SELECT E'a\\', ?'`);
  });
  it('rewrites :name (one number per name), never a :: cast or :=, and leaves ? alone with named params', () => {
    const r = bound(`SELECT :a::text, :b, :a, x ? 'k', ':a', a[1:n], v := 1`, { a: 1, b: 'x' });
    expect(r.text).toBe(`SELECT $1::text, $2, $1, x ? 'k', ':a', a[1:n], v := 1`);
    expect(r.values).toEqual([1, 'x']);
  });
  it('says when positional values and placeholders differ; leaves a text with its own $n alone', () => {
    expect(bound('SELECT ?, ?', [1]).matched).toBe(false);
    expect(bound('SELECT ?, ?', [1]).text).toBe('SELECT $1, $2');
    expect(bound('SELECT $1', [5])).toEqual({ text: 'SELECT $1', values: [5], matched: false });
  });
  it('does not start a dollar quote inside an identifier', () => {
    expect(bound('SELECT a$b$, ?', [1]).text).toBe('SELECT a$b$, $1');
  });
});

describe('PostgreSQL literals', () => {
  it('quotes so that any standard_conforming_strings reads them back', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('a\\b')).toBe(" E'a\\\\b'");
    expect(literalOf(null)).toBe('NULL');
    expect(literalOf(42)).toBe("'42'");
    expect(literalOf(12345678901234567890n)).toBe("'12345678901234567890'");
    expect(literalOf(new Date('2024-01-02T03:04:05.678Z'))).toBe("'2024-01-02T03:04:05.678Z'");
    expect(literalOf(Buffer.from([0, 255]))).toBe(" E'\\\\x00ff'");
    expect(literalOf('a\0b')).toBeNull();
  });
});

describe('PostgreSQL statement traits', () => {
  const t = (sql: string) => postgresDialect.inspect(sql);
  it('runs DDL and DML in the ledger transaction', () => {
    expect(t('CREATE TABLE x (a int)')).toEqual({ keyword: 'CREATE', transactional: true, changesSession: false });
    expect(t('insert into x values (1);')).toEqual({ keyword: 'INSERT', transactional: true, changesSession: false });
  });
  it('keeps what cannot run in a transaction block out of it', () => {
    for (const sql of ['CREATE DATABASE d', 'DROP DATABASE d', 'VACUUM x', 'CREATE INDEX CONCURRENTLY i ON x (a)', 'CREATE UNIQUE INDEX CONCURRENTLY i ON x (a)', 'REINDEX TABLE CONCURRENTLY x', 'ALTER SYSTEM SET work_mem = 1', 'CREATE TABLESPACE t LOCATION \'/x\'', 'CALL p()', 'DO $$ BEGIN COMMIT; END $$', 'BEGIN', 'COMMIT', 'SELECT 1; SELECT 2']) {
      expect(t(sql).transactional, sql).toBe(false);
    }
  });
  it('marks what leaves session state', () => {
    for (const sql of ['SET search_path TO x', 'SET LOCAL work_mem = 1', 'RESET ALL', 'LISTEN c', 'PREPARE p AS SELECT 1', 'CREATE TEMP TABLE t (a int)', 'SELECT pg_advisory_lock(1)', "SELECT set_config('a.b', '1', false)", 'DECLARE c CURSOR WITH HOLD FOR SELECT 1']) {
      expect(t(sql).changesSession, sql).toBe(true);
    }
    expect(t('SELECT 1').changesSession).toBe(false);
  });
  it('gives script roles', () => {
    expect(postgresDialect.scriptRole('SET search_path TO x')).toBe('session');
    expect(postgresDialect.scriptRole('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE')).toBe('control');
    expect(postgresDialect.scriptRole('BEGIN')).toBe('control');
    expect(postgresDialect.scriptRole('CREATE TABLE a (b int)')).toBe('transactional');
    expect(postgresDialect.scriptRole('VACUUM')).toBe('other');
  });
  it('reads the first statement only for a words check', () => {
    expect(inspectStatement('/* c */ -- d\n select 1').keyword).toBe('SELECT');
  });
});

describe('PostgreSQL script splitter', () => {
  it('splits at ; outside dollar quotes, E strings, nested comments and BEGIN ATOMIC bodies', () => {
    const script = [
      "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;",
      "INSERT INTO t VALUES (E'a\\';b');",
      '/* x /* ; */ ; */ SELECT 1;',
      'CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;',
      'SELECT 3',
    ].join('\n');
    const out = splitScript(script);
    expect(out.map((s) => s.sql)).toEqual([
      'CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql',
      "INSERT INTO t VALUES (E'a\\';b')",
      'SELECT 1',
      'CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END',
      'SELECT 3',
    ]);
    expect(out.map((s) => s.line)).toEqual([1, 2, 3, 4, 5]);
  });
  it('splits the same when the text comes one character at a time', () => {
    const script = "SELECT $a$;$a$; SELECT 'x;''y'; -- ;\nSELECT E'\\';'; SELECT 1::int";
    const splitter = postgresDialect.scriptSplitter();
    const out = [...[...script].flatMap((c) => splitter.push(c)), ...splitter.end()];
    expect(out.map((s) => s.sql)).toEqual(splitScript(script).map((s) => s.sql));
    expect(out).toHaveLength(4);
  });
  it('nests BEGIN … END only in a CREATE FUNCTION or PROCEDURE, as psql does', () => {
    expect(splitScript('SELECT 1 AS begin; SELECT 2').map((s) => s.sql)).toEqual(['SELECT 1 AS begin', 'SELECT 2']);
    expect(splitScript('CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END; CALL p()').map((s) => s.sql)).toEqual([
      'CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END',
      'CALL p()',
    ]);
  });
  it('refuses a psql meta-command with its line', () => {
    expect(() => splitScript('SELECT 1;\n\\connect other\nSELECT 2;')).toThrow(/psql meta-command "\\\\connect other" at line 2/);
  });
});

describe('PostgreSQL errors, locks and URLs', () => {
  it('classifies', () => {
    expect(classifyError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 'execute')).toBe('connection');
    expect(classifyError(Object.assign(new Error('x'), { code: '57P01' }), 'execute')).toBe('connection');
    expect(classifyError(Object.assign(new Error('x'), { code: '53300' }), 'execute')).toBe('connection');
    expect(classifyError(Object.assign(new Error('x'), { code: '08006' }), 'execute')).toBe('connection');
    expect(classifyError(new Error('Connection terminated unexpectedly'), 'execute')).toBe('connection');
    expect(classifyError(Object.assign(new Error('x'), { code: '40001' }), 'execute')).toBe('transient');
    expect(classifyError(Object.assign(new Error('x'), { code: '40P01' }), 'execute')).toBe('transient');
    expect(classifyError(Object.assign(new Error('x'), { code: '42P01' }), 'execute')).toBe('sql');
    expect(classifyError(Object.assign(new Error('x'), { code: '42P01' }), 'connect')).toBe('connection');
  });
  it('derives a signed 64-bit lock key per spool and datasource', () => {
    const a = advisoryKeyFor('s1', 'main');
    expect(typeof a).toBe('bigint');
    expect(a).toBe(advisoryKeyFor('s1', 'main'));
    expect(a).not.toBe(advisoryKeyFor('s1', 'other'));
    expect(BigInt.asIntN(64, a)).toBe(a);
  });
  it('checks URLs with the password hidden', () => {
    expect(checkPostgresDatasource('main', new URL('postgres://u:p@h:5432/db?sslmode=require&application_name=x'), undefined)).toEqual({});
    expect(() => checkPostgresDatasource('main', new URL('postgres://u:secret@h/db?nope=1'), undefined)).toThrow(/query parameters to be pg connection options.*"nope"/);
    expect(() => checkPostgresDatasource('main', new URL('postgres://u:secret@h/db?sslmode=maybe'), undefined)).toThrow(/sslmode/);
    expect(() => checkPostgresDatasource('main', new URL('postgresql:///db'), undefined)).toThrow(/name a host/);
    expect(checkPostgresDatasource('main', new URL('postgresql:///db?host=/var/run/postgresql'), undefined)).toEqual({});
    expect(() => checkPostgresDatasource('main', new URL('postgres://u@h/db?password=secret'), undefined)).toThrow(/before the host/);
    expect(() => checkPostgresDatasource('main', new URL('postgres://h/db'), 5)).toThrow(/options to be an object/);
  });
});
