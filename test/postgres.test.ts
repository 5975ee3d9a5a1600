import { afterEach, describe, expect, it, vi } from 'vitest';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { QueryBatch, type Outcome } from '../src/index.js';
import { decodeRecord } from '../src/spool/record.js';
import { PostgresSession } from '../src/db/postgres/session.js';
import { filesBelow, removeHome, runCli, tempHome, usePgTestDatabase, waitFor } from './helpers.js';

/**
 * The PostgreSQL driver through the public API, against the real server: typed params both
 * ways (bound, and written into the group commit's one round trip), refused statements,
 * exactly-once through the ledger, group commit, one drainer per datasource, timeouts
 * stopped on the server, session reset, scripts, statements outside transactions, and an
 * unreachable server.
 */
const t = usePgTestDatabase(
  'pg',
  `CREATE TABLE typed (
    n SERIAL PRIMARY KEY, how TEXT, ts TIMESTAMPTZ, b BYTEA, big INT8, num NUMERIC(40, 10), flag BOOLEAN, txt TEXT, nothing TEXT, i INT, f DOUBLE PRECISION
  )`,
  'CREATE TABLE seen (n SERIAL PRIMARY KEY, v TEXT, ledger_rows INT, tx BIGINT)',
  'CREATE SCHEMA other',
  'CREATE TABLE other.seen (n SERIAL PRIMARY KEY, v TEXT, ledger_rows INT, tx BIGINT)',
);
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  vi.restoreAllMocks();
  await q?.close();
  q = undefined;
  await removeHome(home);
  await t.db.query('TRUNCATE typed, seen, other.seen');
});

function open(options: { ledger?: boolean; timeoutMs?: number } = {}): QueryBatch {
  return new QueryBatch({ home, configFile: false, ...(options.timeoutMs && { timeoutMs: options.timeoutMs }), datasources: { main: { url: t.url, ledger: options.ledger ?? true } } });
}

async function seen(table = 'seen'): Promise<string[]> {
  return (await t.db.query<{ v: string }>(`SELECT v FROM ${table} ORDER BY n`)).rows.map((r) => r.v);
}

const TS = new Date('2024-02-29T23:59:58.123Z');
const BYTES = Buffer.from([0, 1, 2, 0x5c, 0x27, 0xff, 0x00]);
const TEXT = `😀 ünï 中文 ' '' " \\ \\' $$ ? :x -- /* E'`;
const BIG = 9007199254740993n;

