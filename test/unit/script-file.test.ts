import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyLedgerId, ledgerIdsOf, scriptStatementKey } from '../../src/db/driver.js';
import { mysqlDialect } from '../../src/db/mysql/dialect.js';
import { statementOfKey } from '../../src/db/mysql/ledger-sql.js';
import { encodeRecord, FORMAT, type SpoolRecord } from '../../src/spool/record.js';
import { readJobFile } from '../../src/spool/read-job.js';
import {
  PROGRESS_BYTES, measureScriptText, parseScriptHead, progressLine, rewriteScriptFile, scriptStatements, verifyScript, writeProgress, writeScriptTemp,
} from '../../src/spool/script-file.js';

const BODY = "INSERT INTO t VALUES ('a;b');\n-- a comment; with a semicolon\nDELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; END$$\nDELIMITER ;\nUPDATE t SET v = 2;\n";

function header(body: string): SpoolRecord {
  return {
    format: FORMAT, id: '01M8KRZ70DPH34Q81S62E95AD9', datasource: 'main', sql: '', params: [], createdAt: '2026-11-29T00:00:00.000Z', attempts: 0,
    script: measureScriptText(body, mysqlDialect.scriptSplitter()),
  };
}

async function scriptFile(body = BODY): Promise<{ dir: string; path: string; record: SpoolRecord }> {
  const dir = await mkdtemp(join(tmpdir(), 'qb-script-file-'));
  const path = join(dir, 'job.batchsql');
  const record = header(body);
  await writeScriptTemp(path, record, 0, { text: body }, false);
  return { dir, path, record };
}

const LIMITS = { maxFileBytes: 1 << 20, maxScriptBytes: 1 << 20 };

describe('script files', () => {
  it('hold a header, a fixed-width progress line and the body; read back with their statements', async () => {
    const { dir, path, record } = await scriptFile();
    try {
      expect(record.script).toMatchObject({ bytes: Buffer.byteLength(BODY), statements: 3 });
      const read = await readJobFile(path, LIMITS);
      if (read.kind !== 'script') throw new Error('expected a script');
      expect(read.file).toMatchObject({ done: 0, record });
      const text = await readFile(path, 'utf8');
      expect(text.endsWith(BODY)).toBe(true);
      expect(text.slice(read.file.progressAt, read.file.bodyAt)).toBe(progressLine(0));
      await verifyScript(path, read.file);
      const statements = [];
      for await (const s of scriptStatements(path, read.file, mysqlDialect.scriptSplitter())) statements.push([s.index, s.line, s.sql]);
      expect(statements).toEqual([[1, 1, "INSERT INTO t VALUES ('a;b')"], [2, 4, 'CREATE PROCEDURE p() BEGIN SELECT 1; END'], [3, 6, 'UPDATE t SET v = 2']]);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('write their progress in place, and keep it (and the body) when the header is rewritten', async () => {
    const { dir, path, record } = await scriptFile();
    try {
      const first = parseScriptHead(await readFile(path), (await readFile(path)).length);
      const fd = openSync(path, 'r+');
      writeProgress(fd, first, 2);
      closeSync(fd);
      expect(parseScriptHead(await readFile(path), (await readFile(path)).length).done).toBe(2);
      const failed = { ...record, attempts: 1, lastError: { class: 'sql' as const, code: 'ER_X', message: 'no', at: '2026-11-29T00:00:01.000Z', statement: { index: 3, line: 6, text: 'UPDATE t SET v = 2' } } };
      const rewritten = await rewriteScriptFile(join(dir, 'tmp'), path, failed);
      const bytes = await readFile(path);
      expect(parseScriptHead(bytes, bytes.length)).toEqual(rewritten);
      expect(rewritten).toMatchObject({ done: 2, record: failed });
      expect(bytes.toString('utf8').endsWith(BODY)).toBe(true);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('refuse an edited body, a wrong size, a damaged progress line', async () => {
    const { dir, path } = await scriptFile();
    try {
      const bytes = await readFile(path);
      const file = parseScriptHead(bytes, bytes.length);
      await writeFile(path, Buffer.concat([bytes.subarray(0, file.bodyAt), Buffer.from(BODY.replace('a;b', 'a;c'))]));
      await expect(verifyScript(path, file)).rejects.toMatchObject({ code: 'INVALID_SPOOL_FILE', message: expect.stringMatching(/^Checksum mismatch: the script's header says sha256:/) });
      expect(() => parseScriptHead(bytes, bytes.length + 1)).toThrow(/Expected the script's body to be \d+ bytes \(its header says so\); found \d+ bytes/);
      const damaged = Buffer.from(bytes);
      damaged.write('{"dome"', file.progressAt, 'latin1');
      expect(() => parseScriptHead(damaged, damaged.length)).toThrow(/Expected the script's progress line/);
      expect(PROGRESS_BYTES).toBe(progressLine(123456789).length);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('a script header is a record: sql must be empty, the script field well-formed', () => {
    const record = header(BODY);
    expect(() => parseScriptHead(Buffer.from(encodeRecord({ ...record, sql: 'SELECT 1' }) + progressLine(0)), 0)).toThrow(/Expected sql to be "" in a script's header/);
  });
});

describe('script statements', () => {
  it('have ledger keys that sort by number, after the script id', () => {
    const id = '01M8KRZ70DPH34Q81S62E95AD9';
    expect(scriptStatementKey(id, 7)).toBe(`${id}:000000007`);
    expect(scriptStatementKey(id, 10) > scriptStatementKey(id, 9)).toBe(true);
    expect(scriptStatementKey(id, 1) > id).toBe(true);
    expect(statementOfKey(scriptStatementKey(id, 123))).toBe(123);
  });

  it('a keyed job\'s key row sorts after every job id and script key (the prune by id never takes it), and follows its job\'s row', () => {
    const last = '7ZZZZZZZZZZZZZZZZZZZZZZZZZ'; // the largest ULID
    expect(keyLedgerId('01M8KRZ70DPH34Q81S62E95AD9')).toBe('k:01M8KRZ70DPH34Q81S62E95AD9');
    expect(keyLedgerId('00000000000000000000000000') > last).toBe(true);
    expect(keyLedgerId('00000000000000000000000000') > scriptStatementKey(last, 999_999_999)).toBe(true);
    expect(keyLedgerId(last).length).toBeLessThanOrEqual(40); // the ledger's id column
    expect(ledgerIdsOf([{ id: 'A' }, { id: 'B', keyed: true }, { id: 'C', keyed: false }])).toEqual(['A', 'B', 'k:B', 'C']);
  });

  it.each([
    ['SET NAMES utf8mb4', 'session'],
    ['/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */', 'session'],
    ['SET autocommit=0', 'session'],
    ['USE sakila', 'session'],
    ['SET GLOBAL max_connections = 10', 'other'],
    ['SET PASSWORD = PASSWORD(\'x\')', 'other'],
    ['COMMIT', 'control'],
    ['START TRANSACTION', 'control'],
    ["INSERT INTO t VALUES (1, 'x')", 'transactional'],
    ['/*!40000 ALTER TABLE `t` DISABLE KEYS */', 'other'],
    ['CREATE TABLE t (a INT)', 'other'],
    ['LOCK TABLES `t` WRITE', 'other'],
    ['CALL p()', 'other'],
  ])('%s is %s', (sql, role) => {
    expect(mysqlDialect.scriptRole(sql)).toBe(role);
  });
});
