import { describe, expect, it } from 'vitest';
import { inlineParams, inspectStatement, runsInLedgerTransaction } from '../../src/db/mysql/statement.js';

const kind = (sql: string) => inspectStatement(sql).kind;

describe('inspectStatement: which statements can share the ledger transaction', () => {
  it.each([
    'INSERT INTO t VALUES (1)',
    'insert into t values (1)',
    '  UPDATE t SET a = 1',
    'DELETE FROM t',
    'REPLACE INTO t VALUES (1)',
    'SELECT 1',
    '(SELECT 1) UNION (SELECT 2)',
    'WITH x AS (SELECT 1) SELECT * FROM x',
    'DO SLEEP(0)',
    'SET @a = 1',
    'SET NAMES utf8mb4',
    'CREATE TEMPORARY TABLE tmp (a INT)',
    'DROP TEMPORARY TABLE tmp',
    '/* a comment */ INSERT INTO t VALUES (1)',
    '-- comment\nINSERT INTO t VALUES (1)',
    '# comment\nUPDATE t SET a = 2',
    'INSERT INTO t VALUES (1);',
    'INSERT INTO t VALUES (1);   -- trailing comment',
  ])('transactional: %s', (sql) => {
    expect(kind(sql)).toBe('transactional');
    expect(runsInLedgerTransaction(inspectStatement(sql))).toBe(true);
  });

  it.each([
    'CREATE TABLE t (a INT)',
    'create index i on t (a)',
    'ALTER TABLE t ADD b INT',
    'DROP TABLE t',
    'DROP DATABASE d',
    'RENAME TABLE a TO b',
    'TRUNCATE TABLE t',
    'TRUNCATE t',
    'LOCK TABLES t WRITE',
    'UNLOCK TABLES',
    "GRANT SELECT ON *.* TO 'u'@'%'",
    "REVOKE SELECT ON *.* FROM 'u'@'%'",
    "LOAD DATA INFILE '/tmp/x' INTO TABLE t",
    'ANALYZE TABLE t',
    'OPTIMIZE TABLE t',
    'FLUSH TABLES',
    'CREATE OR REPLACE VIEW v AS SELECT 1',
    '/*!40101 ALTER TABLE t ADD c INT */',
    '/*M!100100 CREATE TABLE t2 (a INT) */',
  ])('implicit commit: %s', (sql) => {
    expect(kind(sql)).toBe('implicit-commit');
    expect(runsInLedgerTransaction(inspectStatement(sql))).toBe(false);
  });

  it.each([
    'BEGIN',
    'START TRANSACTION',
    'COMMIT',
    'ROLLBACK',
    'SET autocommit = 1',
    'SET @@session.autocommit=0',
    'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
    'SET TRANSACTION READ ONLY',
    "XA START 'x'",
    'SAVEPOINT s',
  ])('transaction control: %s', (sql) => {
    expect(kind(sql)).toBe('transaction-control');
    expect(runsInLedgerTransaction(inspectStatement(sql))).toBe(false);
  });

  it.each(['CALL p()', 'EXECUTE s', 'USE otherdb', "SELECT * FROM t INTO OUTFILE '/tmp/x'", 'HANDLER t OPEN', '', '  -- only a comment'])(
    'unknown (never in the ledger transaction): %j',
    (sql) => {
      expect(kind(sql)).toBe('unknown');
      expect(runsInLedgerTransaction(inspectStatement(sql))).toBe(false);
    },
  );

  it('keywords inside strings, identifiers and comments do not count', () => {
    expect(kind("INSERT INTO t VALUES ('DROP TABLE x; COMMIT')")).toBe('transactional');
    expect(kind('INSERT INTO `create` VALUES (1)')).toBe('transactional');
    expect(kind('/* CREATE TABLE x */ SELECT 1')).toBe('transactional');
    expect(inspectStatement("INSERT INTO t VALUES ('a;b')").multiple).toBe(false);
    expect(inspectStatement("INSERT INTO t VALUES ('it\\'s; DROP TABLE t')").multiple).toBe(false);
    expect(inspectStatement("INSERT INTO t VALUES ('it''s; x')").multiple).toBe(false);
  });

  it('several statements are seen, even when the first is harmless', () => {
    const info = inspectStatement('INSERT INTO t VALUES (1); DROP TABLE t');
    expect(info.multiple).toBe(true);
    expect(runsInLedgerTransaction(info)).toBe(false);
    expect(inspectStatement('INSERT INTO t VALUES (1);\n-- done\n').multiple).toBe(false);
    expect(inspectStatement('SELECT 1; COMMIT').multiple).toBe(true);
  });

  it('NO_BACKSLASH_ESCAPES: a backslash does not escape the quote', () => {
    // With backslash escapes the string runs to the end; without, it ends at \' and ; splits.
    expect(inspectStatement("SELECT 'a\\'; DROP TABLE t; -- '", true).multiple).toBe(false);
    expect(inspectStatement("SELECT 'a\\'; DROP TABLE t; -- '", false).multiple).toBe(true);
  });
});

describe('placeholders and inlineParams', () => {
  const escape = (v: unknown) => (typeof v === 'string' ? `'${v}'` : String(v));

  it('finds ? outside strings, identifiers and comments only', () => {
    const sql = "INSERT INTO `t?` (a, b) VALUES (?, 'why?') /* ? */ -- ?\n, (?)";
    expect(inspectStatement(sql).placeholders).toHaveLength(2);
    expect(inlineParams(inspectStatement(sql), [1, 'x'], escape)).toBe("INSERT INTO `t?` (a, b) VALUES (1, 'why?') /* ? */ -- ?\n, ('x')");
  });

  it('drops a trailing semicolon and says when the counts differ', () => {
    expect(inlineParams(inspectStatement('SELECT ?;'), [5], escape)).toBe('SELECT 5');
    expect(inlineParams(inspectStatement('SELECT ?, ?'), [5], escape)).toBeNull();
    expect(inlineParams(inspectStatement('SELECT 1'), [], escape)).toBe('SELECT 1');
  });
});
