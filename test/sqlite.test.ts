import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch, isQueryBatchError, registerDriver } from '../src/index.js';
import type { BatchJob, Driver, DriverSettings } from '../src/db/driver.js';
import { sqliteDriverFactory, lockNameFor } from '../src/db/sqlite/index.js';
import { failedNames, removeHome, runCli, startRunner, tempHome, waitFor } from './helpers.js';
import { processStat, sqliteSessions } from './dialects.js';

/**
 * The SQLite driver through the public API: a datasource `sqlite:q.db` in a temporary home;
 * what ran is read back with better-sqlite3 directly.
 */
let home = '';
let q: QueryBatch | undefined;
let holder: ChildProcess | undefined;

afterEach(async () => {
  holder?.kill('SIGKILL');
  holder = undefined;
  registerDriver(sqliteDriverFactory);
  await q?.close();
  q = undefined;
  if (home !== '') await removeHome(home);
  home = '';
});

function open(url = 'sqlite:q.db', extra: Record<string, unknown> = {}, top: Record<string, unknown> = {}): QueryBatch {
  return new QueryBatch({ home, configFile: false, dropInSettleMs: 0, ...top, datasources: { main: { url, ...extra } } });
}

/** Reads the database as a test would: a connection of its own. */
function read<T>(sql: string, params: unknown[] = [], file = join(home, 'q.db')): T[] {
  const db = new Database(file);
  try {
    db.defaultSafeIntegers(true);
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

async function setUp(sql: string, file = join(home, 'q.db')): Promise<void> {
  const db = new Database(file);
  db.exec(sql);
  db.close();
  await Promise.resolve();
}

describe('sqlite driver', () => {
  it('binds ? and :name params; Date, Buffer, bigint, null, unicode and booleans round-trip exactly', async () => {
    home = await tempHome();
    await setUp('CREATE TABLE v (k TEXT, d TEXT, b BLOB, n INTEGER, z, u TEXT, t INTEGER, f REAL)');
    q = open();
    const date = new Date('2024-02-29T23:59:58.123Z');
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const big = 2n ** 62n + 7n;
    const text = 'naïve 日本語 🎉 \'quoted\' ; --';
    await q.spool('INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?, ?)', ['pos', date, bytes, big, null, text, true, 1.5]);
    await q.spool('INSERT INTO v VALUES (:k, :d, :b, :n, :z, :u, :t, :f)', { k: 'named', d: date, b: bytes, n: -big, z: null, u: text, t: false, f: -0.25 });
    expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 0, connectionFailed: 0 });
    const rows = read<Record<string, unknown>>('SELECT * FROM v ORDER BY k DESC');
    expect(rows).toEqual([
      { k: 'pos', d: date.toISOString(), b: bytes, n: big, z: null, u: text, t: 1n, f: 1.5 },
      { k: 'named', d: date.toISOString(), b: bytes, n: -big, z: null, u: text, t: 0n, f: -0.25 },
    ]);
    expect(new Date(rows[0]!.d as string).getTime()).toBe(date.getTime());
    expect(read<{ t: string }>("SELECT typeof(b) AS t FROM v LIMIT 1")[0]!.t).toBe('blob');
  });

  it('a refused statement goes to failed/failed-… with the SQLite code; the next job still runs', async () => {
    home = await tempHome();
    await setUp('CREATE TABLE u (a INTEGER PRIMARY KEY); INSERT INTO u VALUES (1)');
    q = open();
    const dup = await q.spool('INSERT INTO u VALUES (1)');
    const bad = await q.spool('INSERT INTO nowhere VALUES (1)');
    await q.spool('INSERT INTO u VALUES (2)');
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 2 });
    expect((await failedNames(home)).sort()).toEqual([`failed-${dup}.batchsql`, `failed-${bad}.batchsql`].sort());
    expect((await q.failedFile(`failed-${dup}.batchsql`)).lastError).toMatchObject({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    expect((await q.failedFile(`failed-${bad}.batchsql`)).lastError).toMatchObject({ code: 'SQLITE_ERROR', message: expect.stringContaining('no such table: nowhere') as unknown });
    expect(read<{ a: bigint }>('SELECT a FROM u ORDER BY a')).toEqual([{ a: 1n }, { a: 2n }]);
  });

  it('exactly once through the ledger: a job whose id the ledger holds is settled, not run again; DDL commits with its ledger row', async () => {
    home = await tempHome();
    q = open();
    await q.spool('CREATE TABLE e (a INTEGER)');
    expect(await q.run()).toMatchObject({ success: 1 });
    const id = await q.spool('INSERT INTO e VALUES (1)');
    // As if a runner had committed it and crashed before removing its file.
    await setUp(`INSERT INTO querybatch_ledger (id, spool) VALUES ('${id}', 'x')`);
    expect(await q.run()).toMatchObject({ success: 0, settled: 1 });
    expect(read('SELECT * FROM e')).toEqual([]);
    const next = await q.spool('INSERT INTO e VALUES (2)');
    expect(await q.run()).toMatchObject({ success: 1 });
    expect(read('SELECT a FROM e')).toEqual([{ a: 2n }]);
    expect(await q.status(next)).toMatchObject({ state: 'succeeded' });
  });

  it('group commit: many INSERTs in one transaction and one round trip; a refused one in a group sends the group one by one', async () => {
    home = await tempHome();
    await setUp('CREATE TABLE g (a INTEGER PRIMARY KEY)');
    const groups: number[] = [];
    registerDriver({
      ...sqliteDriverFactory,
      create(settings: DriverSettings): Driver {
        const driver = sqliteDriverFactory.create(settings);
        const connect = driver.connect.bind(driver);
        driver.connect = async () => {
          const session = await connect();
          const batch = session.executeBatch.bind(session);
          session.executeBatch = (jobs: readonly BatchJob[]) => {
            groups.push(jobs.length);
            return batch(jobs);
          };
          return session;
        };
        return driver;
      },
    });
    q = open();
    for (let i = 1; i <= 200; i++) await q.spool('INSERT INTO g VALUES (?)', [i]);
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 200, sqlFailed: 0 });
    expect(groups.length).toBeGreaterThan(0);
    expect(groups.reduce((a, b) => a + b, 0)).toBe(200);
    expect(Math.max(...groups)).toBeGreaterThan(1);
    expect(read<{ n: bigint }>('SELECT count(*) AS n FROM g')[0]!.n).toBe(200n);

    groups.length = 0;
    for (const v of [201, 1, 202]) await q.spool('INSERT INTO g VALUES (?)', [v]);
    expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 1 });
    expect(groups).toEqual([3]);
    expect(read<{ n: bigint }>('SELECT count(*) AS n FROM g')[0]!.n).toBe(202n);
  });

  it('one drainer per datasource: another process holding the lock makes the run busy; SIGKILLed, its lock is gone at once', async () => {
    home = await tempHome();
    await setUp('CREATE TABLE l (a INTEGER)');
    q = open();
    await q.spool('INSERT INTO l VALUES (1)');
    const spoolId = (await readFile(join(home, 'spool', '.id'), 'utf8')).trim();
    const lockFile = `${join(home, 'q.db')}.${lockNameFor(spoolId, 'main')}`;
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    const source = `const D = require(${JSON.stringify(module)}); const db = new D(${JSON.stringify(lockFile)}); db.exec('BEGIN EXCLUSIVE'); console.log('held'); setInterval(() => {}, 1000);`;
    holder = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder!.stdout!.once('data', () => resolve()));
    const busy = await q.run();
    expect(busy.datasources.main).toMatchObject({ busy: true, success: 0 });
    expect(read('SELECT * FROM l')).toEqual([]);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder!.once('exit', resolve));
    expect(await q.run()).toMatchObject({ success: 1 });
    expect(read('SELECT a FROM l')).toEqual([{ a: 1n }]);
  });

  it('a second runner on the same spool (another process: the CLI) finds the datasource busy while the first drains', async () => {
    home = await tempHome();
    await setUp('CREATE TABLE w (a INTEGER)');
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: { url: 'sqlite:q.db' } } }));
    q = open();
    await q.spool('SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) SELECT x FROM c)');
    const first = q.run();
    await new Promise((resolve) => setTimeout(resolve, 400));
    // A job the first runner has not claimed: the second runner asks for the lock to run it.
    await q.spool('INSERT INTO w VALUES (1)');
    const second = await runCli(['--home', home, 'run', '--json']);
    if (second.stdout === '') console.error('CLI', second.code, second.stderr);
    expect(JSON.parse(second.stdout)).toMatchObject({ datasources: { main: { busy: true, success: 0 } } });
    expect(await first).toMatchObject({ success: 1 });
    expect(read('SELECT a FROM w')).toEqual([]);
    expect(await q.run()).toMatchObject({ success: 1 });
    expect(read('SELECT a FROM w')).toEqual([{ a: 1n }]);
  });

  it('a timeout stops the statement (its process killed, its transaction rolled back) and the next job still runs', async () => {
    home = await tempHome();
    await setUp('CREATE TABLE s (a INTEGER)');
    q = open();
    const slow = await q.spool('INSERT INTO s SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)', [], { timeoutMs: 200 });
    await q.spool('INSERT INTO s VALUES (-1)');
    const t = performance.now();
    const summary = await q.run();
    expect(performance.now() - t).toBeLessThan(5_000);
    expect(summary).toMatchObject({ success: 1, sqlFailed: 1, connectionFailed: 0 });
    expect(await failedNames(home)).toEqual([`failed-${slow}.batchsql`]);
    expect((await q.failedFile(`failed-${slow}.batchsql`)).lastError).toMatchObject({ code: 'STATEMENT_TIMEOUT' });
    expect(read('SELECT a FROM s')).toEqual([{ a: -1n }]);
    expect(read('SELECT id FROM querybatch_ledger WHERE id = ?', [slow])).toEqual([]);
  });

  it('session reset: a TEMP table, a PRAGMA and an ATTACH do not leak into the next job; init statements run again', async () => {
    home = await tempHome();
    await setUp('CREATE TABLE r (what TEXT, n INTEGER)');
    q = open('sqlite:q.db', { init: ['PRAGMA cache_size = -1234'] });
    await q.spool('CREATE TEMP TABLE tmp (a INTEGER)');
    await q.spool("INSERT INTO r SELECT 'temp', count(*) FROM sqlite_temp_master");
    await q.spool('PRAGMA recursive_triggers = ON');
    await q.spool("INSERT INTO r SELECT 'pragma', recursive_triggers FROM pragma_recursive_triggers");
    await q.spool(`ATTACH DATABASE '${join(home, 'other.db')}' AS other`);
    await q.spool("INSERT INTO r SELECT 'attached', count(*) FROM pragma_database_list");
    await q.spool("INSERT INTO r SELECT 'init', cache_size FROM pragma_cache_size");
    expect(await q.run()).toMatchObject({ success: 7, sqlFailed: 0 });
    expect(read('SELECT what, n FROM r ORDER BY rowid')).toEqual([
      { what: 'temp', n: 0n },
      { what: 'pragma', n: 0n },
      { what: 'attached', n: 1n },
      { what: 'init', n: -1234n },
    ]);
  });

  it('a script with a CREATE TRIGGER … BEGIN … END body (semicolons and CASE … END inside) runs statement by statement', async () => {
    home = await tempHome();
    q = open();
    const id = await q.spoolScript(`-- a migration
CREATE TABLE p (id INTEGER PRIMARY KEY, note TEXT);
CREATE TABLE audit (v TEXT);
CREATE TRIGGER p_ai AFTER INSERT ON p BEGIN
  INSERT INTO audit VALUES ('insert;' || NEW.id);
  INSERT INTO audit VALUES (CASE WHEN NEW.id > 1 THEN 'big' ELSE 'small' END);
END;
INSERT INTO p VALUES (1, 'a;b');   /* a ; in a comment */
INSERT INTO [p] ("id", \`note\`) VALUES (2, 'x');
`);
    const summary = await q.run();
    if (summary.sqlFailed > 0) console.error((await q.failedFile(`failed-${id}.batchsql`)).lastError);
    expect(summary).toMatchObject({ success: 1, sqlFailed: 0 });
    expect(await q.status(id)).toMatchObject({ state: 'succeeded' });
    expect(read('SELECT v FROM audit ORDER BY rowid')).toEqual([{ v: 'insert;1' }, { v: 'small' }, { v: 'insert;2' }, { v: 'big' }]);
    expect(read('SELECT id, note FROM p ORDER BY id')).toEqual([{ id: 1n, note: 'a;b' }, { id: 2n, note: 'x' }]);
  });

  it('a refused statement stops a script: failed/ names it; a respool resumes at it (statements before it do not run again); its own BEGIN … COMMIT rolls back whole', async () => {
    home = await tempHome();
    await setUp('CREATE TABLE seen (v TEXT)');
    q = open();
    const id = await q.spoolScript(`INSERT INTO seen VALUES ('one');
BEGIN;
INSERT INTO seen VALUES ('in tx');
INSERT INTO later VALUES ('three');
COMMIT;
INSERT INTO seen VALUES ('four');
`);
    expect(await q.run()).toMatchObject({ success: 0, sqlFailed: 1 });
    const names = await failedNames(home);
    expect(names).toEqual([`failed-${id}.batchsql`]);
    expect((await q.failedFile(names[0]!)).lastError).toMatchObject({ code: 'SQLITE_ERROR', statement: { index: 4, line: 4 } });
    expect(read('SELECT v FROM seen ORDER BY rowid')).toEqual([{ v: 'one' }]);
    await setUp('CREATE TABLE later (v TEXT)');
    expect(await q.respool({ names })).toMatchObject({ respooled: [{ id }] });
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 0 });
    expect(read('SELECT v FROM seen ORDER BY rowid')).toEqual([{ v: 'one' }, { v: 'in tx' }, { v: 'four' }]);
    expect(read('SELECT v FROM later')).toEqual([{ v: 'three' }]);
  });

  it('relative URLs are read from the home, absolute ones (sqlite:///…) as they are', async () => {
    home = await tempHome();
    q = open('sqlite:rel.db');
    await q.spool('CREATE TABLE x (a INTEGER)');
    expect(await q.run()).toMatchObject({ success: 1 });
    expect(read("SELECT name FROM sqlite_master WHERE name = 'x'", [], join(home, 'rel.db'))).toEqual([{ name: 'x' }]);
    await q.close();
    const absolute = join(home, 'abs.db');
    q = open(`sqlite://${absolute}`);
    await q.spool('CREATE TABLE y (a INTEGER)');
    expect(await q.run()).toMatchObject({ success: 1 });
    expect(read("SELECT name FROM sqlite_master WHERE name = 'y'", [], absolute)).toEqual([{ name: 'y' }]);
  });

  it('refuses sqlite::memory:, a host, a query and unknown options with clear errors', async () => {
    home = await tempHome();
    const refused = (url: string, extra: Record<string, unknown> = {}) => {
      try {
        open(url, extra);
      } catch (error) {
        expect(isQueryBatchError(error)).toBe(true);
        return (error as Error).message;
      }
      throw new Error(`Expected ${url} to be refused`);
    };
    expect(refused('sqlite::memory:')).toMatch(/in-memory database .*nothing spooled would persist/);
    expect(refused('sqlite://host/q.db')).toMatch(/no host/);
    expect(refused('sqlite:q.db?mode=ro')).toMatch(/no query/);
    expect(refused('sqlite:q.db', { options: { busyTimeout: 1 } })).toMatch(/busyTimeoutMs.*"busyTimeout"/);
    expect(refused('sqlite:q.db', { options: { busyTimeoutMs: -1 } })).toMatch(/busyTimeoutMs to be a whole number/);
    await Promise.resolve();
  });

  it('a URL to a path that cannot be opened is a connection failure naming SQLITE_CANTOPEN; the job keeps its place', async () => {
    home = await tempHome();
    await writeFile(join(home, 'file.txt'), 'not a directory');
    q = open(`sqlite://${join(home, 'file.txt', 'q.db')}`);
    await q.spool('CREATE TABLE z (a INTEGER)');
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 0, sqlFailed: 0, connectionFailed: 1 });
    expect(summary.datasources.main?.connectionError).toMatch(/SQLITE_CANTOPEN/);
    expect(await failedNames(home).catch(() => [])).toEqual([]);
    await q.close();
    q = open('sqlite:missing-dir/q.db');
    await q.spool('CREATE TABLE z (a INTEGER)');
    const missing = await q.run();
    expect(missing).toMatchObject({ success: 0, connectionFailed: 1 });
    expect(missing.datasources.main?.connectionError).toMatch(/SQLITE_CANTOPEN.*directory does not exist/);
  });

  it("a session's process that dies mid-statement is a lost connection: the job keeps its place in spool, the next run runs it", async () => {
    home = await tempHome();
    await setUp('CREATE TABLE k (a INTEGER)');
    q = open();
    const id = await q.spool('INSERT INTO k SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) SELECT x FROM c)');
    const running = q.run();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const ps = spawnSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
    const pids = ps.stdout.split('\n').filter((line) => line.includes('QUERYBATCH_SQLITE_MODULE')).map((line) => Number.parseInt(line.trim(), 10));
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    const summary = await running;
    expect(summary).toMatchObject({ success: 0, sqlFailed: 0, connectionFailed: 1 });
    expect(summary.datasources.main?.connectionError).toMatch(/SQLITE_PROCESS_LOST/);
    expect(await q.status(id)).toMatchObject({ state: 'queued' });
    expect(read('SELECT a FROM k')).toEqual([]);
    expect(await q.run()).toMatchObject({ success: 1, connectionFailed: 0 });
    expect(read('SELECT a FROM k')).toEqual([{ a: 20000000n }]);
  });

  it("a runner SIGKILLed mid-statement takes its session's process with it: the statement stops, its write lock and transaction are gone", async () => {
    home = await tempHome();
    await setUp('CREATE TABLE o (a INTEGER)');
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: { url: 'sqlite:q.db' } } }));
    q = open();
    await q.spool('INSERT INTO o SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)'); // endless
    await q.close();
    q = undefined;
    const runner = startRunner(home);
    let session: number | undefined;
    try {
      // The session's process, running the statement (past its startup) inside its write transaction.
      session = await waitFor(() => sqliteSessions(runner.child.pid!).find((s) => s.state === 'R' && s.cpuMs >= 300)?.pid, 10_000, 'the endless INSERT');
      runner.child.kill('SIGKILL');
      expect((await runner.exit).signal).toBe('SIGKILL');
      const gone = session;
      await waitFor(() => (['Z', undefined].includes(processStat(gone)?.state) ? true : undefined), 2_000, 'the session process to die with its runner');
      // Nothing holds the database: a write goes through within a short busy wait (the endless
      // statement, had it lived on, would hold the lock for ever), and nothing of the statement remains.
      const db = new Database(join(home, 'q.db'), { timeout: 3_000 });
      db.exec('INSERT INTO o VALUES (1)');
      db.close();
      expect(read('SELECT a FROM o')).toEqual([{ a: 1n }]);
    } finally {
      if (session !== undefined && processStat(session) !== undefined) process.kill(session, 'SIGKILL');
    }
  });

  it('SQLITE_BUSY (another connection holds the write lock past busyTimeoutMs) is transient: retried, then it runs', async () => {
    home = await tempHome();
    await setUp('CREATE TABLE b (a INTEGER)');
    q = open('sqlite:q.db', { options: { busyTimeoutMs: 20 }, retry: { maxAttempts: 20, backoffMs: 50 } });
    await q.spool('INSERT INTO b VALUES (0)');
    expect(await q.run()).toMatchObject({ success: 1 });
    await q.spool('INSERT INTO b VALUES (1)');
    const writer = new Database(join(home, 'q.db'));
    writer.exec('BEGIN IMMEDIATE');
    const release = setTimeout(() => writer.exec('COMMIT'), 400);
    try {
      const summary = await q.run();
      expect(summary).toMatchObject({ success: 1, sqlFailed: 0, connectionFailed: 0 });
      expect(summary.retried).toBeGreaterThan(0);
    } finally {
      clearTimeout(release);
      if (writer.inTransaction) writer.exec('COMMIT');
      writer.close();
    }
    expect(read('SELECT a FROM b ORDER BY a')).toEqual([{ a: 0n }, { a: 1n }]);
  });

  it('without the ledger (ledger: false) statements run on their own, and no ledger table is made', async () => {
    home = await tempHome();
    q = open('sqlite:q.db', { ledger: false });
    await q.spool('CREATE TABLE n (a INTEGER)');
    await q.spool('INSERT INTO n VALUES (:a)', { a: 7 });
    expect(await q.run()).toMatchObject({ success: 2 });
    expect(read('SELECT a FROM n')).toEqual([{ a: 7n }]);
    expect(read("SELECT name FROM sqlite_master WHERE name = 'querybatch_ledger'")).toEqual([]);
  });

  it('a captured SELECT streams its rows into result pages', async () => {
    home = await tempHome();
    q = open();
    const id = await q.spool('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x, x * 2 AS y, ? AS big FROM c', [2n ** 60n], { captureResult: true });
    expect(await q.run()).toMatchObject({ success: 1 });
    const manifest = await q.result(id);
    expect(manifest).toMatchObject({ columns: ['x', 'y', 'big'], totalRows: 1000 });
    const page = await q.resultPage(id, 1);
    expect(page.rows[0]).toEqual([1, 2, 2n ** 60n]);
  });
});
