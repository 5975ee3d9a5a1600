import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { QueryBatch, type QueryBatchOptions, type RunSummary } from '../src/index.js';
import { DIALECTS, type FixtureDatabase } from './dialects.js';
import { failedNames, removeHome, runCli, tempHome, waitFor } from './helpers.js';

/**
 * The conformance suite: one set of scenarios, run against every dialect (test/dialects.ts).
 * Each drives querybatch's public API and checks the rows through the database's own client.
 */
describe.each(DIALECTS)('conformance: $name', (dialect) => {
  let home: string;
  let db: FixtureDatabase;
  const open: QueryBatch[] = [];

  function qb(options: Partial<QueryBatchOptions> = {}): QueryBatch {
    const q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: { url: db.url } }, ...options });
    open.push(q);
    return q;
  }

  async function values(table = 'jobs'): Promise<string[]> {
    return (await db.query(`SELECT v FROM ${table} ORDER BY k`)).map((r) => String(r.v));
  }

  beforeEach(async () => {
    home = await tempHome();
    db = await dialect.open(home);
    await db.exec(dialect.table('jobs'));
  });

  afterEach(async () => {
    for (const q of open.splice(0)) await q.close();
    await db.close();
    await removeHome(home);
  });

  it('runs jobs in the order they were spooled, with ? and :name params', async () => {
    const q = qb();
    for (let i = 0; i < 25; i++) await q.spool('INSERT INTO jobs (v) VALUES (?)', [`job ${i}`]);
    await q.spool('INSERT INTO jobs (v) VALUES (:v)', { v: 'named' });
    expect(await q.run()).toMatchObject({ success: 26, sqlFailed: 0, connectionFailed: 0 });
    expect(await values()).toEqual([...Array.from({ length: 25 }, (_, i) => `job ${i}`), 'named']);
  });

  it('typed params come back exactly: bigint, unicode, bytes, a Date with ms, a decimal as a string, a double', async () => {
    await db.exec(dialect.typedTable('typed'));
    const q = qb();
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const when = new Date('2026-03-04T05:06:07.089Z');
    await q.spool('INSERT INTO typed (i, s, b, d, n, f) VALUES (?, ?, ?, ?, ?, ?)', [9007199254740993n, 'ünï 😀 \'"\\;', bytes, when, '12345678901234.123456', 0.1 + 0.2]);
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 0 });
    expect(await dialect.readTyped(db, 'typed')).toEqual({ i: '9007199254740993', s: 'ünï 😀 \'"\\;', b: bytes.toString('hex'), d: when.toISOString(), n: '12345678901234.123456', f: 0.1 + 0.2 });
  });

  it('a refused statement goes to failed/failed-<id> with the database\'s code; the jobs after it run', async () => {
    const q = qb();
    await q.spool('INSERT INTO jobs (v) VALUES (?)', ['before']);
    const bad = await q.spool('INSERT INTO no_such_table (v) VALUES (?)', ['x']);
    await q.spool('INSERT INTO jobs (v) VALUES (?)', ['after']);
    expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 1, connectionFailed: 0 });
    expect(await values()).toEqual(['before', 'after']);
    expect(await failedNames(home)).toEqual([`failed-${bad}.batchsql`]);
    const status = await q.status(bad);
    expect(status).toMatchObject({ state: 'failed', class: 'sql' });
    expect((status as { code: string }).code).not.toBe('');
  });

  it('exactly once: a job whose id the ledger holds (it committed, then the runner died before removing its file) is settled, not run again', async () => {
    const q = qb();
    await q.spool('INSERT INTO jobs (v) VALUES (?)', ['first']);
    expect(await q.run()).toMatchObject({ success: 1 }); // the ledger table exists now
    const committed = await q.spool('INSERT INTO jobs (v) VALUES (?)', ['committed before the crash']);
    await q.spool('INSERT INTO jobs (v) VALUES (?)', ['next']);
    const spool = (await readFile(join(home, 'spool', '.id'), 'utf8')).trim();
    await db.query('INSERT INTO querybatch_ledger (id, spool) VALUES (?, ?)', [committed, spool]);
    expect(await q.run()).toMatchObject({ success: 1, settled: 1, sqlFailed: 0 });
    expect(await values()).toEqual(['first', 'next']);
    // Once settled and pruned, nothing of it is left to settle again.
    expect(await db.query('SELECT id FROM querybatch_ledger')).toEqual([]);
  });

  it('group commit: many jobs commit together, in order', async () => {
    const q = qb();
    for (let i = 0; i < 300; i++) await q.spool('INSERT INTO jobs (v) VALUES (?)', [String(i)]);
    expect(await q.run()).toMatchObject({ success: 300, sqlFailed: 0 });
    expect(await values()).toEqual(Array.from({ length: 300 }, (_, i) => String(i)));
  });

  it('one drainer per datasource: a runner in another process finds it busy', async () => {
    const first = qb();
    const sleeping = await first.spool(dialect.sleep(4));
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: db.url } }));
    const running = first.run();
    await waitFor(async () => ((await first.status(sleeping)).state === 'running' ? true : undefined), 10_000, 'the first runner to claim the slow job');
    // Spooled while the first runner holds the datasource: the second runner sees it, and the lock taken.
    await first.spool('INSERT INTO jobs (v) VALUES (?)', ['spooled during the sleep']);
    const other = await runCli(['--home', home, 'run', '--json']);
    expect(other.code, other.stderr).toBe(0);
    expect((JSON.parse(other.stdout) as RunSummary).datasources.main).toMatchObject({ busy: true, success: 0 });
    await running;
    await first.run();
    expect(await values()).toEqual(['spooled during the sleep']);
  });

  it('a job past its time limit is stopped on the server and fails as timeout; the next job runs', async () => {
    const q = qb();
    const slow = await q.spool(dialect.sleep(5), [], { timeoutMs: 300 });
    await q.spool('INSERT INTO jobs (v) VALUES (?)', ['next']);
    const t = Date.now();
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 1 });
    expect(Date.now() - t).toBeLessThan(4000);
    expect(await q.status(slow)).toMatchObject({ state: 'failed', class: 'timeout' });
    expect(await values()).toEqual(['next']);
  });

  it('each job starts from a clean session: a temporary table a job made does not shadow the table for the next', async () => {
    const q = qb();
    await q.spool(dialect.tempTable('jobs'));
    await q.spool('INSERT INTO jobs (v) VALUES (?)', ['in the real table']);
    expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 0 });
    expect(await values()).toEqual(['in the real table']);
  });

  it('a script runs its statements in order; a refused one stops it and a respool resumes at it', async () => {
    const q = qb();
    const script = "INSERT INTO jobs (v) VALUES ('s1');\nINSERT INTO jobs (v) VALUES ('s2; with a semicolon');\nINSERT INTO later (v) VALUES ('s3');\nINSERT INTO jobs (v) VALUES ('s4');\n";
    const id = await q.spoolScript(script);
    expect(await q.run()).toMatchObject({ sqlFailed: 1 });
    expect(await values()).toEqual(['s1', 's2; with a semicolon']);
    const [name] = await failedNames(home);
    expect((await q.failedFile(name!)).lastError).toMatchObject({ statement: { index: 3, line: 3 } });
    await db.exec(dialect.table('later'));
    await q.respool({ names: [name!] });
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 0 });
    expect(await values()).toEqual(['s1', 's2; with a semicolon', 's4']);
    expect(await values('later')).toEqual(['s3']);
    expect(await q.status(id)).toMatchObject({ state: 'succeeded' });
  });

  it('a captured SELECT keeps its rows as pages', async () => {
    const q = qb();
    for (let i = 0; i < 50; i++) await q.spool('INSERT INTO jobs (v) VALUES (?)', [`r${i}`]);
    const id = await q.spool('SELECT k, v FROM jobs ORDER BY k', [], { captureResult: true });
    expect(await q.run()).toMatchObject({ success: 51 });
    const manifest = await q.result(id);
    expect(manifest).toMatchObject({ totalRows: 50 });
    expect(manifest.columns.map((c) => c.toLowerCase())).toEqual(['k', 'v']);
    const page = await q.resultPage(id, 1);
    expect(page.rows[0]![1]).toBe('r0');
  });

  it('a webhook is told each outcome, succeeded and failed', async () => {
    const posts: Array<{ id: string; status: string }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        posts.push(JSON.parse(body) as { id: string; status: string });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const q = qb({ datasources: { main: { url: db.url, webhook: url } } });
      const ok = await q.spool('INSERT INTO jobs (v) VALUES (?)', ['told']);
      const bad = await q.spool('INSERT INTO no_such_table (v) VALUES (?)', ['x']);
      expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 1 });
      await q.webhooksIdle();
      expect(posts.map((p) => [p.id, p.status]).sort()).toEqual([[ok, 'succeeded'], [bad, 'failed']].sort());
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('an immediate job runs before the normal jobs of its datasource', async () => {
    const q = qb();
    await q.spool('INSERT INTO jobs (v) VALUES (?)', ['normal 1']);
    await q.spool('INSERT INTO jobs (v) VALUES (?)', ['normal 2']);
    await q.spool('INSERT INTO jobs (v) VALUES (?)', ['immediate'], { priority: 'immediate' });
    expect(await q.run()).toMatchObject({ success: 3 });
    expect(await values()).toEqual(['immediate', 'normal 1', 'normal 2']);
  });

  it('plain .sql drop-ins of one modification time run in the order of their names', async () => {
    const q = qb();
    await mkdir(join(home, 'spool', 'in'), { recursive: true });
    // Written in one clock tick (the same modification time): their names give the order.
    const tick = new Date('2026-01-01T00:00:00Z');
    for (const n of ['03', '01', '02']) {
      await writeFile(join(home, 'spool', 'in', `${n}.sql`), `INSERT INTO jobs (v) VALUES ('${n}')`);
      await utimes(join(home, 'spool', 'in', `${n}.sql`), tick, tick);
    }
    expect(await q.run()).toMatchObject({ success: 3, invalid: 0 });
    expect(await values()).toEqual(['01', '02', '03']);
    expect(await readdir(join(home, 'spool', 'in'))).toEqual([]);
  });
});
