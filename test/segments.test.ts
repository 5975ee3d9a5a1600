import { afterEach, describe, expect, it } from 'vitest';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import mysql from 'mysql2/promise';
import { QueryBatch } from '../src/index.js';
import { parseJobFileName } from '../src/spool/shards.js';
import { decodeRecord, decodeSegment } from '../src/spool/record.js';
import { count, failedNames, filesBelow, jobIdsBelow, removeHome, sessionRunning, tempHome, useTestDatabase } from './helpers.js';

const t = useTestDatabase('segments');
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
});

/** Spools `n` statements at once (concurrent producers): the first is written alone, the rest wait and share segments. */
async function spoolTogether(n: number, sqlOf: (k: number) => string): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, (_, k) => q!.spool(sqlOf(k), [k])));
}

/** The segment files below spool/ (names `<id>.<n>.batchsql`). */
async function segmentFiles(): Promise<string[]> {
  return (await filesBelow(join(home, 'spool'))).filter((f) => (parseJobFileName(basename(f))?.count ?? 1) > 1).sort();
}

async function jobsOf(table: string): Promise<number[]> {
  const [rows] = await t.db.query(`SELECT job FROM ${table} ORDER BY n`);
  return (rows as Array<{ job: number }>).map((r) => r.job);
}

describe('segments (concurrent spool() calls sharing a file)', () => {
  it('are written by concurrent producers, counted job by job, found by status, and run once each in FIFO order', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE seg_fifo (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const ids = await spoolTogether(40, () => 'INSERT INTO seg_fifo (job) VALUES (?)');
    const segments = await segmentFiles();
    expect(segments.length).toBeGreaterThan(0);
    expect(await jobIdsBelow(join(home, 'spool'))).toEqual([...ids].sort());
    // Each line is a complete record with its own checksum.
    const [first] = segments;
    const records = decodeSegment(await readFile(first!, 'utf8'), parseJobFileName(basename(first!))!.count);
    expect(records[0]!.id).toBe(parseJobFileName(basename(first!))!.id);

    // Counted job by job, not file by file.
    expect(await q.status()).toMatchObject({ pending: { main: { count: 40 } } });
    // A job inside a segment is found, with its place in line.
    const inside = records[3]!.id;
    expect(await q.status(inside)).toMatchObject({ state: 'queued', position: ids.indexOf(inside) + 1, attempts: 0 });

    expect(await q.run()).toMatchObject({ success: 40, sqlFailed: 0, connectionFailed: 0 });
    expect(await jobsOf('seg_fifo')).toEqual(Array.from({ length: 40 }, (_, k) => k));
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
    expect(await q.status(inside)).toMatchObject({ state: 'succeeded' });
  });

  for (const batch of [32, 1]) {
    it(`an SQL error inside a segment sends that job alone to failed/; the others commit (ledger.batch ${batch})`, async () => {
      home = await tempHome();
      const table = `seg_err_${batch}`;
      await t.db.query(`CREATE TABLE ${table} (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)`);
      q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: { batch } } } });
      const ids = await spoolTogether(12, (k) => (k === 6 ? `INSERT INTO ${table} (nope) VALUES (?)` : `INSERT INTO ${table} (job) VALUES (?)`));
      expect((await segmentFiles()).length).toBeGreaterThan(0);
      expect(await q.run()).toMatchObject({ success: 11, sqlFailed: 1, connectionFailed: 0 });
      expect(await jobsOf(table)).toEqual([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11]);
      // A file of its own, a valid job carrying its error, respoolable as any other.
      expect(await readdir(join(home, 'failed'))).toEqual([`failed-${ids[6]}.batchsql`]);
      const failed = decodeRecord(await readFile(join(home, 'failed', `failed-${ids[6]}.batchsql`), 'utf8'));
      expect(failed).toMatchObject({ id: ids[6], attempts: 1, lastError: { class: 'sql', code: 'ER_BAD_FIELD_ERROR' } });
      expect(await filesBelow(join(home, 'spool'))).toEqual([]);
      const log = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8');
      expect(log).toContain(ids[6]);
      expect(log).toContain(`INSERT INTO ${table} (nope)`);
    });
  }

  it('a connection KILLed mid-segment: the unfinished jobs go back as one file, the cut one carrying the attempt; then each runs once', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE seg_kill (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    await t.db.query('CREATE TABLE seg_gate (id INT PRIMARY KEY)');
    await t.db.query('INSERT INTO seg_gate VALUES (1)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: { batch: 1 } } } });
    // Job 5 waits on a row lock held by another session; jobs 0-4 commit one by one before it.
    const ids = await spoolTogether(10, (k) => (k === 5 ? 'INSERT INTO seg_kill (job) SELECT ? FROM seg_gate WHERE id = 1 FOR UPDATE' : 'INSERT INTO seg_kill (job) VALUES (?)'));
    expect((await segmentFiles()).length).toBeGreaterThan(0);
    const holder = await mysql.createConnection({ uri: t.url });
    try {
      await holder.query('START TRANSACTION');
      await holder.query('SELECT * FROM seg_gate WHERE id = 1 FOR UPDATE');
      const running = q.run();
      const victim = await sessionRunning(t, '%FROM seg_gate%');
      await t.db.query(`KILL CONNECTION ${victim}`);
      expect(await running).toMatchObject({ success: 5, connectionFailed: 1, deferred: 5 });
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    expect(await jobsOf('seg_kill')).toEqual([0, 1, 2, 3, 4]);
    // Jobs 5-9 are pending again, in one file named after job 5; job 5 has one attempt.
    expect(await jobIdsBelow(join(home, 'spool', 'main'))).toEqual(ids.slice(5).sort());
    expect(await q.status(ids[5]!)).toMatchObject({ state: 'queued', position: 1, attempts: 1 });
    expect(await q.status(ids[6]!)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await q.run()).toMatchObject({ success: 5, settled: 0 });
    expect(await jobsOf('seg_kill')).toEqual(Array.from({ length: 10 }, (_, k) => k));
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM seg_kill')).toBe(10);
  }, 60_000);

  it('an unreachable database: the head job of a segment carries the attempt, and alone reaches failed/connection-…; the rest wait', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: 'mysql://root@127.0.0.1:1/test' }, maxConnectionAttempts: 2 });
    const ids = await spoolTogether(6, () => 'INSERT INTO nowhere (job) VALUES (?)');
    const [segment] = await segmentFiles();
    const { id: head, count: n } = parseJobFileName(basename(segment!))!;
    expect(await q.run()).toMatchObject({ connectionFailed: 1 }); // the lone first file
    expect(await q.run()).toMatchObject({ connectionFailed: 1 }); // it again: now in failed/
    expect(await readdir(join(home, 'failed'))).toEqual([`connection-${ids[0]}.batchsql`]);
    expect(await q.run()).toMatchObject({ connectionFailed: 1 }); // the segment's head, attempt 1
    expect(await q.status(head)).toMatchObject({ state: 'queued', attempts: 1 });
    expect(await q.run()).toMatchObject({ connectionFailed: 1 }); // attempt 2: failed/, alone
    expect((await readdir(join(home, 'failed'))).sort()).toEqual([`connection-${ids[0]}.batchsql`, `connection-${head}.batchsql`].sort());
    expect(decodeRecord(await readFile(join(home, 'failed', `connection-${head}.batchsql`), 'utf8'))).toMatchObject({ id: head, attempts: 2, lastError: { class: 'connection' } });
    // The segment's other jobs wait in the spool, untouched.
    const waiting = ids.slice(ids.indexOf(head) + 1, ids.indexOf(head) + n);
    expect((await jobIdsBelow(join(home, 'spool', 'main'))).slice(0, waiting.length)).toEqual(waiting);
    for (const id of waiting) expect(await q.status(id)).toMatchObject({ state: 'queued', attempts: 0 });
  });

  it('the last open job of a segment reaching failed/connection-… takes the claim with it: nothing is left claimed, nothing runs again', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE seg_last (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    await t.db.query('CREATE TABLE seg_last_gate (id INT PRIMARY KEY)');
    await t.db.query('INSERT INTO seg_last_gate VALUES (1)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: { batch: 1 } } }, maxConnectionAttempts: 1 });
    // The last job waits on a row lock; the ones before it commit first.
    const ids = await spoolTogether(4, (k) => (k === 3 ? 'INSERT INTO seg_last (job) SELECT ? FROM seg_last_gate WHERE id = 1 FOR UPDATE' : 'INSERT INTO seg_last (job) VALUES (?)'));
    const holder = await mysql.createConnection({ uri: t.url });
    try {
      await holder.query('START TRANSACTION');
      await holder.query('SELECT * FROM seg_last_gate WHERE id = 1 FOR UPDATE');
      const running = q.run();
      await t.db.query(`KILL CONNECTION ${await sessionRunning(t, '%FROM seg_last_gate%')}`);
      expect(await running).toMatchObject({ success: 3, connectionFailed: 1 });
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    expect(await readdir(join(home, 'failed'))).toEqual([`connection-${ids[3]}.batchsql`]);
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
    expect(await q.run()).toMatchObject({ success: 0, settled: 0, recovered: 0 });
    expect(await jobsOf('seg_last')).toEqual([0, 1, 2]);
  }, 60_000);

  it('run({ limit }) stops inside a segment: the jobs not reached go back to the spool, in order', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE seg_limit (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const ids = await spoolTogether(20, () => 'INSERT INTO seg_limit (job) VALUES (?)');
    expect(await q.run({ limit: 5 })).toMatchObject({ success: 5, deferred: 15 });
    expect(await jobsOf('seg_limit')).toEqual([0, 1, 2, 3, 4]);
    expect(await jobIdsBelow(join(home, 'spool', 'main'))).toEqual(ids.slice(5).sort());
    expect(await readdir(join(home, 'spool', '.active'))).toEqual([]);
    expect(await q.run()).toMatchObject({ success: 15 });
    expect(await jobsOf('seg_limit')).toEqual(Array.from({ length: 20 }, (_, k) => k));
  });

  it('with the ledger turned off after spooling, a segment becomes files of their own and every job runs', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE seg_off (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await spoolTogether(10, () => 'INSERT INTO seg_off (job) VALUES (?)');
    expect((await segmentFiles()).length).toBeGreaterThan(0);
    await q.close();
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: false } } });
    expect(await q.run()).toMatchObject({ success: 10, sqlFailed: 0 });
    expect(await jobsOf('seg_off')).toEqual(Array.from({ length: 10 }, (_, k) => k));
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('a damaged line fails the whole segment to failed/, naming the line; nothing is lost', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE seg_bad (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await spoolTogether(6, () => 'INSERT INTO seg_bad (job) VALUES (?)');
    const [segment] = await segmentFiles();
    const text = await readFile(segment!, 'utf8');
    const lines = text.split('\n');
    lines[1] = lines[1]!.replace('INSERT INTO seg_bad', 'INSERT INTO seg_BAD');
    await writeFile(segment!, lines.join('\n'));
    const summary = await q.run();
    expect(summary).toMatchObject({ invalid: 1, success: 6 - parseJobFileName(basename(segment!))!.count });
    const failedName = `failed-${basename(segment!)}`;
    expect(await failedNames(home)).toEqual([failedName]);
    const log = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8');
    expect(log).toMatch(/Line 2 of \d+ of the segment: Checksum mismatch/);
    // Mended by hand, it is respooled like any failed file, and its jobs run.
    await writeFile(join(home, 'failed', failedName), text);
    expect(await q.respool({ names: [failedName] })).toMatchObject({ respooled: [{ name: failedName }] });
    expect(await q.run()).toMatchObject({ success: parseJobFileName(basename(segment!))!.count, invalid: 0 });
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM seg_bad')).toBe(6);
    expect(await readdir(join(home, 'failed'))).toEqual([]);
  });

  it('a segment moved by hand to the top of spool/ is adopted: its jobs are queued as files of their own and run', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE seg_drop (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url }, dropInSettleMs: 0 });
    const ids = await spoolTogether(8, () => 'INSERT INTO seg_drop (job) VALUES (?)');
    const [segment] = await segmentFiles();
    await rename(segment!, join(home, 'spool', basename(segment!)));
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 8, invalid: 0 });
    expect(summary.adopted).toBeGreaterThan(1);
    expect(await jobsOf('seg_drop')).toEqual(Array.from({ length: 8 }, (_, k) => k));
    expect(ids).toHaveLength(8);
  });

  it('jobs that need a file of their own are never put in a segment (immediate, captured results, DDL)', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await Promise.all([
      ...Array.from({ length: 4 }, () => q!.spool('DO 1', [], { priority: 'immediate' })),
      ...Array.from({ length: 4 }, () => q!.spool('SELECT 1', [], { captureResult: true })),
      ...Array.from({ length: 4 }, (_, k) => q!.spool(`CREATE TABLE IF NOT EXISTS seg_ddl_${k} (a INT)`)),
    ]);
    expect(await segmentFiles()).toEqual([]);
    expect(await filesBelow(join(home, 'spool', 'main'))).toHaveLength(12);
  });
});