describe('PostgreSQL driver', () => {
  for (const ledger of [true, false] as const) {
    it(`round-trips typed params with ? and :name (ledger ${ledger ? 'on: written into one trip' : 'off: bound'})`, async () => {
      home = await tempHome();
      q = open({ ledger });
      await q.spool('INSERT INTO typed (how, ts, b, big, num, flag, txt, nothing, i, f) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', ['positional', TS, BYTES, BIG, '12345678901234567890.0123456789', true, TEXT, null, -7, 0.1]);
      await q.spool('INSERT INTO typed (how, ts, b, big, num, flag, txt, nothing, i, f) VALUES (:how, :ts, :b, :big, :num, :flag, :txt, :nothing, :i::int, :f)', {
        how: 'named', ts: TS, b: BYTES, big: BIG, num: '12345678901234567890.0123456789', flag: false, txt: TEXT, nothing: null, i: -7, f: 0.1,
      });
      expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 0, connectionFailed: 0 });
      const rows = (await t.db.query('SELECT how, ts, b, big, num, flag, txt, nothing, i, f FROM typed ORDER BY n')).rows;
      expect(rows).toEqual([
        { how: 'positional', ts: TS, b: BYTES, big: String(BIG), num: '12345678901234567890.0123456789', flag: true, txt: TEXT, nothing: null, i: -7, f: 0.1 },
        { how: 'named', ts: TS, b: BYTES, big: String(BIG), num: '12345678901234567890.0123456789', flag: false, txt: TEXT, nothing: null, i: -7, f: 0.1 },
      ]);
    });
  }

  it('moves a refused statement to failed/failed-… with its SQLSTATE, and runs the next', async () => {
    home = await tempHome();
    q = open();
    const bad = await q.spool('INSERT INTO no_such_table VALUES (?)', [1]);
    await q.spool("INSERT INTO seen (v) VALUES ('after')");
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 1, connectionFailed: 0 });
    expect(await readdir(join(home, 'failed'))).toEqual([`failed-${bad}.batchsql`]);
    const record = decodeRecord(await readFile(join(home, 'failed', `failed-${bad}.batchsql`), 'utf8'));
    expect(record.lastError).toMatchObject({ class: 'sql', code: '42P01', sqlState: '42P01' });
    expect(record.lastError?.message).toMatch(/relation "no_such_table" does not exist/);
    expect(await seen()).toEqual(['after']);
  });

  it('runs a job in the same transaction as its ledger row, and settles a job whose id the ledger holds without running it', async () => {
    home = await tempHome();
    q = open();
    // The statement sees its own ledger row: one transaction.
    await q.spool("INSERT INTO seen (v, ledger_rows) SELECT 'first', count(*) FROM querybatch_ledger");
    expect(await q.run()).toMatchObject({ success: 1 });
    expect((await t.db.query('SELECT v, ledger_rows FROM seen')).rows).toEqual([{ v: 'first', ledger_rows: 1 }]);

    const id = await q.spool("INSERT INTO seen (v) VALUES ('must not run')");
    const spoolId = (await readFile(join(home, 'spool', '.id'), 'utf8')).trim();
    await t.db.query('INSERT INTO querybatch_ledger (id, spool) VALUES ($1, $2)', [id, spoolId]);
    const summary = await q.run();
    expect(summary.sqlFailed).toBe(0);
    expect(summary.success + summary.settled).toBeGreaterThanOrEqual(1);
    expect(await seen()).toEqual(['first']);
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
    expect(await q.status(id)).toMatchObject({ state: 'succeeded' });
  });

  it('group-commits many INSERTs in a few transactions through the driver\'s batch', async () => {
    home = await tempHome();
    q = open();
    const batch = vi.spyOn(PostgresSession.prototype, 'executeBatch');
    for (let i = 0; i < 60; i++) await q.spool('INSERT INTO seen (v, tx) VALUES (?, txid_current())', [`row ${i}`]);
    expect(await q.run()).toMatchObject({ success: 60, sqlFailed: 0 });
    expect(await seen()).toEqual(Array.from({ length: 60 }, (_, i) => `row ${i}`));
    const results = await Promise.all(batch.mock.results.map((r) => r.value as Promise<readonly number[] | null>));
    expect(results.filter((r) => r !== null).length).toBeGreaterThan(0);
    const transactions = Number((await t.db.query<{ c: string }>('SELECT count(DISTINCT tx) AS c FROM seen')).rows[0]!.c);
    expect(transactions).toBeLessThan(20);
  });

  it('lets one runner at a time drain a datasource: a second QueryBatch (another process) on the spool finds it busy', async () => {
    home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
    q = open();
    // A job that changes the session first: the reset after it (DISCARD ALL) must not give up the lock.
    await q.spool('SET search_path TO other');
    await q.spool('SELECT pg_sleep(4)');
    const first = q.run();
    await waitFor(async () => ((await t.db.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep(4)%' AND state = 'active' AND pid <> pg_backend_pid()", [t.name])).rowCount ? true : undefined), 10_000, 'the first runner to run its job');
    await q.spool("INSERT INTO seen (v) VALUES ('second')");
    const second = await runCli(['--home', home, 'run', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ success: 0, datasources: { main: { busy: true } } });
    expect(await seen()).toEqual([]);
    await first;
    await q.run();
    expect(await seen()).toEqual(['second']);
  });

  it('stops a timed-out statement on the server (timeoutMs 200 on SELECT pg_sleep(5)) and runs the next', async () => {
    home = await tempHome();
    q = open();
    const failed: Outcome[] = [];
    q.on('failed', (o) => failed.push(o));
    const sleeper = await q.spool('SELECT pg_sleep(5)', [], { timeoutMs: 200 });
    await q.spool("INSERT INTO seen (v) VALUES ('after')");
    const started = Date.now();
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 1 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(failed[0]).toMatchObject({ id: sleeper, class: 'timeout', code: 'STATEMENT_TIMEOUT' });
    const running = await t.db.query("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep(5)%' AND state = 'active' AND pid <> pg_backend_pid()", [t.name]);
    expect(running.rowCount).toBe(0);
    expect(await seen()).toEqual(['after']);
  });

  it('resets the session after a job: a SET search_path and a temporary table do not reach the next job', async () => {
    home = await tempHome();
    q = open();
    await q.spool('SET search_path TO other');
    await q.spool("INSERT INTO seen (v) VALUES ('where')");
    await q.spool('CREATE TEMP TABLE scratch (a int)');
    const leaked = await q.spool('INSERT INTO scratch VALUES (1)');
    expect(await q.run()).toMatchObject({ success: 3, sqlFailed: 1 });
    expect(await seen()).toEqual(['where']);
    expect(await seen('other.seen')).toEqual([]);
    expect(await readdir(join(home, 'failed'))).toEqual([`failed-${leaked}.batchsql`]);
  });

  it('runs a script of several statements with a dollar-quoted function body, each once', async () => {
    home = await tempHome();
    q = open();
    const id = await q.spoolScript(`-- a migration
CREATE TABLE script_rows (k INT);
CREATE FUNCTION add_two(k INT) RETURNS void LANGUAGE plpgsql AS $body$
BEGIN
  INSERT INTO script_rows VALUES (k); -- a ; inside
  INSERT INTO script_rows VALUES (k + 1);
END;
$body$;
SELECT add_two(1);
INSERT INTO script_rows VALUES (E'1\\'0'::text::int / 1 + 0 * length('a;b'));
`.replace("E'1\\'0'::text::int", "'10'::int"));
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 0 });
    expect((await t.db.query<{ k: number }>('SELECT k FROM script_rows ORDER BY k')).rows.map((r) => r.k)).toEqual([1, 2, 10]);
    expect(await q.status(id)).toMatchObject({ state: 'succeeded' });
    await t.db.query('DROP TABLE script_rows; DROP FUNCTION add_two(int)');
  });

  it('refuses a script holding a psql meta-command when it is spooled', async () => {
    home = await tempHome();
    q = open();
    await expect(q.spoolScript("INSERT INTO seen (v) VALUES ('a');\n\\connect other\nINSERT INTO seen (v) VALUES ('b');\n")).rejects.toMatchObject({ code: 'UNSUPPORTED_SCRIPT' });
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('runs CREATE DATABASE outside the ledger transaction (PostgreSQL refuses it inside one)', async () => {
    home = await tempHome();
    q = open();
    const name = `${t.name}_made`;
    const id = await q.spool(`CREATE DATABASE "${name}"`);
    try {
      expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 0 });
      expect((await t.db.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount).toBe(1);
      expect((await t.db.query('SELECT 1 FROM querybatch_ledger WHERE id = $1', [id])).rowCount).toBe(0);
    } finally {
      await t.db.query(`DROP DATABASE IF EXISTS "${name}"`);
    }
  });

  it('reports a closed port as a connection failure and keeps the job', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: 'postgres://postgres@127.0.0.1:1/x' } } });
    const id = await q.spool('SELECT 1');
    expect(await q.run()).toMatchObject({ success: 0, sqlFailed: 0, connectionFailed: 1 });
    expect((await filesBelow(join(home, 'spool'))).some((f) => f.includes(id))).toBe(true);
  });

  it('captures a SELECT\'s rows through a cursor', async () => {
    home = await tempHome();
    q = open();
    const fetches = vi.spyOn(pg.Client.prototype, 'query');
    const id = await q.spool('SELECT g AS n, ? AS label FROM generate_series(1, 1234) AS g', ['x'], { captureResult: true });
    expect(await q.run()).toMatchObject({ success: 1 });
    const manifest = await q.result(id);
    expect(manifest).toMatchObject({ columns: ['n', 'label'], totalRows: 1234 });
    expect((await q.resultPage(id, 1)).rows[0]).toEqual([1, 'x']);
    // Fetched from a cursor, 500 rows at a time.
    const sent = fetches.mock.calls.map((c) => (typeof c[0] === 'string' ? c[0] : (c[0] as { text?: string }).text ?? ''));
    expect(sent.filter((text) => text.startsWith('FETCH 500')).length).toBe(3);
  });
});

describe('PostgreSQL datasource checks', () => {
  it('refuses an unknown URL query parameter naming the datasource', () => {
    expect(() => new QueryBatch({ home: '/tmp', configFile: false, datasources: { main: { url: 'postgresql://u:pw@h/db?bogus=1' } } })).toThrow(/datasource "main" url query parameters/);
  });
  it('leaves the server\'s admin database alone', async () => {
    const admin = new pg.Client({ connectionString: t.url });
    await admin.connect();
    expect((await admin.query<{ d: string }>('SELECT current_database() AS d')).rows[0]!.d).toBe(t.name);
    await admin.end();
  });
});
