import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { Session } from '../src/db/driver.js';
import { scriptStatementKey } from '../src/db/driver.js';
import { advisoryKeyFor } from '../src/db/postgres/index.js';
import { PostgresDriver } from '../src/db/postgres/driver.js';
import { usePgTestDatabase } from './helpers.js';

/**
 * The PostgreSQL session below the runner: the ledger's answers (done-before, rollback of a
 * whole batch, script steps in and out of a script's transaction, progress, prune), the
 * lock kept across DISCARD ALL, and streaming.
 */
const t = usePgTestDatabase('pgdriver', 'CREATE TABLE items (n INT PRIMARY KEY, v TEXT)');
const SPOOL = 'SPOOL0123456789ABCDEFGHJ';
let driver: PostgresDriver;
let session: Session;

beforeEach(async () => {
  driver = new PostgresDriver({ url: t.url, home: '/tmp', init: ["SET application_name = 'qb-driver-test'"], options: {}, ledger: { table: 'querybatch_ledger', spool: SPOOL } });
  session = await driver.connect();
});

afterEach(async () => {
  session.destroy();
  await driver.close();
  await t.db.query('TRUNCATE items, querybatch_ledger');
});

const rows = async () => (await t.db.query<{ n: number; v: string }>('SELECT n, v FROM items ORDER BY n')).rows;
const ledgerIds = async () => (await t.db.query<{ id: string }>('SELECT id FROM querybatch_ledger ORDER BY id')).rows.map((r) => r.id);

