/**
 * A refused group again under savepoints (issue 15, db/savepoints.ts, Session.executeEach):
 * after a group commit is refused, its jobs go again in ONE ledger transaction, each under a
 * savepoint, instead of one ledger transaction each. What that must keep, on every dialect:
 * the good jobs committed once, in order, with their ledger rows and no other; each refused
 * job in failed/ once, logged once, counted; a job the ledger holds already not run again.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readFile } from 'node:fs/promises';
import mysql from 'mysql2/promise';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { parseErrorLine } from '../src/ops/log-format.js';
import { decodeRecord } from '../src/spool/record.js';
import { MysqlSession } from '../src/db/mysql/session.js';
import { PostgresSession } from '../src/db/postgres/session.js';
import { SqliteSession } from '../src/db/sqlite/session.js';
import { DIALECTS, type FixtureDatabase } from './dialects.js';
import { count, cuttingProxy, failedNames, removeHome, tempHome, useTestDatabase, waitFor } from './helpers.js';

const SESSIONS = { mariadb: MysqlSession, postgres: PostgresSession, sqlite: SqliteSession } as const;

/** The code each dialect gives a duplicate key. */
const DUPLICATE = { mariadb: 'ER_DUP_ENTRY', postgres: '23505', sqlite: 'SQLITE_CONSTRAINT_PRIMARYKEY' } as const;

describe.each(DIALECTS)('refused groups under savepoints: $name', (dialect) => {
  let home: string;
  let db: FixtureDatabase;

  beforeEach(async () => {
    home = await tempHome();
    db = await dialect.open(home);
    await db.exec(dialect.table('sp'));
  });

  /** A runner on `db` whose seed row (k = 1: a job inserting k = 1 is refused, a duplicate key) made the ledger table. */
  async function seeded(batch: number): Promise<QueryBatch> {
    const q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: { url: db.url, ledger: { batch } } } });
    await q.spool("INSERT INTO sp (v) VALUES ('seed')");
    expect(await q.run()).toMatchObject({ success: 1 });
    return q;
  }

  afterEach(async () => {
    vi.restoreAllMocks();
    await db.close();
    await removeHome(home);
  });

  it('a group of 50 with 10 refused jobs interleaved and one the ledger holds: the 39 others commit once, in order, with their ledger rows only; each refused one in failed/ once, logged once', async () => {
    const q = await seeded(50);
    const session = SESSIONS[dialect.name].prototype;
    const each = vi.spyOn(session, 'executeEach');
    const once = vi.spyOn(session, 'executeOnce');
    try {
      const bad = (k: number) => k % 5 === 3;
      const ids: string[] = [];
      for (let k = 0; k < 50; k++) ids.push(bad(k) ? await q.spool('INSERT INTO sp (k, v) VALUES (1, ?)', [`job ${k}`]) : await q.spool('INSERT INTO sp (v) VALUES (?)', [`job ${k}`]));
      // Job 20 committed before (a runner died before removing its file): the ledger has it.
      await db.exec(`INSERT INTO querybatch_ledger (id, spool) VALUES ('${ids[20]}', 'x')`);
      // Without upkeep: the ledger rows stay (a run's prune deletes those of jobs whose files are gone).
      const summary = await q.run({ upkeep: false });
      expect(summary).toMatchObject({ success: 39, settled: 1, sqlFailed: 10, deferred: 0 });
      // One group, refused, then again under savepoints: no job went alone.
      expect(each).toHaveBeenCalledTimes(1);
      expect(await each.mock.results[0]!.value).not.toBeNull();
      expect(once).not.toHaveBeenCalled();

      const good = [...ids.keys()].filter((k) => !bad(k) && k !== 20);
      expect((await db.query('SELECT v FROM sp ORDER BY k')).map((r) => String(r.v))).toEqual(['seed', ...good.map((k) => `job ${k}`)]);
      const ledger = (await db.query('SELECT id FROM querybatch_ledger')).map((r) => String(r.id));
      expect(ledger.sort()).toEqual([...good, 20].map((k) => ids[k]!).sort());

      const refused = ids.filter((_, k) => bad(k));
      expect((await failedNames(home)).sort()).toEqual(refused.map((id) => `failed-${id}.batchsql`).sort());
      for (const id of refused) {
        const record = decodeRecord(await readFile(join(home, 'failed', `failed-${id}.batchsql`), 'utf8'));
        expect(record).toMatchObject({ id, attempts: 1, lastError: { class: 'sql' } });
        expect(record.lastError!.code === DUPLICATE[dialect.name] || record.lastError!.sqlState === DUPLICATE[dialect.name]).toBe(true);
      }
      const log = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8');
      const logged = log.split('\n').filter(Boolean).map((line) => parseErrorLine(line)).filter((e) => e?.class === 'sql').map((e) => e!.id!);
      expect(logged.sort()).toEqual([...refused].sort());
    } finally {
      await q.close();
    }
  }, 60_000);

  it('a group whose last job is refused, and one whose every job is: nothing of them commits but the good ones', async () => {
    const q = await seeded(4);
    try {
      // Groups of 4: [good, good, good, refused], [refused x4], [good, refused].
      const plan = ['g', 'g', 'g', 'r', 'r', 'r', 'r', 'r', 'g', 'r'];
      const ids: string[] = [];
      for (const [k, p] of plan.entries()) ids.push(await q.spool(p === 'r' ? 'INSERT INTO sp (k, v) VALUES (1, ?)' : 'INSERT INTO sp (v) VALUES (?)', [`job ${k}`]));
      expect(await q.run({ upkeep: false })).toMatchObject({ success: 4, sqlFailed: 6 });
      expect((await db.query('SELECT v FROM sp ORDER BY k')).map((r) => String(r.v))).toEqual(['seed', 'job 0', 'job 1', 'job 2', 'job 8']);
      const ledger = (await db.query('SELECT id FROM querybatch_ledger')).map((r) => String(r.id));
      expect(ledger.sort()).toEqual([0, 1, 2, 8].map((k) => ids[k]!).sort());
      expect((await failedNames(home)).length).toBe(6);
    } finally {
      await q.close();
    }
  }, 60_000);
});

