import { describe, it, expect } from 'vitest';
import { LOG_SQL_BYTES, formatErrorLine, formatSummaryLine, loggedSql, parseErrorLine, parseSummaryLine, type FailureEntry } from '../../src/ops/log-format.js';
import { parseLogLine } from '../../src/ops/log-reader.js';
import { logEntryOf } from '../../src/run/failure.js';

const TIME = new Date('2026-11-22T08:30:00.123Z');
const ID = '01JD7Z3K2M4N5P6Q7R8S9TVWXY';
const FORGERY = '\n2026-01-01T00:00:00Z runSQL: success=999';

describe('formatSummaryLine', () => {
  it('writes the exact OpenBD-style summary line', () => {
    expect(formatSummaryLine(TIME, { success: 6, sqlFailed: 0, connectionFailed: 0, totalMs: 32, avgMs: 5 }))
      .toBe('2026-11-22T08:30:00.123Z runSQL: success=6; SQLFailed=0; ConnectedFailed=0; SQL=32ms; avg=5ms');
  });

  it('puts each counter in its own place', () => {
    expect(formatSummaryLine(new Date(0), { success: 1, sqlFailed: 2, connectionFailed: 3, totalMs: 4, avgMs: 5 }))
      .toBe('1970-01-01T00:00:00.000Z runSQL: success=1; SQLFailed=2; ConnectedFailed=3; SQL=4ms; avg=5ms');
  });

  it('rounds the milliseconds to whole numbers', () => {
    expect(formatSummaryLine(TIME, { success: 3, sqlFailed: 0, connectionFailed: 0, totalMs: 31.6, avgMs: 10.4 }))
      .toBe('2026-11-22T08:30:00.123Z runSQL: success=3; SQLFailed=0; ConnectedFailed=0; SQL=32ms; avg=10ms');
    expect(formatSummaryLine(TIME, { success: 2, sqlFailed: 0, connectionFailed: 0, totalMs: 2.5, avgMs: 1.25 }))
      .toBe('2026-11-22T08:30:00.123Z runSQL: success=2; SQLFailed=0; ConnectedFailed=0; SQL=3ms; avg=1ms');
    expect(formatSummaryLine(TIME, { success: 2, sqlFailed: 0, connectionFailed: 0, totalMs: 11, avgMs: 5.5 }))
      .toBe('2026-11-22T08:30:00.123Z runSQL: success=2; SQLFailed=0; ConnectedFailed=0; SQL=11ms; avg=6ms');
    expect(formatSummaryLine(TIME, { success: 3, sqlFailed: 0, connectionFailed: 0, totalMs: 0.4, avgMs: 0.1333 }))
      .toBe('2026-11-22T08:30:00.123Z runSQL: success=3; SQLFailed=0; ConnectedFailed=0; SQL=0ms; avg=0ms');
  });
});

describe('parseSummaryLine', () => {
  it('reads back what formatSummaryLine wrote', () => {
    const counts = { success: 6, sqlFailed: 1, connectionFailed: 2, totalMs: 32, avgMs: 5 };
    expect(parseSummaryLine(formatSummaryLine(TIME, counts))).toEqual({ time: '2026-11-22T08:30:00.123Z', ...counts });
  });

  it('reads large counters', () => {
    const counts = { success: 1_234_567, sqlFailed: 89, connectionFailed: 0, totalMs: 987_654_321, avgMs: 800 };
    expect(parseSummaryLine(formatSummaryLine(TIME, counts))).toEqual({ time: TIME.toISOString(), ...counts });
  });

  it('ignores a trailing newline or carriage return', () => {
    const line = formatSummaryLine(TIME, { success: 1, sqlFailed: 0, connectionFailed: 0, totalMs: 7, avgMs: 7 });
    expect(parseSummaryLine(line + '\n')?.success).toBe(1);
    expect(parseSummaryLine(line + '\r\n')?.totalMs).toBe(7);
  });

  it.each([
    '',
    'hello',
    '2026-11-22T08:30:00.123Z runSQL: success=6; SQLFailed=0; ConnectedFailed=0; SQL=32ms',
    '2026-11-22T08:30:00.123Z runSQL: success=-1; SQLFailed=0; ConnectedFailed=0; SQL=32ms; avg=5ms',
    '2026-11-22T08:30:00.123Z runSQL: success=6; SQLFailed=0; ConnectedFailed=0; SQL=32ms; avg=5ms extra',
    ' 2026-11-22T08:30:00.123Z runSQL: success=6; SQLFailed=0; ConnectedFailed=0; SQL=32ms; avg=5ms',
    'x 2026-11-22T08:30:00.123Z runSQL: success=6; SQLFailed=0; ConnectedFailed=0; SQL=32ms; avg=5ms',
    '2026-11-22T08:30:00.123Z sql id=- file="x" datasource=- code=X moved="x" message="m"',
  ])('returns null for a line that is not a summary line: %j', (line) => {
    expect(parseSummaryLine(line)).toBeNull();
  });
});

