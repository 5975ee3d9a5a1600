/**
 * Crash safety and exactly-once, with real faults: runner processes SIGKILLed at random
 * moments, several runner processes on one spool, connections lost mid-COMMIT.
 *
 * Sizes: CI runs a slice (10 kills over 800 statements, 2,000 statements for the
 * multi-runner tests; SQLite's kills 4 over 200); `npm run test:faults`
 * (QUERYBATCH_FAULTS=full) runs the full ones on every dialect (50 kills over 4,000
 * statements, 5,000 statements). Figures are printed as `[faults] …`.
 * The runner kills, the several runners and the producer kills run on every dialect
 * (test/dialects.ts FAULT_DIALECTS: MariaDB, PostgreSQL and SQLite, whose runners contend for
 * the lock file beside the database); the rest is MariaDB's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { spoolPathFor } from '../src/spool/shards.js';
import { count, cuttingProxy, filesBelow, jobIdsBelow, removeHome, sessionRunning, startRunner, tempHome, useTestDatabase, waitFor } from './helpers.js';
import { FAULT_DIALECTS, type FixtureDatabase } from './dialects.js';

const FULL = process.env.QUERYBATCH_FAULTS === 'full';
const KILL_STATEMENTS_ALL = FULL ? 4000 : 800;
const KILLS_ALL = FULL ? 50 : 10;
const MULTI_STATEMENTS = FULL ? 5000 : 2000;

const t = useTestDatabase('crash');

function report(line: string): void {
  console.log(`[faults] ${line}`);
}

async function homeWith(datasources: Record<string, unknown>): Promise<string> {
  const home = await tempHome();
  await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources }));
  return home;
}

interface KillFigures {
  kills: number;
  runs: number;
  executedRows: number;
  duplicates: number;
  lost: number;
  ms: number;
}

async function countOf(db: FixtureDatabase, sql: string, params: readonly unknown[] = []): Promise<number> {
  return Number((await db.query(sql, params))[0]!.c);
}

/** The jobs in `table` (a fixture table, the job in v) in the order they ran. */
async function jobsInOrder(db: FixtureDatabase, table: string, where = ''): Promise<number[]> {
  return (await db.query(`SELECT v FROM ${table} ${where} ORDER BY k`)).map((r) => Number(String(r.v).replace(/^\w+:/, '')));
}

/**
 * The scenarios below run on every dialect (MariaDB, and PostgreSQL and SQLite when their
 * drivers are registered), each on a fresh database of its own, with one table shape (k, v):
 * the job number in v, the order it ran in k.
 */
