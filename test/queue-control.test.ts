import { afterEach, describe, expect, it } from 'vitest';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { parseJobFileName } from '../src/spool/shards.js';
import { decodeSegment } from '../src/spool/record.js';
import { CLOSED_PORT_URL, filesBelow, jobIdsBelow, removeHome, runCli, sessionRunning, startRunner, tempHome, useTestDatabase } from './helpers.js';

const t = useTestDatabase('queuectl');
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
});

async function writeConfig(config: unknown): Promise<void> {
  await writeFile(join(home, 'querybatch.config.json'), JSON.stringify(config));
}

async function jobsOf(table: string): Promise<number[]> {
  const [rows] = await t.db.query(`SELECT job FROM ${table} ORDER BY n`);
  return (rows as Array<{ job: number }>).map((r) => r.job);
}

describe('pause and resume', () => {
  it('a paused datasource is skipped (never connected to), keeps accepting jobs, stays paused for a new instance, and runs them in order once resumed', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE paused_jobs (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    // `down` points at a closed port: were it drained, the run would count a connection failure.
    const datasources = { main: t.url, down: CLOSED_PORT_URL };
    await writeConfig({ datasources });
    q = new QueryBatch({ home, configFile: false, datasources });
    await q.pause('main');
    await q.pause('main'); // idempotent
    await q.pause('down');
    for (let k = 0; k < 3; k++) await q.spool('INSERT INTO paused_jobs (job) VALUES (?)', [k]);
    await q.spool('SELECT 1', [], { datasource: 'down' });

    const skipped = await q.run();
    expect(skipped).toMatchObject({ success: 0, connectionFailed: 0, datasources: { main: { paused: true, success: 0 }, down: { paused: true, connectionFailed: 0 } } });
    expect(await jobsOf('paused_jobs')).toEqual([]);
    expect(await q.status()).toMatchObject({ pending: { main: { count: 3 }, down: { count: 1 } }, paused: ['down', 'main'] });
    await q.close();

    // Durable: another instance (and the CLI) sees the pause.
    q = new QueryBatch({ home, configFile: false, datasources });
    expect((await q.run()).datasources.main).toMatchObject({ paused: true, success: 0 });
    const run = await runCli(['--home', home, 'run']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('main: paused, skipped');
    const status = await runCli(['--home', home, 'status']);
    expect(status.stdout).toMatch(/main: 3 \(oldest .*\), paused/);
    expect(JSON.parse((await runCli(['--home', home, 'status', '--json'])).stdout)).toMatchObject({ paused: ['down', 'main'] });
    expect(await jobsOf('paused_jobs')).toEqual([]);

    const resumed = await runCli(['--home', home, 'resume', 'main']);
    expect(resumed.code).toBe(0);
    expect(await q.run()).toMatchObject({ success: 3, datasources: { main: { success: 3 }, down: { paused: true } } });
    expect(await jobsOf('paused_jobs')).toEqual([0, 1, 2]);
    expect((await q.status()).paused).toEqual(['down']);
  });

  it('an unknown datasource is refused: UNKNOWN_DATASOURCE in the library, exit 2 in the CLI', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await expect(q.pause('nope')).rejects.toMatchObject({ code: 'UNKNOWN_DATASOURCE' });
    await expect(q.resume('../main')).rejects.toMatchObject({ code: 'UNKNOWN_DATASOURCE' });
    for (const command of ['pause', 'resume']) {
      const r = await runCli(['--home', home, command, 'nope']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('Expected a configured datasource (main); got "nope"');
    }
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('SQLite: the CLI pauses, the daemon\'s run path skips it, resume lets it run', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: 'sqlite:q.db' } });
    expect((await runCli(['--home', home, 'pause', 'main'])).code).toBe(0);
    const create = (await runCli(['--home', home, 'spool', 'CREATE TABLE t (a INT)'])).stdout.trim();
    const insert = (await runCli(['--home', home, 'spool', 'INSERT INTO t VALUES (1)'])).stdout.trim();
    const run = await runCli(['--home', home, 'run', '--json']);
    expect(JSON.parse(run.stdout)).toMatchObject({ success: 0, datasources: { main: { paused: true } } });
    expect(JSON.parse((await runCli(['--home', home, 'status', create, '--json'])).stdout)).toMatchObject({ state: 'queued', position: 1 });
    // The daemon runs through the same path: started, it drains nothing while paused.
    q = new QueryBatch({ home });
    const ran: unknown[] = [];
    const handle = await q.start({ startDelayMs: 0, onRun: (s) => ran.push(s) });
    await waitUntil(() => ran.length > 0);
    expect(ran[0]).toMatchObject({ success: 0, datasources: { main: { paused: true } } });
    await handle.stop();
    await q.close();
    q = undefined;

    expect((await runCli(['--home', home, 'resume', 'main'])).code).toBe(0);
    const after = await runCli(['--home', home, 'run']);
    expect(after.stdout).toContain('success=2');
    for (const id of [create, insert]) expect(JSON.parse((await runCli(['--home', home, 'status', id, '--json'])).stdout)).toMatchObject({ state: 'succeeded' });
  });
});