describe('formatErrorLine', () => {
  it('writes key=value fields with bare tokens and JSON strings for free text', () => {
    const line = formatErrorLine(TIME, {
      class: 'sql',
      id: ID,
      file: `${ID}.batchsql`,
      datasource: 'main',
      code: 'ER_NO_SUCH_TABLE',
      errno: 1146,
      attempts: 1,
      moved: `failed/failed-${ID}.batchsql`,
      message: "Table 'test.nope' doesn't exist",
      sql: 'INSERT INTO nope VALUES (?)',
      params: '1[number]',
    });
    expect(line).toBe(
      `2026-11-22T08:30:00.123Z sql id=${ID} file="${ID}.batchsql" datasource=main code=ER_NO_SUCH_TABLE errno=1146 attempts=1 ` +
      `moved="failed/failed-${ID}.batchsql" message="Table 'test.nope' doesn't exist" sql="INSERT INTO nope VALUES (?)" params="1[number]"`,
    );
  });

  it('writes - for a missing id and datasource and leaves out optional fields', () => {
    const line = formatErrorLine(TIME, {
      class: 'invalid',
      id: null,
      file: 'notes.txt',
      datasource: null,
      code: 'INVALID_SPOOL_FILE',
      moved: 'failed/failed-notes.txt',
      message: 'Expected a querybatch/1 JSON object; found an empty file',
    });
    expect(line).toBe(
      '2026-11-22T08:30:00.123Z invalid id=- file="notes.txt" datasource=- code=INVALID_SPOOL_FILE moved="failed/failed-notes.txt" ' +
      'message="Expected a querybatch/1 JSON object; found an empty file"',
    );
  });

  it('quotes a code or datasource that is not a bare token', () => {
    const line = formatErrorLine(TIME, {
      class: 'connection', id: ID, file: 'f', datasource: 'main', code: 'WEIRD CODE', moved: 'spool/x', message: 'm',
    });
    expect(line).toContain(' code="WEIRD CODE" ');
  });
});

describe('formatErrorLine/parseErrorLine round trip', () => {
  it.each(['connection', 'sql', 'invalid', 'timeout', 'uncertain'])('reads back a %s line', (cls) => {
    const line = formatErrorLine(new Date('2026-11-23T10:00:00.000Z'), { class: cls, id: ID, file: 'f', datasource: 'main', code: 'C', moved: 'm', message: 'x' });
    expect(parseErrorLine(line)).toMatchObject({ time: '2026-11-23T10:00:00.000Z', class: cls, id: ID, code: 'C' });
  });

  it('refuses a line of another class', () => {
    expect(parseErrorLine('2026-11-23T10:00:00.000Z bogus id=- file="f" datasource=- code=C moved="m" message="x"')).toBeNull();
  });

  const nasty = [
    'plain',
    'line one\nline two\r\nline three\rline four',
    'say "hi" and \'bye\' and \\backslash\\ and \\"escaped\\"',
    'control \u0000\u0001\u0007\b\t\u000b\f\u001b[31mred\u001b[0m\u007f',
    `Duplicate entry${FORGERY}; SQLFailed=0; ConnectedFailed=0; SQL=1ms; avg=1ms`,
    '2026-01-01T00:00:00Z sql id=- file="forged" datasource=- code=X moved="x" message="forged"',
    'key=value sql="inner" message="inner"',
    'unicode ünïcödé 日本語 🎉 👨‍👩‍👧 \u2028 \u2029',
    'trailing backslash \\',
    '',
    ' ',
  ];

  it.each(nasty.map((text) => [text]))('carries message and sql %j exactly', (text) => {
    const entry: FailureEntry = {
      class: 'sql',
      id: ID,
      file: `${ID}.batchsql`,
      datasource: 'main',
      code: 'ER_PARSE_ERROR',
      errno: 1064,
      attempts: 3,
      moved: `failed/failed-${ID}.batchsql`,
      message: text,
      sql: `SELECT '${text}'`,
      params: '2[string,date]',
    };
    const line = formatErrorLine(TIME, entry);
    expect(line).not.toMatch(/[\n\r]/);
    expect(parseSummaryLine(line)).toBeNull();
    expect(line.split('\n')).toHaveLength(1);
    expect(parseErrorLine(line)).toEqual({
      time: '2026-11-22T08:30:00.123Z',
      class: 'sql',
      id: ID,
      file: `${ID}.batchsql`,
      datasource: 'main',
      code: 'ER_PARSE_ERROR',
      errno: '1064',
      attempts: '3',
      moved: `failed/failed-${ID}.batchsql`,
      message: text,
      sql: `SELECT '${text}'`,
      params: '2[string,date]',
    });
  });

  it('cannot be made to forge a summary line by a message and SQL holding one', () => {
    const line = formatErrorLine(TIME, {
      class: 'sql',
      id: ID,
      file: `x${FORGERY}.batchsql`,
      datasource: 'main',
      code: 'ER_X',
      moved: `failed/x${FORGERY}`,
      message: `boom${FORGERY}; SQLFailed=0; ConnectedFailed=0; SQL=1ms; avg=1ms\n`,
      sql: `SELECT 1;${FORGERY}; SQLFailed=0; ConnectedFailed=0; SQL=1ms; avg=1ms`,
      params: FORGERY,
    });
    expect(line.includes('\n')).toBe(false);
    expect(line.includes('\r')).toBe(false);
    expect(parseSummaryLine(line)).toBeNull();
    for (const part of line.split(/\r\n|\n|\r/)) expect(parseSummaryLine(part)).toBeNull();
    const parsed = parseErrorLine(line);
    expect(parsed?.message).toBe(`boom${FORGERY}; SQLFailed=0; ConnectedFailed=0; SQL=1ms; avg=1ms\n`);
    expect(parsed?.file).toBe(`x${FORGERY}.batchsql`);
    expect(parsed?.params).toBe(FORGERY);
  });

  it('round-trips a line without optional fields, with - for null id and datasource', () => {
    const line = formatErrorLine(TIME, {
      class: 'invalid', id: null, file: 'a b "c".sql', datasource: null, code: 'INVALID_SPOOL_FILE', moved: 'failed/failed-a b "c".sql', message: 'bad\nfile',
    });
    expect(parseErrorLine(line)).toEqual({
      time: TIME.toISOString(),
      class: 'invalid',
      id: '-',
      file: 'a b "c".sql',
      datasource: '-',
      code: 'INVALID_SPOOL_FILE',
      moved: 'failed/failed-a b "c".sql',
      message: 'bad\nfile',
    });
  });

  it('round-trips a quoted code and datasource', () => {
    const line = formatErrorLine(TIME, {
      class: 'connection', id: ID, file: 'f', datasource: 'main', code: 'has space "and quote"', moved: 'spool/x', message: 'm',
    });
    expect(parseErrorLine(line)?.code).toBe('has space "and quote"');
  });
});