describe('PostgreSQL session', () => {
  it('executeOnce: a second run of an id is done-before and runs nothing, both on the one-trip and the bound path', async () => {
    expect(await session.executeOnce('A1', 'INSERT INTO items VALUES (?, ?)', [1, 'one'])).toEqual({ status: 'done', affectedRows: 1 });
    expect(await session.executeOnce('A1', 'INSERT INTO items VALUES (?, ?)', [2, 'two'])).toEqual({ status: 'done-before' });
    // $n of its own: bound, four round trips.
    expect(await session.executeOnce('A2', 'INSERT INTO items VALUES ($1, $2)', [3, 'three'])).toEqual({ status: 'done', affectedRows: 1 });
    expect(await session.executeOnce('A2', 'INSERT INTO items VALUES ($1, $2)', [4, 'four'])).toEqual({ status: 'done-before' });
    expect(await rows()).toEqual([{ n: 1, v: 'one' }, { n: 3, v: 'three' }]);
    expect(await session.isDone('A1')).toBe(true);
    expect(await session.isDone('A3')).toBe(false);
  });

  it('executeOnce: a refused statement rolls its ledger row back and rejects with its SQLSTATE', async () => {
    await expect(session.executeOnce('B1', 'INSERT INTO items VALUES (?, ?)', ['x', 'bad'])).rejects.toMatchObject({ code: '22P02' });
    expect(await ledgerIds()).toEqual([]);
    expect(await session.executeOnce('B2', 'INSERT INTO items VALUES (?, ?)', [5, 'five'])).toEqual({ status: 'done', affectedRows: 1 });
  });

  it('executeBatch: one transaction for all; a failing job rolls back every job and every ledger row', async () => {
    const jobs = [1, 2, 3].map((n) => ({ id: `C${n}`, sql: 'INSERT INTO items VALUES (:n, :v)', params: { n, v: `v${n}` } }));
    expect(await session.executeBatch(jobs)).toEqual([1, 1, 1]);
    const failing = [{ id: 'D1', sql: 'INSERT INTO items VALUES (?, ?)', params: [10, 'ten'] }, { id: 'D2', sql: 'INSERT INTO items VALUES (?, ?)', params: [1, 'dup'] }];
    await expect(session.executeBatch(failing)).rejects.toMatchObject({ code: '23505' });
    expect((await rows()).map((r) => r.n)).toEqual([1, 2, 3]);
    expect(await ledgerIds()).toEqual(['C1', 'C2', 'C3']);
    // What it can't write into one text goes one by one.
    expect(await session.executeBatch([{ id: 'E1', sql: 'INSERT INTO items VALUES (?, ?)', params: [20] }])).toBeNull();
    expect(await session.executeBatch([{ id: 'E2', sql: 'VACUUM items', params: [] }])).toBeNull();
  });

  it('script steps: own transactions, the script\'s open one (a rollback takes its rows), progress, and done-before', async () => {
    const key = (i: number) => scriptStatementKey('S1', i);
    expect(await session.executeScriptStep({ sql: "INSERT INTO items VALUES (1, 'a')", role: 'transactional', key: key(1) })).toEqual({ affectedRows: 1, inTransaction: false, doneBefore: false });
    expect(await session.executeScriptStep({ sql: 'BEGIN', role: 'control', key: null })).toMatchObject({ inTransaction: true });
    expect(await session.executeScriptStep({ sql: "INSERT INTO items VALUES (2, 'b')", role: 'transactional', key: key(3) })).toEqual({ affectedRows: 1, inTransaction: true, doneBefore: false });
    expect(await session.executeScriptStep({ sql: 'ROLLBACK', role: 'control', key: null })).toMatchObject({ inTransaction: false });
    expect(await session.scriptProgress('S1')).toBe(1);
    expect(await session.executeScriptStep({ sql: "INSERT INTO items VALUES (9, 'again')", role: 'transactional', key: key(1) })).toMatchObject({ doneBefore: true });
    expect(await session.executeScriptStep({ sql: 'CREATE INDEX CONCURRENTLY items_v ON items (v)', role: 'other', key: key(4) })).toMatchObject({ inTransaction: false, doneBefore: false });
    expect(await session.scriptProgress('S1')).toBe(4);
    // A failed statement in the script's transaction: the session resets cleanly after it.
    await session.executeScriptStep({ sql: 'BEGIN', role: 'control', key: null });
    await expect(session.executeScriptStep({ sql: 'SELECT 1/0', role: 'transactional', key: key(6) })).rejects.toMatchObject({ code: '22012' });
    await session.reset();
    expect((await rows()).map((r) => r.n)).toEqual([1]);
  });

  it('pruneLedger deletes this spool\'s rows before an id only', async () => {
    await t.db.query("INSERT INTO querybatch_ledger (id, spool) VALUES ('P1', $1), ('P2', $1), ('P3', $1), ('P0', 'OTHER')", [SPOOL]);
    expect(await session.pruneLedger('P3')).toBe(2);
    expect(await ledgerIds()).toEqual(['P0', 'P3']);
  });

  it('keeps the datasource lock across DISCARD ALL, and a second session finds it busy until unlock', async () => {
    const key = advisoryKeyFor(SPOOL, 'main');
    expect(await session.tryLock(key)).toBe(true);
    await session.execute('SELECT pg_advisory_lock(42)', []);
    await session.reset();
    const other = await driver.connect();
    try {
      expect(await other.tryLock(key)).toBe(false);
      // The job's own advisory lock went with the reset.
      const taken = (await t.db.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(42) AS ok')).rows[0]!.ok;
      expect(taken).toBe(true);
      await t.db.query('SELECT pg_advisory_unlock(42)');
      await session.unlock(key);
      expect(await other.tryLock(key)).toBe(true);
      await other.unlock(key);
    } finally {
      other.release();
    }
  });

  it('reset: settings, temporary tables and an open transaction are gone, the init statements run again', async () => {
    await session.execute('SET search_path TO pg_catalog', []);
    await session.execute('CREATE TEMP TABLE scratch (a int)', []);
    await session.executeScriptStep({ sql: 'BEGIN', role: 'control', key: null });
    await session.reset();
    await expect(session.execute('SELECT * FROM scratch', [])).rejects.toMatchObject({ code: '42P01' });
    const stream: unknown[][] = [];
    await session.stream("SELECT current_setting('search_path'), current_setting('application_name')", [], () => {}, (row) => Promise.resolve(void stream.push(row)));
    expect(stream).toEqual([['"$user", public', 'qb-driver-test']]);
  });

  it('cancel stops the running statement on the server; the session stays usable', async () => {
    const running = session.execute('SELECT pg_sleep(10)', []).then(() => 'finished', (error: unknown) => error);
    await new Promise((r) => setTimeout(r, 200));
    await session.cancel();
    expect(await running).toMatchObject({ code: '57014' });
    expect(await session.execute('SELECT 1', [])).toEqual({ affectedRows: 0 });
  });

  it('streams a data change with RETURNING and counts its rows', async () => {
    const got: unknown[][] = [];
    const columns: string[][] = [];
    const result = await session.stream('INSERT INTO items SELECT g, ? FROM generate_series(1, 3) g RETURNING n', ['s'], (c) => columns.push(c), (row) => Promise.resolve(void got.push(row)));
    expect(result).toEqual({ rows: 3, affectedRows: 3 });
    expect(columns).toEqual([['n']]);
    expect(got).toEqual([[1], [2], [3]]);
  });

  it('refuses several statements in one job (extended protocol)', async () => {
    await expect(session.execute("INSERT INTO items VALUES (1, 'a'); INSERT INTO items VALUES (2, 'b')", [])).rejects.toMatchObject({ code: '42601' });
    expect(await rows()).toEqual([]);
  });
});

describe('PostgreSQL driver', () => {
  it('creates the ledger in the schema the search_path names first, qualified (a job\'s SET search_path does not move it)', async () => {
    const found = await t.db.query<{ s: string }>("SELECT table_schema AS s FROM information_schema.tables WHERE table_name = 'querybatch_ledger'");
    expect(found.rows).toEqual([{ s: 'public' }]);
    await session.execute('SET search_path TO pg_catalog', []);
    expect(await session.executeOnce('Q1', "INSERT INTO public.items VALUES (1, 'x')", [])).toEqual({ status: 'done', affectedRows: 1 });
    expect(await ledgerIds()).toEqual(['Q1']);
  });

  it('fails to connect to a closed port with ECONNREFUSED', async () => {
    const closed = new PostgresDriver({ url: 'postgres://postgres@127.0.0.1:1/x', home: '/tmp', init: [], options: {}, ledger: null });
    await expect(closed.connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await closed.close();
    void pg;
  });
});
