import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { spoolPathFor } from '../src/spool/shards.js';
import { decodeRecord } from '../src/spool/record.js';
import { CLI, filesBelow, removeHome, tempHome, useTestDatabase, waitFor } from './helpers.js';
import { FAULT_DIALECTS, type FixtureDatabase } from './dialects.js';

const t = useTestDatabase('faults');
let home: string;
let q: QueryBatch | undefined;

const filesUnder = filesBelow;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
});

/**
 * The job's connection killed from a second session while its statement runs (MariaDB's KILL
 * CONNECTION, PostgreSQL's pg_terminate_backend, SQLite's session process SIGKILLed), on every dialect.
 */
describe.each(FAULT_DIALECTS)('$fixture.name: the job connection killed from a second session', (dialect) => {
  let db: FixtureDatabase;
  let dbHome = ''; // where a SQLite database file lives
  beforeAll(async () => {
    dbHome = await tempHome();
    db = await dialect.fixture.open(dbHome);
    await db.exec(dialect.fixture.table('killed'));
  });
  afterAll(async () => {
    await db?.close();
    await removeHome(dbHome);
  });

  it('mid-statement: the datasource stops, its ledger row goes with it, the job keeps its place and runs once later', async () => {
    home = await tempHome();
    // One job per ledger transaction: the failure is pinned on the statement that was running
    // (a batch is atomic, see crash.test.ts for a connection lost mid-batch).
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: db.url, ledger: { batch: 1 } } } });
    await q.spool('INSERT INTO killed (v) VALUES (?)', ['1']);
    // Its first run is killed within moments; the second (after the kill) takes 3 s.
    const sleeper = await q.spool(dialect.slowInsert('killed', 3), ['2']);
    const after = [await q.spool('INSERT INTO killed (v) VALUES (?)', ['3']), await q.spool('INSERT INTO killed (v) VALUES (?)', ['4'])];

    const running = q.run();
    const victim = await waitFor(() => dialect.sessionRunning(db, '%INSERT INTO killed%sleep(3)%'), 10_000, 'the slow INSERT');
    await dialect.killSession(db, victim);
    const summary = await running;

    expect(summary).toMatchObject({ success: 1, connectionFailed: 1, sqlFailed: 0, deferred: 3 });
    // Cut short: the 3 s statement did not run to its end (SQLite's session is found by its CPU
    // time, later under load: the counts above and below show the cut there).
    if (dialect.fixture.name !== 'sqlite') expect(summary.wallMs).toBeLessThan(2_500);
    // The killed statement keeps its place with one more attempt; the ones after it are untouched.
    const sleeping = decodeRecord(await readFile(spoolPathFor(join(home, 'spool'), 'main', sleeper), 'utf8'));
    expect(sleeping).toMatchObject({ attempts: 1, lastError: { class: 'connection' } });
    for (const id of after) {
      expect(decodeRecord(await readFile(spoolPathFor(join(home, 'spool'), 'main', id), 'utf8')).attempts).toBe(0);
    }
    expect(await readdir(join(home, 'failed'))).toEqual([]);
    expect((await db.query('SELECT v FROM killed ORDER BY k')).map((r) => r.v)).toEqual(['1']);
    // Rolled back with the statement: no ledger row says it ran.
    expect(Number((await db.query('SELECT COUNT(*) AS c FROM querybatch_ledger WHERE id = ?', [sleeper]))[0]!.c)).toBe(0);

    // The next run (once the killed runner's lock is given back) runs it, and the rest, once each.
    let success = 0;
    let settled = 0;
    for (let i = 0; i < 50 && success + settled < 3; i++) {
      const next = await q.run();
      success += next.success;
      settled += next.settled;
      if (success + settled < 3) await new Promise((r) => setTimeout(r, 100));
    }
    expect({ success, settled }).toEqual({ success: 3, settled: 0 });
    expect(await filesUnder(join(home, 'spool'))).toEqual([]);
    expect((await db.query('SELECT v FROM killed ORDER BY k')).map((r) => r.v)).toEqual(['1', '2', '3', '4']);
    console.log(`[faults] ${dialect.fixture.name}: job connection killed mid-statement from a second session: 4 jobs, 0 lost, 0 duplicated`);
  }, 30_000);
});