async function waitUntil(probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('cancel', () => {
  it('removes a queued job: status says cancelled, the error log records it, the others run in order; a second cancel, or one of a finished job, exits 1', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE cancel_one (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    await writeConfig({ datasources: { main: t.url } });
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const ids: string[] = [];
    for (let k = 0; k < 3; k++) ids.push(await q.spool('INSERT INTO cancel_one (job) VALUES (?)', [k]));
    expect(await q.cancel(ids[1]!)).toEqual({ id: ids[1], datasource: 'main', file: expect.stringMatching(new RegExp(`^spool/main/.*/${ids[1]}\\.batchsql$`)) });
    expect(await q.status(ids[1]!)).toEqual({ id: ids[1], state: 'cancelled', datasource: 'main', cancelledAt: expect.any(String) });
    expect(await q.status(ids[2]!)).toMatchObject({ state: 'queued', position: 2 });
    const again = await runCli(['--home', home, 'cancel', ids[1]!]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('was cancelled already');
    expect(await q.run()).toMatchObject({ success: 2 });
    expect(await jobsOf('cancel_one')).toEqual([0, 2]);
    const done = await runCli(['--home', home, 'cancel', ids[0]!]);
    expect(done.code).toBe(1);
    expect(done.stderr).toContain('has run already');
    const unknown = await runCli(['--home', home, 'cancel', '01M8KWXRSMQT3P4H82ZBNG11X1']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('[JOB_NOT_CANCELLABLE]');
    expect((await runCli(['--home', home, 'cancel', 'not-an-id'])).code).toBe(2);
    const text = await runCli(['--home', home, 'status', ids[1]!]);
    expect(text.stdout).toContain(`${ids[1]}: cancelled on main`);
    const errors = (await q.logs({ errors: true })).map((e) => e.record);
    expect(errors).toEqual([expect.objectContaining({ class: 'cancelled', id: ids[1], datasource: 'main', code: 'CANCELLED', moved: '-', sql: 'INSERT INTO cancel_one (job) VALUES (?)' })]);
  });

  it('a job inside a segment: the segment is rewritten without it, atomically; the others still run once each, in order', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE cancel_seg (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    await writeConfig({ datasources: { main: t.url } });
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const ids = await Promise.all(Array.from({ length: 40 }, (_, k) => q!.spool('INSERT INTO cancel_seg (job) VALUES (?)', [k])));
    const segments = (await filesBelow(join(home, 'spool'))).filter((f) => (parseJobFileName(basename(f))?.count ?? 1) > 1).sort();
    expect(segments.length).toBeGreaterThan(0);
    const segment = segments[0]!;
    const { count } = parseJobFileName(basename(segment))!;
    const records = decodeSegment(await readFile(segment, 'utf8'), count);
    const victim = records[Math.floor(count / 2)]!.id;
    const k = ids.indexOf(victim);

    const cancelled = await runCli(['--home', home, 'cancel', victim]);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`cancelled ${victim} on main`);
    expect(await jobIdsBelow(join(home, 'spool'))).toEqual(ids.filter((id) => id !== victim).sort());
    await expect(access(segment)).rejects.toThrow(); // rewritten under its new count
    expect(await readdir(join(home, 'spool', '.tmp'))).toEqual([]);
    expect(await q.status(victim)).toMatchObject({ state: 'cancelled' });
    expect(await q.status(ids[k + 1]!)).toMatchObject({ state: 'queued', position: k + 1 });

    expect(await q.run()).toMatchObject({ success: 39, sqlFailed: 0 });
    expect(await jobsOf('cancel_seg')).toEqual(Array.from({ length: 40 }, (_, j) => j).filter((j) => j !== k));
  });

  it('a running job can\'t be cancelled: exit 1, and it runs to the end', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE cancel_running (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    await writeConfig({ datasources: { main: t.url } });
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    // The job waits for a lock this test holds, so it is still running however slow the
    // cancel's process is to start (a SLEEP of a fixed length could end first on a loaded machine).
    const lock = `${t.name}_cancel_running`;
    await t.db.query('SELECT GET_LOCK(?, 0)', [lock]);
    const sleeper = await q.spool(`INSERT INTO cancel_running (job) SELECT 1 FROM (SELECT GET_LOCK('${lock}', 120)) AS s`);
    const next = await q.spool('INSERT INTO cancel_running (job) VALUES (2)');
    const runner = startRunner(home);
    await sessionRunning(t, '%GET_LOCK%');
    expect(await q.status(sleeper)).toMatchObject({ state: 'running' });
    const r = await runCli(['--home', home, 'cancel', sleeper]);
    await t.db.query('SELECT RELEASE_LOCK(?)', [lock]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not queued: it is running on main \(runner .*\) \[JOB_NOT_CANCELLABLE\]/);
    expect((await runner.exit).code).toBe(0);
    expect(await jobsOf('cancel_running')).toEqual([1, 2]);
    for (const id of [sleeper, next]) expect(await q.status(id)).toMatchObject({ state: 'succeeded' });
    expect(await q.logs({ errors: true })).toEqual([]);
  });

  it('cancels racing a run: each job either is cancelled and never runs, or is refused and runs once', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE cancel_race (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const ids = await Promise.all(Array.from({ length: 300 }, (_, k) => q!.spool('INSERT INTO cancel_race (job) VALUES (?)', [k])));
    const canceller = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const targets = ids.filter((_, k) => k % 7 === 3);
    const run = q.run();
    const outcomes = await Promise.allSettled(targets.map((id) => canceller.cancel(id)));
    await run;
    await canceller.close();
    const cancelled = new Set(targets.filter((_, i) => outcomes[i]!.status === 'fulfilled'));
    for (const [i, o] of outcomes.entries()) if (o.status === 'rejected') expect(o.reason, targets[i]).toMatchObject({ code: 'JOB_NOT_CANCELLABLE' });
    await q.run(); // whatever a cancel's rewrite left for the next run
    const expected = ids.map((_, k) => k).filter((k) => !cancelled.has(ids[k]!));
    expect(await jobsOf('cancel_race')).toEqual(expected);
    for (const id of cancelled) expect((await q.status(id)).state).toBe('cancelled');
  });
});

describe('failed delete', () => {
  it('deletes files in failed/ with their reason sidecars, reports what it skipped, and refuses names outside failed/', async () => {
    home = await tempHome();
    await writeConfig({ datasources: { main: t.url } });
    q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: t.url } });
    const bad = await q.spool('INSERT INTO no_such_table_qc VALUES (1)');
    await writeFile(join(home, 'spool', 'garbage.batchsql'), '{not json');
    expect(await q.run()).toMatchObject({ sqlFailed: 2, invalid: 1 });
    const failed = (await readdir(join(home, 'failed'), { withFileTypes: true })).map((e) => e.name).sort();
    expect(failed).toEqual(['.failed-garbage.batchsql.reason', `failed-${bad}.batchsql`, 'failed-garbage.batchsql']);

    const refused = await runCli(['--home', home, 'failed', 'delete', `failed-${bad}.batchsql`, '../spool/.id']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('refused "../spool/.id": outside failed/. Nothing was deleted');
    await expect(q.deleteFailed(['/etc/passwd'])).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(q.deleteFailed(['.failed-garbage.batchsql.reason'])).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect((await readdir(join(home, 'failed'))).sort()).toEqual(failed);
    await access(join(home, 'spool', '.id'));

    const r = await runCli(['--home', home, 'failed', 'delete', `failed/failed-${bad}.batchsql`, 'failed-garbage.batchsql', 'failed-nothere.batchsql', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      deleted: [`failed-${bad}.batchsql`, 'failed-garbage.batchsql'],
      skipped: [{ name: 'failed-nothere.batchsql', reason: 'no such file in failed/' }],
    });
    expect(await readdir(join(home, 'failed'))).toEqual([]);
    expect(await q.status(bad)).toMatchObject({ state: 'failed', file: null });
    const text = await runCli(['--home', home, 'failed', 'delete', 'failed-nothere.batchsql']);
    expect(text.stdout).toBe('deleted: 0\nskipped: 1\n  failed-nothere.batchsql: no such file in failed/\n');
  });
});
