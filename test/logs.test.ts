import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { LOG_SQL_BYTES, parseErrorLine, parseSummaryLine } from '../src/ops/log-format.js';
import { removeHome, tempHome, useTestDatabase } from './helpers.js';

const t = useTestDatabase('logs');
let home: string;
let q: QueryBatch;

afterEach(async () => {
  await q.close();
  await removeHome(home);
});

describe('logs', () => {
  it('rotate by size, keeping logs.maxFiles files of about logs.maxSize each, newest in querybatch-error.log', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url }, logs: { maxSize: 2048, maxFiles: 3 } });
    let last = '';
    for (let run = 0; run < 10; run++) {
      for (let i = 0; i < 5; i++) last = await q.spool('INSERT INTO not_there VALUES (?)', [i]);
      await q.run();
    }
    await q.close();
    // logs/outcomes/ (status by id) sits beside the log files; only the logs rotate.
    const files = (await readdir(join(home, 'logs'))).filter((f) => f.endsWith('.log')).sort();
    expect(files).toEqual(['querybatch-error.log', 'querybatch-error1.log', 'querybatch-error2.log', 'querybatch.log']);
    let lines: string[] = [];
    for (const f of files.filter((f) => f.includes('error'))) {
      const size = (await stat(join(home, 'logs', f))).size;
      // At most two bursts past the limit: a run's refused statements (5 here) settle together
      // and their lines are written at once; winston checks the size as a write completes and not
      // while it is opening the next file, so the burst after a rotation is not counted either.
      // (All 50 lines in one file would be about 18 KB.)
      expect(size, f).toBeLessThan(2048 + 2 * 5 * 400);
      const text = await readFile(join(home, 'logs', f), 'utf8');
      if (text) lines = lines.concat(text.trim().split('\n'));
    }
    for (const line of lines) expect(parseErrorLine(line), line).not.toBeNull();
    // Rotation dropped the oldest lines, never the newest.
    expect(lines.length).toBeLessThan(50);
    expect(lines.some((l) => l.includes(`id=${last}`))).toBe(true);
    const summaries = (await readFile(join(home, 'logs', 'querybatch.log'), 'utf8')).trim().split('\n');
    expect(summaries.map((l) => parseSummaryLine(l)?.sqlFailed)).toEqual(Array(10).fill(5));
  });

  it('hostile SQL and error text cannot forge a log line', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const forged = 'SELECT * FROM nope_table\n2026-01-01T00:00:00Z runSQL: success=999; SQLFailed=0; ConnectedFailed=0; SQL=1ms; avg=1ms\r\u0007\u001b[31m';
    const id = await q.spool(forged);
    await q.spool("SELECT 'line1\nline2' FROM nope_table2");
    await q.run();
    await q.close();
    const summary = (await readFile(join(home, 'logs', 'querybatch.log'), 'utf8')).split('\n').filter(Boolean);
    expect(summary).toHaveLength(1);
    expect(parseSummaryLine(summary[0]!)).toMatchObject({ success: 0, sqlFailed: 2 });
    const errors = (await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8')).split('\n').filter(Boolean);
    expect(errors).toHaveLength(2);
    // eslint-disable-next-line no-control-regex -- the control characters a forged SQL text carried must not reach the log
    expect(errors.join('\n')).not.toMatch(/[\r\u0007\u001b]/);
    const first = parseErrorLine(errors[0]!)!;
    expect(first).toMatchObject({ id, class: 'sql', sql: forged });
  });

  it('an error line carries a long statement by its first LOG_SQL_BYTES bytes and its whole length; failed/ keeps it whole', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const sql = `SELECT * FROM nope_long WHERE note = '${'ü'.repeat(200_000)}'`;
    const id = await q.spool(sql);
    await q.run();
    await q.close();
    const [line] = (await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8')).split('\n').filter(Boolean);
    expect(line!.length).toBeLessThan(3 * LOG_SQL_BYTES);
    const entry = parseErrorLine(line!)!;
    expect(entry).toMatchObject({ id, class: 'sql', sqlBytes: String(Buffer.byteLength(sql)) });
    expect(sql.startsWith(entry.sql!)).toBe(true);
    expect(Buffer.byteLength(entry.sql!)).toBeGreaterThan(LOG_SQL_BYTES - 2);
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const [logged] = await q.logs({ errors: true });
    expect(logged!.record).toMatchObject({ sqlBytes: Buffer.byteLength(sql) });
    expect((await q.failedFile(`failed-${id}.batchsql`)).sql).toBe(sql);
  });

  it('a run that stops on file I/O (RUN_IO_FAILED) is logged as a run line of the error log, its system code said once', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await q.spool('SELECT 1');
    // The runner's claim directory is a file: claiming in it fails with ENOTDIR.
    await mkdir(join(home, 'spool', '.active'), { recursive: true });
    await writeFile(join(home, 'spool', '.active', q.runnerName), 'not a directory');
    await expect(q.run()).rejects.toMatchObject({ code: 'RUN_IO_FAILED', message: expect.stringMatching(/^Datasource "main" stopped: ENOTDIR: not a directory, mkdir /) });
    await q.close();
    const lines = (await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8')).split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\S+ run datasource=main code=RUN_IO_FAILED message="Datasource \\"main\\" stopped: ENOTDIR: not a directory, mkdir /);
    expect(parseErrorLine(lines[0]!)).toMatchObject({ class: 'run', datasource: 'main', code: 'RUN_IO_FAILED' });
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    expect((await q.logs({ errors: true, datasource: 'main' })).map((e) => e.record)).toEqual([expect.objectContaining({ log: 'error', class: 'run', code: 'RUN_IO_FAILED' })]);
  });
});