describe('faults, for real', () => {
  it('a datasource another runner holds the database lock for is skipped untouched', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE locked (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    for (let i = 0; i < 5; i++) await q.spool('INSERT INTO locked (v) VALUES (?)', [i]);
    const { lockNameFor } = await import('../src/db/mysql/dialect.js');
    const spoolId = (await readFile(join(home, 'spool', '.id'), 'utf8')).trim();
    const [granted] = await t.db.query('SELECT GET_LOCK(?, 0) AS g', [lockNameFor(spoolId, 'main')]);
    expect((granted as Array<{ g: number }>)[0]!.g).toBe(1);
    const before = (await filesUnder(join(home, 'spool'))).sort();

    const skipped = await q.run();
    expect(skipped).toMatchObject({ success: 0, connectionFailed: 0, deferred: 5, datasources: { main: { busy: true } } });
    expect((await filesUnder(join(home, 'spool'))).sort()).toEqual(before);
    for (const f of before) expect(decodeRecord(await readFile(f, 'utf8')).attempts).toBe(0);

    await t.db.query('SELECT RELEASE_LOCK(?)', [lockNameFor(spoolId, 'main')]);
    expect(await q.run()).toMatchObject({ success: 5 });
    // The runner gave its lock back: another session can take it.
    const [again] = await t.db.query('SELECT GET_LOCK(?, 0) AS g', [lockNameFor(spoolId, 'main')]);
    expect((again as Array<{ g: number }>)[0]!.g).toBe(1);
    await t.db.query('SELECT RELEASE_LOCK(?)', [lockNameFor(spoolId, 'main')]);
  });

  it('two runner processes started together keep FIFO: one drains, the other skips', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE twoproc (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const total = 300;
    for (let k = 0; k < total; k++) await q.spool('INSERT INTO twoproc (job) VALUES (?)', [k]);
    const runner = () => new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [CLI, '--home', home, 'run', '--json'], { env: { ...process.env, QUERYBATCH_DATASOURCE_MAIN: t.url }, stdio: 'ignore' });
      child.on('exit', (code) => resolve(code));
    });
    expect(await Promise.all([runner(), runner()])).toEqual([0, 0]);
    await q.run(); // whatever a skipped runner left
    const [rows] = await t.db.query('SELECT job FROM twoproc ORDER BY n');
    expect((rows as Array<{ job: number }>).map((r) => r.job)).toEqual(Array.from({ length: total }, (_, k) => k));
  });

  it('SIGKILL of a runner mid-drain loses nothing; the next run gives its claim back and finishes', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE crash (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const total = 400;
    // 5 ms per statement on the server: the drain lasts 2 s, so the kill lands mid-drain.
    for (let k = 0; k < total; k++) await q.spool('INSERT INTO crash (job) VALUES (? + SLEEP(0.005))', [k]);

    const child = spawn(process.execPath, [CLI, '--home', home, 'run'], {
      env: { ...process.env, QUERYBATCH_DATASOURCE_MAIN: t.url },
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await waitFor(async () => {
      const [rows] = await t.db.query('SELECT COUNT(*) AS c FROM crash');
      return Number((rows as Array<{ c: number }>)[0]!.c) >= 50 ? true : undefined;
    }, 30_000);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const [before] = await t.db.query('SELECT COUNT(*) AS c FROM crash');
    const executedBefore = Number((before as Array<{ c: number }>)[0]!.c);
    expect(executedBefore).toBeLessThan(total); // it really died mid-drain

    // The killed runner's session holds the datasource lock until the server notices it gone
    // (after the statement in flight): a run meanwhile skips the datasource; the next drains.
    let summary = await q.run();
    let recovered = summary.recovered;
    for (let i = 0; i < 50 && summary.datasources.main?.busy; i++) {
      await new Promise((r) => setTimeout(r, 100));
      summary = await q.run();
      recovered += summary.recovered;
    }
    expect(summary.datasources.main?.busy).toBeFalsy();
    // Claims held at the kill: at most one group-commit batch (ledger.batch, 32), being
    // gathered, in flight, or committed with its files not yet removed (they are removed
    // before the next job is claimed).
    expect(recovered).toBeLessThanOrEqual(32);
    expect(await filesUnder(join(home, 'spool'))).toEqual([]);
    expect(await readdir(join(home, 'failed'))).toEqual([]);

    const [rows] = await t.db.query('SELECT job, COUNT(*) AS c FROM crash GROUP BY job ORDER BY job');
    const counts = rows as Array<{ job: number; c: number }>;
    // Nothing lost: every job ran, and with the ledger (on by default) none twice.
    expect(counts.map((r) => r.job)).toEqual(Array.from({ length: total }, (_, k) => k));
    expect(counts.filter((r) => Number(r.c) > 1)).toEqual([]);
    // Order kept: rows by auto-increment are in job order.
    const [ordered] = await t.db.query('SELECT job FROM crash ORDER BY n');
    expect((ordered as Array<{ job: number }>).map((r) => r.job)).toEqual(Array.from({ length: total }, (_, k) => k));
  });
});