describe.each(FAULT_DIALECTS)('$fixture.name', (dialect) => {
  // SQLite's quick slice is smaller (its share of CI kept to about 45 s: without the ledger each
  // statement is a transaction and an fsync of its own, and the drain is slower than a server's).
  // (The several runners keep their size: with fewer statements they don't overlap to contend.)
  const [KILL_STATEMENTS, KILLS] = FULL || dialect.fixture.name !== 'sqlite' ? [KILL_STATEMENTS_ALL, KILLS_ALL] : [200, 4];
  let db: FixtureDatabase;
  let dbHome = ''; // where a SQLite database file lives
  beforeAll(async () => {
    dbHome = await tempHome();
    db = await dialect.fixture.open(dbHome);
  });
  afterAll(async () => {
    await db?.close();
    await removeHome(dbHome);
  });

  /**
   * Spools `total` INSERTs into an audit table with no unique key (in segments when the ledger
   * is on; 7 in 8 of them single-row INSERTs that group commit merges), then starts runner processes
   * and SIGKILLs them at random moments (half after a random delay, from startup and recovery
   * on; half after a random number of rows), restarting after each, until `kills` kills; then
   * one run to the end. Counts rows per job.
   */
  async function killLoop(table: string, ledger: boolean, total: number, kills: number): Promise<KillFigures> {
    await db.exec(dialect.fixture.table(table));
    const home = await homeWith({ main: { url: db.url, ledger } });
    const started = Date.now();
    try {
      const q = new QueryBatch({ home, durability: 'none' });
      // Every 8th statement takes 40 ms on the server: the drain lasts long enough
      // (4 s for 800) for every kill to land mid-drain, however fast the runner gets. The 7
      // between are plain single-row INSERTs, which the group commit merges into one
      // multi-row INSERT (coalescing, issue 15): kills land in merged groups too.
      // With the ledger, 16 producers at a time: most jobs share segment files (spool/writer.ts),
      // so kills land mid-segment too. Without it every job has a file of its own.
      const producers = ledger ? 16 : 1;
      // SQLite's short run (200 statements) takes its slow ones at 0.1 s: at 0.04 a quiet machine
      // drained it before the fourth kill.
      const slow = total < 800 ? 0.1 : 0.04;
      const sqlOf = (job: number) => (job % 8 === 7 ? dialect.slowInsert(table, slow) : `INSERT INTO ${table} (v) VALUES (?)`);
      for (let k = 0; k < total; k += producers) {
        await Promise.all(Array.from({ length: Math.min(producers, total - k) }, (_, j) => q.spool(sqlOf(k + j), [k + j])));
      }
      await q.close();

      let killed = 0;
      let runs = 0;
      while (killed < kills) {
        const before = await countOf(db, `SELECT COUNT(*) AS c FROM ${table}`);
        const runner = startRunner(home);
        runs++;
        if (killed % 2 === 0) {
          await new Promise((r) => setTimeout(r, 20 + Math.random() * 600));
        } else {
          const step = 1 + Math.floor(Math.random() * (total / kills));
          await Promise.race([
            waitFor(async () => ((await countOf(db, `SELECT COUNT(*) AS c FROM ${table}`)) >= before + step ? true : undefined), 30_000),
            runner.exit,
          ]);
        }
        runner.child.kill('SIGKILL');
        const { signal, code, stderr } = await runner.exit;
        if (signal === 'SIGKILL') killed++;
        else if (code !== 0) throw new Error(`runner exited ${code}: ${stderr}`);
        if ((await filesBelow(join(home, 'spool'))).length === 0 && signal !== 'SIGKILL') break; // drained before a kill
      }
      // Then runs to the end (a killed runner's session may hold the datasource lock a moment
      // longer on the server: a run meanwhile skips the datasource, and the next one drains it).
      // (A runner killed while writing its leaf index leaves that temp in spool/.tmp: the next
      // run removes it, its writer being dead, so nothing is left below.)
      for (let i = 0; i < 20; i++) {
        const last = startRunner(home);
        runs++;
        const { code, stderr, stdout } = await last.exit;
        expect(code, stderr).toBe(0);
        if (!(JSON.parse(stdout) as { datasources: { main: { busy?: boolean } } }).datasources.main.busy) break;
        await new Promise((r) => setTimeout(r, 100));
      }

      if (ledger && (await countOf(db, 'SELECT COUNT(*) AS c FROM querybatch_ledger')) > 0) {
        // A runner killed after the COMMIT of the last jobs (a merged group fills one
        // transaction: the "after a random number of rows" kill lands right after it) and
        // before its end-of-run prune leaves their ledger rows; a run with nothing to do
        // connects to nothing, so the next run that does work prunes them: one more job, in a
        // table of its own.
        await db.exec(dialect.fixture.table(`${table}_tail`));
        const tail = new QueryBatch({ home, durability: 'none' });
        await tail.spool(`INSERT INTO ${table}_tail (v) VALUES (?)`, [0]);
        await tail.close();
        const last = startRunner(home);
        runs++;
        expect((await last.exit).code).toBe(0);
      }

      // Nothing left anywhere: not pending, not claimed, not failed.
      expect(await filesBelow(join(home, 'spool'))).toEqual([]);
      expect(await readdir(join(home, 'spool', '.active'))).toEqual([]);
      expect(await readdir(join(home, 'failed'))).toEqual([]);

      const rows = await db.query(`SELECT v, COUNT(*) AS c FROM ${table} GROUP BY v`);
      const counts = new Map(rows.map((r) => [Number(r.v), Number(r.c)]));
      let duplicates = 0;
      let lost = 0;
      for (let k = 0; k < total; k++) {
        const c = counts.get(k) ?? 0;
        if (c === 0) lost++;
        if (c > 1) duplicates += c - 1;
      }
      const figures = { kills: killed, runs, executedRows: await countOf(db, `SELECT COUNT(*) AS c FROM ${table}`), duplicates, lost, ms: Date.now() - started };
      report(`${dialect.fixture.name}, ledger ${ledger ? 'on' : 'off'}: ${total} statements, ${figures.kills} SIGKILLs over ${figures.runs} runner processes, ${figures.executedRows} rows, ${figures.duplicates} duplicates, ${figures.lost} lost, ${figures.ms} ms`);
      return figures;
    } finally {
      await removeHome(home);
    }
  }

  describe('runner SIGKILLed at random moments', () => {
    it(`ledger on: every one of ${KILL_STATEMENTS} statements runs exactly once through ${KILLS} kills, in FIFO order`, async () => {
      const figures = await killLoop('audit_once', true, KILL_STATEMENTS, KILLS);
      expect(figures.kills).toBe(KILLS);
      expect(figures.lost).toBe(0);
      expect(figures.duplicates).toBe(0);
      expect(figures.executedRows).toBe(KILL_STATEMENTS);
      // Recovered claims keep their place: the rows are in job order.
      expect(await jobsInOrder(db, 'audit_once')).toEqual(Array.from({ length: KILL_STATEMENTS }, (_, k) => k));
      // The ledger was pruned once the files were gone.
      expect(await countOf(db, 'SELECT COUNT(*) AS c FROM querybatch_ledger')).toBe(0);
    }, 600_000);

    it(`ledger off: nothing lost, duplicates at most one per kill (${KILLS} kills)`, async () => {
      const figures = await killLoop('audit_atleast', false, KILL_STATEMENTS, KILLS);
      expect(figures.kills).toBe(KILLS);
      expect(figures.lost).toBe(0);
      expect(figures.duplicates).toBeLessThanOrEqual(figures.kills);
    }, 600_000);
  });

  describe('several runner processes on one spool', () => {
    for (const runners of [2, 4]) {
      it(`${runners} runners started together on ${MULTI_STATEMENTS} statements of 2 datasources: 0 duplicates, FIFO per datasource, busy ones skip`, async () => {
        const table = `multi_${runners}`;
        await db.exec(dialect.fixture.table(table));
        const home = await homeWith({ main: { url: db.url }, other: { url: db.url } });
        try {
          const q = new QueryBatch({ home, durability: 'none' });
          for (let k = 0; k < MULTI_STATEMENTS; k++) {
            const ds = k % 2 === 0 ? 'main' : 'other';
            // Each job's text its own (the comment before the row): nothing merges, so a group
            // holds ledger.batch jobs, and the drains last long enough for the runners to meet.
            await q.spool(`INSERT INTO ${table} /* ${k} */ (v) VALUES (?)`, [`${ds}:${k}`], { datasource: ds });
          }
          await q.close();
          const started = Date.now();
          const results = await Promise.all(Array.from({ length: runners }, () => startRunner(home).exit));
          const ms = Date.now() - started;
          for (const r of results) expect(r.code, r.stderr).toBe(0);
          const summaries = results.map((r) => JSON.parse(r.stdout) as { success: number; datasources: Record<string, { busy?: boolean; success: number }> });
          const busy = summaries.flatMap((s) => Object.entries(s.datasources).filter(([, d]) => d.busy).map(([name]) => name));
          const successes = summaries.reduce((n, s) => n + s.success, 0);
          // Whatever a runner that skipped left behind (nothing, if the lock holders drained all).
          const rest = startRunner(home);
          expect((await rest.exit).code).toBe(0);
          expect(await filesBelow(join(home, 'spool'))).toEqual([]);

          const rows = await countOf(db, `SELECT COUNT(*) AS c FROM ${table}`);
          const distinct = await countOf(db, `SELECT COUNT(DISTINCT v) AS c FROM ${table}`);
          report(`${dialect.fixture.name}, ${runners} runners, ${MULTI_STATEMENTS} statements: ${successes} executed, ${busy.length} datasource skips (lock held by another runner), ${rows} rows, ${rows - distinct} duplicates, ${MULTI_STATEMENTS - distinct} lost, ${ms} ms`);
          expect(rows).toBe(MULTI_STATEMENTS);
          expect(distinct).toBe(MULTI_STATEMENTS);
          expect(busy.length).toBeGreaterThanOrEqual(1);
          for (const ds of ['main', 'other']) {
            const jobs = await jobsInOrder(db, table, `WHERE v LIKE '${ds}:%'`);
            expect(jobs).toHaveLength(MULTI_STATEMENTS / 2);
            expect(jobs).toEqual([...jobs].sort((a, b) => a - b));
          }
        } finally {
          await removeHome(home);
        }
      }, 300_000);
    }
  });

  describe('spool() under SIGKILL of the producer', () => {
    it('every id spool() resolved with survives the kill and runs once; no partial file is ever read', async () => {
      await db.exec(dialect.fixture.table('produced'));
      const home = await homeWith({ main: { url: db.url } });
      try {
        const { spawn } = await import('node:child_process');
        const script = `
          const { QueryBatch } = await import(${JSON.stringify(join(import.meta.dirname, '..', 'dist', 'index.js'))});
          const q = new QueryBatch({ home: ${JSON.stringify(home)} });
          for (let k = 0; ; k++) {
            // 8 concurrent writers, as a busy application would have
            await Promise.all(Array.from({ length: 8 }, async (_, j) => {
              const job = k * 8 + j;
              const id = await q.spool('INSERT INTO produced (v) VALUES (?)', [String(job)]);
              process.stdout.write(job + ' ' + id + '\\n');
            }));
          }`;
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise((r) => child.on('exit', r));
        await waitFor(() => (out.split('\n').length > 300 ? true : undefined), 30_000);
        child.kill('SIGKILL');
        await exited;
        const acknowledged = out.split('\n').filter((l) => /^\d+ \w{26}$/.test(l)).map((l) => l.split(' ') as [string, string]);
        // Alone or in a segment, every acknowledged job is in a complete file.
        const spooled = new Set(await jobIdsBelow(join(home, 'spool', 'main')));
        for (const [, id] of acknowledged) expect(spooled.has(id)).toBe(true);
        const q = new QueryBatch({ home, tmpMaxAgeMs: 0 });
        const summary = await q.run();
        await q.close();
        expect(summary.invalid).toBe(0);
        expect(summary.sqlFailed).toBe(0);
        expect(await readdir(join(home, 'spool', '.tmp'))).toEqual([]); // leftovers of the killed writes removed
        const counts = new Map((await db.query('SELECT v, COUNT(*) AS c FROM produced GROUP BY v')).map((r) => [String(r.v), Number(r.c)]));
        const lost = acknowledged.filter(([job]) => !counts.has(job)).length;
        const duplicates = [...counts.values()].reduce((n, c) => n + c - 1, 0);
        expect({ lost, duplicates }).toEqual({ lost: 0, duplicates: 0 });
        expect(await countOf(db, 'SELECT COUNT(*) AS c FROM produced')).toBe(summary.success);
        report(`${dialect.fixture.name}: producer SIGKILLed after ${acknowledged.length} acknowledged spool() calls: ${lost} lost, ${duplicates} duplicates, ${summary.success} run in all (spooled, not yet acknowledged, at the kill: ${summary.success - acknowledged.length}), ${summary.tmpRemoved} temp files removed`);
      } finally {
        await removeHome(home);
      }
    });
  });
});