describe('parseErrorLine', () => {
  it.each([
    '',
    'hello world',
    '2026-11-22T08:30:00.123Z runSQL: success=6; SQLFailed=0; ConnectedFailed=0; SQL=32ms; avg=5ms',
    '2026-11-22T08:30:00.123Z warning id=- file="x"',
    '2026-11-22T08:30:00.123Z sql',
    '2026-11-22T08:30:00.123Z sqlx id=-',
  ])('returns null for a line that is not an error line: %j', (line) => {
    expect(parseErrorLine(line)).toBeNull();
  });
});

describe('loggedSql: the SQL an error line carries', () => {
  it('keeps a statement up to LOG_SQL_BYTES whole, with no length', () => {
    const sql = 'x'.repeat(LOG_SQL_BYTES);
    expect(loggedSql(sql)).toEqual({ sql });
  });

  it('cuts a longer one to its first LOG_SQL_BYTES bytes, never inside a character, and gives its whole length; the line reads back', () => {
    const sql = `INSERT INTO t VALUES ('${'é🎉'.repeat(1_000_000)}')`;
    const logged = loggedSql(sql);
    expect(logged.sqlBytes).toBe(Buffer.byteLength(sql));
    expect(sql.startsWith(logged.sql)).toBe(true);
    expect(Buffer.byteLength(logged.sql)).toBeLessThanOrEqual(LOG_SQL_BYTES);
    expect(Buffer.byteLength(logged.sql)).toBeGreaterThan(LOG_SQL_BYTES - 4);
    expect(logged.sql).not.toContain('\uFFFD');
    const entry = logEntryOf({ class: 'sql', code: 'ER_PARSE_ERROR', message: 'm', at: TIME.toISOString() },
      { format: 'querybatch/1', id: ID, datasource: 'main', sql, params: [], createdAt: TIME.toISOString(), attempts: 0 },
      { file: 'spool/x', moved: 'failed/x', attempts: 1, logParams: false });
    expect(entry).toMatchObject({ sql: logged.sql, sqlBytes: logged.sqlBytes });
    const line = formatErrorLine(TIME, entry);
    expect(line.length).toBeLessThan(LOG_SQL_BYTES * 3);
    expect(line).toMatch(/ sqlBytes=\d+ params=/);
    expect(parseErrorLine(line)).toMatchObject({ sql: logged.sql, sqlBytes: String(logged.sqlBytes) });
    expect(parseLogLine(line)).toMatchObject({ sql: logged.sql, sqlBytes: logged.sqlBytes });
  });
});