describe('refused groups under savepoints: MariaDB', () => {
  const t = useTestDatabase('failpath2');

  it('lost with the last trip, whose COMMIT the server still runs: each job commits once in all, the refused one in failed/ once', async () => {
    await t.db.query('CREATE TABLE cut (k INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100))');
    await t.db.query("INSERT INTO cut (v) VALUES ('seed')");
    const target = new URL(t.url);
    // The proxy forwards the trip after the refused job (it starts with ROLLBACK TO SAVEPOINT), then cuts the client.
    const proxy = await cuttingProxy({ host: target.hostname, port: Number(target.port || 3306) }, 'ROLLBACK TO SAVEPOINT');
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: { url: `mysql://root@127.0.0.1:${proxy.port}/${t.name}`, ledger: { batch: 4 } } } });
    try {
      const plan = ['g', 'r', 'g', 'g'];
      const ids: string[] = [];
      for (const [k, p] of plan.entries()) ids.push(await q.spool(p === 'r' ? 'INSERT INTO cut (k, v) VALUES (1, ?)' : 'INSERT INTO cut (v) VALUES (?)', [`job ${k}`]));
      proxy.arm();
      // The server ran the trip to its COMMIT (jobs 0, 2, 3); the client never heard. The ledger
      // says job 0 committed; the others go back untouched, to be found in the ledger.
      expect(await q.run({ upkeep: false })).toMatchObject({ success: 1, sqlFailed: 0, connectionFailed: 0, deferred: 3 });
      expect(proxy.cuts).toBe(1);
      const totals = { success: 1, settled: 0, sqlFailed: 0 };
      for (let i = 0; i < 50 && totals.settled + totals.sqlFailed < 3; i++) {
        const summary = await q.run({ upkeep: false });
        totals.success += summary.success;
        totals.settled += summary.settled;
        totals.sqlFailed += summary.sqlFailed;
        if (summary.datasources.main?.busy === true) await new Promise((r) => setTimeout(r, 100)); // the cut session holds the lock a moment
      }
      expect(totals).toEqual({ success: 1, settled: 2, sqlFailed: 1 });
      const [rows] = await t.db.query('SELECT v FROM cut ORDER BY k');
      expect((rows as Array<{ v: string }>).map((r) => r.v)).toEqual(['seed', 'job 0', 'job 2', 'job 3']);
      const [ledger] = await t.db.query('SELECT id FROM querybatch_ledger WHERE id IN (?) ORDER BY id', [ids]);
      expect((ledger as Array<{ id: string }>).map((r) => r.id)).toEqual([ids[0], ids[2], ids[3]]);
      expect(await failedNames(home)).toEqual([`failed-${ids[1]}.batchsql`]);
    } finally {
      await q.close();
      await proxy.close();
      await removeHome(home);
    }
  }, 60_000);

  it("a refused statement's message quotes its own text, not the savepoint statements sent after it", async () => {
    await t.db.query('CREATE TABLE quoted (k INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100))');
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: { url: t.url, ledger: { batch: 3 } } } });
    try {
      await q.spool('INSERT INTO quoted (v) VALUES (?)', ['a']);
      const bad = await q.spool('INSERT INTO quoted (v) VALUES (?) ORDER', ['b']);
      await q.spool('INSERT INTO quoted (v) VALUES (?)', ['c']);
      expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 1 });
      const record = decodeRecord(await readFile(join(home, 'failed', `failed-${bad}.batchsql`), 'utf8'));
      expect(record.lastError).toMatchObject({ code: 'ER_PARSE_ERROR' });
      // What the server says of the statement sent alone.
      const alone = await t.db.query("INSERT INTO quoted (v) VALUES ('b') ORDER").then(() => '', (error: Error) => error.message);
      expect(alone).toMatch(/near '' at line 1$/);
      expect(record.lastError!.message).toBe(alone);
    } finally {
      await q.close();
      await removeHome(home);
    }
  });

  it('a transient error under savepoints (a lock wait timeout) rolls it all back: the jobs go one by one, the waiting one is retried, not failed', async () => {
    await t.db.query('CREATE TABLE waits (k INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100))');
    await t.db.query('CREATE TABLE gate (id INT PRIMARY KEY, v INT NOT NULL)');
    await t.db.query("INSERT INTO waits (v) VALUES ('seed')");
    await t.db.query('INSERT INTO gate VALUES (1, 0)');
    const home = await tempHome();
    const q = new QueryBatch({
      home, configFile: false, dropInSettleMs: 0,
      datasources: { main: { url: t.url, init: ['SET SESSION innodb_lock_wait_timeout = 1'], ledger: { batch: 4 }, retry: { maxAttempts: 5, backoffMs: 500 } } },
    });
    const other = await mysql.createConnection({ uri: t.url });
    const each = vi.spyOn(MysqlSession.prototype, 'executeEach');
    try {
      const a = await q.spool('INSERT INTO waits (v) VALUES (?)', ['a']);
      const gate = await q.spool('UPDATE gate SET v = v + 1 WHERE id = ?', [1]);
      const b = await q.spool('INSERT INTO waits (v) VALUES (?)', ['b']);
      const refused = await q.spool('INSERT INTO waits (k, v) VALUES (1, ?)', ['c']);
      await other.query('START TRANSACTION');
      await other.query('SELECT * FROM gate WHERE id = 1 FOR UPDATE');
      const run = q.run({ upkeep: false });
      // The group's try and the savepoints' both wait 1 s and give up; then the UPDATE alone, retried: release the lock.
      await waitFor(async () => ((await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8').catch(() => '')).includes(`retry id=${gate}`) ? true : undefined), 20_000, 'a retry line');
      await other.query('COMMIT');
      const summary = await run;
      expect(summary).toMatchObject({ success: 3, sqlFailed: 1 });
      expect(summary.retried).toBeGreaterThanOrEqual(1);
      // The group went under savepoints once, and gave up there (all rolled back).
      expect(each).toHaveBeenCalledTimes(1);
      expect(await each.mock.results[0]!.value).toBeNull();
      const [rows] = await t.db.query('SELECT v FROM waits ORDER BY k');
      expect((rows as Array<{ v: string }>).map((r) => r.v)).toEqual(['seed', 'a', 'b']);
      expect(await count(t.db, 'SELECT v AS c FROM gate WHERE id = 1')).toBe(1);
      const [ledger] = await t.db.query('SELECT id FROM querybatch_ledger WHERE id IN (?, ?, ?, ?) ORDER BY id', [a, gate, b, refused]);
      expect((ledger as Array<{ id: string }>).map((r) => r.id)).toEqual([a, gate, b]);
      expect(await failedNames(home)).toEqual([`failed-${refused}.batchsql`]);
    } finally {
      each.mockRestore();
      await other.end();
      await q.close();
      await removeHome(home);
    }
  }, 60_000);

  it("a group stopped by its time limit goes one by one at once, not under savepoints (where the slow job would use up the group's limit again)", async () => {
    await t.db.query('CREATE TABLE slow (k INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100))');
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, timeoutMs: 1000, datasources: { main: { url: t.url, ledger: { batch: 3 } } } });
    const each = vi.spyOn(MysqlSession.prototype, 'executeEach');
    try {
      await q.spool('INSERT INTO slow (v) VALUES (?)', ['a']);
      const sleeper = await q.spool('INSERT INTO slow (v) SELECT SLEEP(30)');
      await q.spool('INSERT INTO slow (v) VALUES (?)', ['b']);
      expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 1 });
      expect(each).not.toHaveBeenCalled();
      const [rows] = await t.db.query('SELECT v FROM slow ORDER BY k');
      expect((rows as Array<{ v: string }>).map((r) => r.v)).toEqual(['a', 'b']);
      expect(await failedNames(home)).toEqual([`failed-${sleeper}.batchsql`]);
    } finally {
      each.mockRestore();
      await q.close();
      await removeHome(home);
    }
  }, 60_000);
});
