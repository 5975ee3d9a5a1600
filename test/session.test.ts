import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { QueryBatch } from '../src/index.js';
import { lockNameFor } from '../src/db/mysql/dialect.js';
import { count, removeHome, sessionRunning, tempHome, useTestDatabase } from './helpers.js';

/**
 * Session isolation: a job's session state (autocommit, variables, the current database,
 * foreign-key checks, the SQL mode) never leaks into the jobs after it, in the same run or
 * a later one; the datasource's init statements run on every new connection and after
 * every reset; the drain keeps its lock across resets.
 */
const t = useTestDatabase(
  'session',
  'CREATE TABLE rows_seen (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB',
  'CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB',
  'CREATE TABLE child (id INT PRIMARY KEY, parent_id INT NOT NULL, FOREIGN KEY (parent_id) REFERENCES parent (id)) ENGINE=InnoDB',
  "CREATE PROCEDURE add_row(IN what VARCHAR(40)) INSERT INTO rows_seen (v) VALUES (what)",
);
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
  await t.db.query('DELETE FROM child');
  await t.db.query('DELETE FROM parent');
  await t.db.query('TRUNCATE rows_seen');
});

async function seen(): Promise<Array<string | null>> {
  const [rows] = await t.db.query('SELECT v FROM rows_seen ORDER BY n');
  return (rows as Array<{ v: string | null }>).map((r) => r.v);
}

describe('session isolation', () => {
  for (const ledger of [true, false] as const) {
    it(`a dropped-in SET AUTOCOMMIT=0 no longer makes a later CALL's rows vanish (ledger ${ledger ? 'on' : 'off'})`, async () => {
      home = await tempHome();
      q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger } } });
      await q.spool('SET AUTOCOMMIT=0');
      await q.spool("CALL add_row('same run')");
      expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 0 });
      // A later run of the same process takes the same pooled connection.
      await q.spool('SET autocommit = OFF');
      expect(await q.run()).toMatchObject({ success: 1 });
      await q.spool("CALL add_row('later run')");
      expect(await q.run()).toMatchObject({ success: 1 });
      await q.close(); // the connection closes: rows of an open transaction would be rolled back now
      q = undefined;
      expect(await seen()).toEqual(['same run', 'later run']);
    });
  }

  it('user variables, USE, FOREIGN_KEY_CHECKS and sql_mode set by one job do not reach the next', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await q.spool('SET @who = ?', ['leaked']);
    await q.spool('INSERT INTO rows_seen (v) VALUES (@who)');
    await q.spool('USE information_schema');
    await q.spool("INSERT INTO rows_seen (v) VALUES ('in the datasource database')");
    await q.spool('SET FOREIGN_KEY_CHECKS = 0');
    await q.spool('INSERT INTO child (id, parent_id) VALUES (1, 99)');
    await q.spool("SET SESSION sql_mode = ''");
    await q.spool("INSERT INTO rows_seen (v) VALUES ('a value far too long for a column of forty characters')");
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 6, sqlFailed: 2 });
    expect(await seen()).toEqual([null, 'in the datasource database']);
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM child')).toBe(0);
    const errors = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8');
    expect(errors).toMatch(/code=ER_NO_REFERENCED_ROW_2/);
    expect(errors).toMatch(/code=ER_DATA_TOO_LONG/);
  });

  it('runs the datasource\'s init statements on a new connection and again after each reset', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, init: ["SET @origin = 'init'", "SET SESSION time_zone = '+05:00'"] } } });
    await q.spool("INSERT INTO rows_seen (v) VALUES (CONCAT(@origin, ' ', @@session.time_zone))");
    await q.spool("SET @origin = 'changed by a job'");
    await q.spool("SET SESSION time_zone = '+00:00'");
    await q.spool("INSERT INTO rows_seen (v) VALUES (CONCAT(@origin, ' ', @@session.time_zone))");
    expect(await q.run()).toMatchObject({ success: 4 });
    expect(await seen()).toEqual(['init +05:00', 'init +05:00']);
  });

  it('refuses init that is not a list of SQL statements', () => {
    expect(() => new QueryBatch({ home: '/tmp', configFile: false, datasources: { main: { url: t.url, init: 'SET x = 1' as unknown as string[] } } })).toThrow(/Expected datasource "main" init to be a list of SQL statements/);
    expect(() => new QueryBatch({ home: '/tmp', configFile: false, datasources: { main: { url: t.url, init: ['SET @a = 1', '  '] } } })).toThrow(/Expected datasource "main" init\[1\] to be an SQL statement/);
  });

  it('keeps the datasource lock across a reset: another runner still finds it held', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await q.spool('SET @x = 1');
    await q.spool('SELECT SLEEP(2)');
    const running = q.run();
    await sessionRunning(t, 'SELECT SLEEP(2)%');
    const spoolId = (await readFile(join(home, 'spool', '.id'), 'utf8')).trim();
    const other = await mysql.createConnection({ uri: t.url });
    try {
      const [rows] = await other.query('SELECT IS_FREE_LOCK(?) AS free', [lockNameFor(spoolId, 'main')]);
      expect(Number((rows as Array<{ free: unknown }>)[0]?.free)).toBe(0);
    } finally {
      await other.end();
    }
    expect(await running).toMatchObject({ success: 2 });
  });
});