describe('connection lost mid-statement and mid-COMMIT, ledger on', () => {
  it('a connection lost during COMMIT: the ledger is asked, the job counts once and never runs again', async () => {
    await t.db.query('CREATE TABLE midcommit (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    const target = new URL(t.url);
    const proxy = await cuttingProxy({ host: target.hostname, port: Number(target.port || 3306) }, 'COMMIT');
    const home = await tempHome();
    const proxied = `mysql://root@127.0.0.1:${proxy.port}/${t.name}`;
    const q = new QueryBatch({ home, configFile: false, datasources: { main: proxied } });
    try {
      const ids = [];
      for (let k = 0; k < 5; k++) ids.push(await q.spool('INSERT INTO midcommit (job) VALUES (?)', [k]));
      proxy.arm();
      const first = await q.run();
      expect(proxy.cuts).toBe(1);
      // Cut during the COMMIT of the first transaction (the 5 jobs as one group-commit batch):
      // the run stops the datasource there. The ledger, asked on a new connection, says
      // whether it committed (here it has: success for the batch, or the head job charged).
      expect(first.connectionFailed === 1 || first.success === 5).toBe(true);
      expect(first.datasources.main!.connectionError).toMatch(/PROTOCOL_CONNECTION_LOST|ECONNRESET/);
      let done = first.success;
      let settled = 0;
      for (let i = 0; i < 20 && (await filesBelow(join(home, 'spool'))).length > 0; i++) {
        await new Promise((r) => setTimeout(r, 100)); // the cut session holds the lock until it closes
        const next = await q.run();
        done += next.success;
        settled += next.settled;
      }
      expect(done + settled).toBe(5);
      expect(await filesBelow(join(home, 'spool'))).toEqual([]);
      expect(await readdir(join(home, 'failed'))).toEqual([]);
      const [rows] = await t.db.query('SELECT job FROM midcommit ORDER BY n');
      expect((rows as Array<{ job: number }>).map((r) => r.job)).toEqual([0, 1, 2, 3, 4]);
      report(`lost during COMMIT: first run ${JSON.stringify({ success: first.success, connectionFailed: first.connectionFailed })}, settled later ${settled}, one row per job`);
    } finally {
      await q.close();
      await proxy.close();
      await removeHome(home);
    }
  });

  it('a connection KILLed mid-statement rolls back the ledger row with it; the job runs once on the next run', async () => {
    await t.db.query('CREATE TABLE midstmt (id INT PRIMARY KEY, v INT NOT NULL)');
    await t.db.query('INSERT INTO midstmt VALUES (1, 0), (2, 0)');
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const holder = await (await import('mysql2/promise')).default.createConnection({ uri: t.url });
    try {
      const blocked = await q.spool('UPDATE midstmt SET v = v + 1 WHERE id = 1');
      await q.spool('UPDATE midstmt SET v = v + 1 WHERE id = 2');
      // The statement waits on a row lock held by another session, then its connection is KILLed.
      await holder.query('START TRANSACTION');
      await holder.query('SELECT * FROM midstmt WHERE id = 1 FOR UPDATE');
      const running = q.run();
      const victim = await sessionRunning(t, '%UPDATE midstmt%');
      await t.db.query(`KILL CONNECTION ${victim}`);
      expect(await running).toMatchObject({ success: 0, connectionFailed: 1, deferred: 2 });
      await holder.query('COMMIT');
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE id = ?', [blocked])).toBe(0);
      const { readFile } = await import('node:fs/promises');
      const record = JSON.parse(await readFile(spoolPathFor(join(home, 'spool'), 'main', blocked), 'utf8')) as { attempts: number };
      expect(record.attempts).toBe(1);
      expect(await q.run()).toMatchObject({ success: 2, settled: 0 });
      const [rows] = await t.db.query('SELECT v FROM midstmt ORDER BY id');
      expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([1, 1]);
    } finally {
      await holder.end();
      await q.close();
      await removeHome(home);
    }
  }, 60_000);
});

describe('group commit (ledger.batch)', () => {
  it('a connection KILLed mid-batch rolls the whole batch back; the head carries the attempt and then runs alone', async () => {
    await t.db.query('CREATE TABLE midbatch (id INT PRIMARY KEY, v INT NOT NULL)');
    await t.db.query('INSERT INTO midbatch VALUES (1, 0), (2, 0), (3, 0)');
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const holder = await (await import('mysql2/promise')).default.createConnection({ uri: t.url });
    try {
      const ids = [];
      for (const id of [1, 2, 3]) ids.push(await q.spool('UPDATE midbatch SET v = v + 1 WHERE id = ?', [id]));
      await holder.query('START TRANSACTION');
      await holder.query('SELECT * FROM midbatch WHERE id = 2 FOR UPDATE'); // the batch's 2nd statement waits
      const running = q.run();
      const victim = await sessionRunning(t, '%UPDATE midbatch%');
      await t.db.query(`KILL CONNECTION ${victim}`);
      expect(await running).toMatchObject({ success: 0, connectionFailed: 1, deferred: 3 });
      await holder.query('COMMIT');
      // Nothing of the batch ran: job 1's update was rolled back with the others.
      const [before] = await t.db.query('SELECT v FROM midbatch ORDER BY id');
      expect((before as Array<{ v: number }>).map((r) => r.v)).toEqual([0, 0, 0]);
      const { readFile } = await import('node:fs/promises');
      const attempts = await Promise.all(ids.map(async (id) => (JSON.parse(await readFile(spoolPathFor(join(home, 'spool'), 'main', id), 'utf8')) as { attempts: number }).attempts));
      expect(attempts).toEqual([1, 0, 0]);
      expect(await q.run()).toMatchObject({ success: 3 });
      const [after] = await t.db.query('SELECT v FROM midbatch ORDER BY id');
      expect((after as Array<{ v: number }>).map((r) => r.v)).toEqual([1, 1, 1]);
    } finally {
      await holder.end();
      await q.close();
      await removeHome(home);
    }
  }, 60_000);

  it('an SQL error in a batch rolls it back and runs its jobs one by one: only the failing one goes to failed/', async () => {
    await t.db.query('CREATE TABLE batcherr (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: { batch: 4 } } } });
    try {
      const ids = [];
      for (let k = 0; k < 10; k++) ids.push(await q.spool(k === 5 ? 'INSERT INTO batcherr (nope) VALUES (?)' : 'INSERT INTO batcherr (job) VALUES (?)', [k]));
      expect(await q.run()).toMatchObject({ success: 9, sqlFailed: 1, settled: 0 });
      expect(await readdir(join(home, 'failed'))).toEqual([`failed-${ids[5]}.batchsql`]);
      const [rows] = await t.db.query('SELECT job FROM batcherr ORDER BY n');
      expect((rows as Array<{ job: number }>).map((r) => r.job)).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9]);
    } finally {
      await q.close();
      await removeHome(home);
    }
  });
});

