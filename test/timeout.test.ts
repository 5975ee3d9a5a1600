import { afterEach, describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch, parseErrorLine, type Outcome } from '../src/index.js';
import { decodeRecord } from '../src/spool/record.js';
import { removeHome, tempHome, useTestDatabase } from './helpers.js';

const t = useTestDatabase('timeout', 'CREATE TABLE after_sleep (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))');
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
  await t.db.query('TRUNCATE after_sleep');
});

/** Statements of this test's database still running on the server. */
async function sleepersOnServer(): Promise<unknown[]> {
  const [rows] = await t.db.query("SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE '%SLEEP(30)%' AND INFO NOT LIKE '%PROCESSLIST%'", [t.name]);
  return rows as unknown[];
}

describe('execution timeout', () => {
  for (const ledger of [true, false] as const) {
    it(`stops SELECT SLEEP(30) with timeoutMs 1000 on the server, fails it as timeout within 2 s, and runs the next statement (ledger ${ledger ? 'on' : 'off'})`, async () => {
      home = await tempHome();
      q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger } } });
      const before = await q.spool('INSERT INTO after_sleep (v) VALUES (?)', ['before']);
      const sleeper = await q.spool('SELECT SLEEP(30)', [], { timeoutMs: 1000 });
      const after = await q.spool('INSERT INTO after_sleep (v) VALUES (?)', ['after']);
      const failed: Outcome[] = [];
      q.on('failed', (o) => failed.push(o));

      const summary = await q.run();

      expect(summary).toMatchObject({ success: 2, sqlFailed: 1, connectionFailed: 0 });
      expect(await sleepersOnServer()).toEqual([]);
      const [rows] = await t.db.query('SELECT v FROM after_sleep ORDER BY n');
      expect((rows as Array<{ v: string }>).map((r) => r.v)).toEqual(['before', 'after']);
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ id: sleeper, class: 'timeout', code: 'STATEMENT_TIMEOUT', file: `failed-${sleeper}.batchsql` });
      expect(failed[0]!.durationMs).toBeGreaterThanOrEqual(1000);
      expect(failed[0]!.durationMs).toBeLessThan(2000);

      const record = decodeRecord(await readFile(join(home, 'failed', `failed-${sleeper}.batchsql`), 'utf8'));
      expect(record.lastError).toMatchObject({ class: 'timeout', code: 'STATEMENT_TIMEOUT' });
      expect(record.lastError?.message).toMatch(/^Expected the statement to finish within 1000 ms \(timeoutMs\); it was stopped on the server after \d+ ms$/);
      const line = parseErrorLine((await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8')).trim());
      expect(line).toMatchObject({ class: 'timeout', id: sleeper, code: 'STATEMENT_TIMEOUT', sql: 'SELECT SLEEP(30)' });
      expect(await q.status(sleeper)).toMatchObject({ state: 'failed', class: 'timeout' });
      expect(await q.status(before)).toMatchObject({ state: 'succeeded' });
      expect(await q.status(after)).toMatchObject({ state: 'succeeded' });
    });
  }

  it('applies the configured default limit to jobs without their own, also when they were batched together', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, timeoutMs: 1000, datasources: { main: t.url } });
    await q.spool('INSERT INTO after_sleep (v) VALUES (?)', ['a']);
    const sleeper = await q.spool('SELECT SLEEP(30)');
    await q.spool('INSERT INTO after_sleep (v) VALUES (?)', ['b']);
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 2, sqlFailed: 1, connectionFailed: 0 });
    expect(await sleepersOnServer()).toEqual([]);
    const [rows] = await t.db.query('SELECT v FROM after_sleep ORDER BY n');
    expect((rows as Array<{ v: string }>).map((r) => r.v)).toEqual(['a', 'b']);
    expect(await readdir(join(home, 'failed'))).toEqual([`failed-${sleeper}.batchsql`]);
  });

  it('lets a statement that finishes in time succeed, and timeoutMs: 0 means no limit', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, timeoutMs: 0, datasources: { main: t.url } });
    await q.spool('SELECT SLEEP(0.3)', [], { timeoutMs: 5000 });
    await q.spool('SELECT SLEEP(1.2)');
    expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 0 });
  });
});
