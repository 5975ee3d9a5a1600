import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { QueryBatch, parseErrorLine, type RunSummary } from '../src/index.js';
import { count, removeHome, sessionRunning, tempHome, useTestDatabase, waitFor } from './helpers.js';

/**
 * Transient errors against the real MariaDB: a real deadlock and a real lock wait timeout.
 * Another connection of the test (`other`) takes the locks the job needs.
 */
const t = useTestDatabase(
  'retry',
  'CREATE TABLE acct (id INT PRIMARY KEY, n INT NOT NULL)',
  'CREATE TABLE filler (n INT NOT NULL)',
  'CREATE TABLE gate (id INT PRIMARY KEY, v INT NOT NULL)',
);
let home: string;
let q: QueryBatch | undefined;
let other: mysql.Connection | undefined;

afterEach(async () => {
  await other?.end().catch(() => {});
  other = undefined;
  await q?.close();
  q = undefined;
  await removeHome(home);
});

/** The lines of the error log, parsed. */
async function errorLines(): Promise<Array<Record<string, string>>> {
  const text = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8').catch(() => '');
  return text.split('\n').map(parseErrorLine).filter((e): e is NonNullable<typeof e> => e !== null);
}

/** Waits until the session `id` waits for a row lock (InnoDB). */
function waitsForLock(id: number): Promise<true> {
  return waitFor(async () => {
    const [rows] = await t.db.query("SELECT 1 FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = ? AND trx_state = 'LOCK WAIT'", [id]);
    return (rows as unknown[]).length > 0 ? true : undefined;
  }, 10_000, `session ${id} to wait for a lock`);
}

describe('transient errors are retried within the run', () => {
  it('a job chosen as the victim of a real deadlock (1213) runs again and commits exactly once', async () => {
    home = await tempHome();
    await t.db.query('DELETE FROM acct');
    await t.db.query('INSERT INTO acct VALUES (1, 0), (2, 0)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, retry: { maxAttempts: 5, backoffMs: 50 } } } });
    // The job locks row 1, then row 2 (a primary-key range, in order).
    const id = await q.spool('UPDATE acct SET n = n + 1 WHERE id IN (1, 2)');

    // The other transaction holds row 2, and is made heavier than the job (1000 undo records):
    // InnoDB rolls back the lighter transaction of a deadlock, so the job is the victim.
    other = await mysql.createConnection({ uri: t.url, multipleStatements: true });
    await other.query('START TRANSACTION');
    await other.query(`INSERT INTO filler (n) VALUES ${Array.from({ length: 1000 }, (_, k) => `(${k})`).join(',')}`);
    await other.query('UPDATE acct SET n = n + 10 WHERE id = 2');

    const run = q.run();
    const job = await sessionRunning(t, '%UPDATE acct SET n = n + 1 WHERE id IN%');
    await waitsForLock(job); // holds row 1, waits for row 2
    // Closing the cycle: the other side asks for row 1. The job is rolled back (1213); this UPDATE gets row 1.
    await other.query('UPDATE acct SET n = n + 10 WHERE id = 1');
    await other.query('COMMIT');

    const summary: RunSummary = await run;
    expect(summary).toMatchObject({ success: 1, sqlFailed: 0, connectionFailed: 0 });
    expect(summary.retried).toBeGreaterThanOrEqual(1);
    // Exactly once: each row got the other side's 10 and the job's 1, once (the ledger row of
    // the rolled-back try went with it, or the retry would have been settled as done before).
    const [rows] = await t.db.query('SELECT id, n FROM acct ORDER BY id');
    expect(rows).toEqual([{ id: 1, n: 11 }, { id: 2, n: 11 }]);
    expect(summary.settled).toBe(0);
    const retries = (await errorLines()).filter((e) => e.class === 'retry');
    expect(retries[0]).toMatchObject({ id, code: 'ER_LOCK_DEADLOCK', errno: '1213', attempts: '1' });
    expect(retries).toHaveLength(summary.retried);
    expect(await q.status(id)).toMatchObject({ state: 'succeeded' });
  });

  it('a job that meets a real lock wait timeout (1205) runs again once the lock is released, and commits exactly once', async () => {
    home = await tempHome();
    await t.db.query('DELETE FROM gate');
    await t.db.query('INSERT INTO gate VALUES (1, 0)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, retry: { maxAttempts: 5, backoffMs: 1000 } } } });
    // Waits at most 1 s for the row lock (for this statement only), then fails with 1205.
    const id = await q.spool('SET STATEMENT innodb_lock_wait_timeout = 1 FOR UPDATE gate SET v = v + 1 WHERE id = 1');

    other = await mysql.createConnection({ uri: t.url });
    await other.query('START TRANSACTION');
    await other.query('SELECT * FROM gate WHERE id = 1 FOR UPDATE');

    const started = Date.now();
    const run = q.run();
    // The first try timed out and was logged; release the lock while the job waits to run again.
    const first = await waitFor(async () => (await errorLines()).find((e) => e.class === 'retry'), 10_000, 'a retry line');
    await other.query('COMMIT');

    const summary = await run;
    expect(first).toMatchObject({ id, code: 'ER_LOCK_WAIT_TIMEOUT', errno: '1205', attempts: '1' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(summary).toMatchObject({ success: 1, sqlFailed: 0 });
    expect(summary.retried).toBeGreaterThanOrEqual(1);
    // Once: with innodb_rollback_on_timeout off (the default) the server rolled back only the statement;
    // the session rolled back the ledger row (else the retry would be settled as done before).
    const [rows] = await t.db.query('SELECT v FROM gate WHERE id = 1');
    expect(rows).toEqual([{ v: 1 }]);
    expect(summary.settled).toBe(0);
  });

  it('after maxAttempts lock wait timeouts the job goes to failed/ as an SQL error, and nothing of it committed', async () => {
    home = await tempHome();
    await t.db.query('DELETE FROM gate');
    await t.db.query('INSERT INTO gate VALUES (1, 0)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, retry: { maxAttempts: 2, backoffMs: 10 } } } });
    const id = await q.spool('SET STATEMENT innodb_lock_wait_timeout = 1 FOR UPDATE gate SET v = v + 1 WHERE id = 1');
    other = await mysql.createConnection({ uri: t.url });
    await other.query('START TRANSACTION');
    await other.query('SELECT * FROM gate WHERE id = 1 FOR UPDATE');

    const summary = await q.run();
    await other.query('COMMIT');
    expect(summary).toMatchObject({ success: 0, sqlFailed: 1, retried: 1 });
    expect(await q.status(id)).toMatchObject({ state: 'failed', class: 'sql', code: 'ER_LOCK_WAIT_TIMEOUT', attempts: 1 });
    const [rows] = await t.db.query('SELECT v FROM gate WHERE id = 1');
    expect(rows).toEqual([{ v: 0 }]);
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE id = ?', [id])).toBe(0);
  });
});