describe('claims of runners on other hosts', () => {
  it('are given back once the datasource lock is ours, and left alone while another session holds it', async () => {
    await t.db.query('CREATE TABLE foreign_claims (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    const home = await tempHome();
    const q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    try {
      const ids = [];
      for (let k = 0; k < 4; k++) ids.push(await q.spool('INSERT INTO foreign_claims (job) VALUES (?)', [k]));
      // Another host's runner claimed the first two, then vanished.
      const claimDir = join(home, 'spool', '.active', `not-${hostname()}.4242.1700000000000`, 'main');
      await mkdir(claimDir, { recursive: true });
      for (const id of ids.slice(0, 2)) await rename(spoolPathFor(join(home, 'spool'), 'main', id), join(claimDir, `${id}.batchsql`));

      // While a session holds the lock (that host's runner alive), its claims stay put.
      const { lockNameFor } = await import('../src/db/mysql/dialect.js');
      const { readFile } = await import('node:fs/promises');
      const lock = lockNameFor((await readFile(join(home, 'spool', '.id'), 'utf8')).trim(), 'main');
      await t.db.query('SELECT GET_LOCK(?, 0)', [lock]);
      expect(await q.run()).toMatchObject({ success: 0, recovered: 0, datasources: { main: { busy: true } } });
      expect((await readdir(claimDir)).length).toBe(2);
      await t.db.query('SELECT RELEASE_LOCK(?)', [lock]);

      // Lock free: that runner is dead. Its claims go back in their places and run first.
      expect(await q.run()).toMatchObject({ success: 4, recovered: 2 });
      const [rows] = await t.db.query('SELECT job FROM foreign_claims ORDER BY n');
      expect((rows as Array<{ job: number }>).map((r) => r.job)).toEqual([0, 1, 2, 3]);
      expect(await readdir(join(home, 'spool', '.active'))).toEqual([]);
    } finally {
      await q.close();
      await removeHome(home);
    }
  });
});

// A real full disk under the runner: a small tmpfs holds the whole home (root only, as in CI).
describe.skipIf(process.getuid?.() !== 0)('disk full during the runner\'s moves', () => {
  it('a move that fails for want of space stops the run; nothing is lost or run twice once there is room again', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtemp, rm, appendFile, unlink } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { isQueryBatchError } = await import('../src/errors.js');
    await t.db.query('CREATE TABLE diskfull (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    const mount = await mkdtemp(join(tmpdir(), 'qb-runner-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mount]);
    let q: QueryBatch | undefined;
    try {
      q = new QueryBatch({ home: mount, configFile: false, datasources: { main: t.url } });
      // A statement that fails: its file must be rewritten (attempts, lastError) before it moves
      // to failed/, which needs a page the full disk does not have. (It comes first: each
      // finished job's removal frees a page. A refused job settles when its burst ends, so
      // the 8 others of its group run and commit first.)
      const failing = await q.spool('INSERT INTO no_such_table VALUES (1)');
      for (let k = 0; k < 8; k++) await q.spool('INSERT INTO diskfull (job) VALUES (?)', [k]);
      const filler = join(mount, 'filler');
      try {
        for (;;) await appendFile(filler, Buffer.alloc(4096, 1));
      } catch (error) {
        expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
      }
      const error = await q.run().then(() => null, (e: unknown) => e);
      expect(isQueryBatchError(error, 'RUN_IO_FAILED')).toBe(true);
      expect((error as Error).message).toMatch(/ENOSPC/);
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM diskfull')).toBe(8);
      // The refused job's claim stays, whole; the committed jobs' claims are gone.
      expect(await filesBelow(join(mount, 'spool', '.active'))).toHaveLength(1);

      await unlink(filler);
      const summary = await q.run();
      expect(summary).toMatchObject({ recovered: 1, success: 0, sqlFailed: 1 });
      expect(await readdir(join(mount, 'failed'))).toEqual([`failed-${failing}.batchsql`]);
      const [rows] = await t.db.query('SELECT job FROM diskfull ORDER BY n');
      expect((rows as Array<{ job: number }>).map((r) => r.job)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(await filesBelow(join(mount, 'spool'))).toEqual([]);
    } finally {
      await q?.close();
      execFileSync('umount', [mount]);
      await rm(mount, { recursive: true, force: true });
    }
  });
});
