import { afterEach, describe, expect, it } from 'vitest';
import { copyFile, mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { decodeRecord } from '../src/spool/record.js';
import { filesBelow, removeHome, tempHome, useTestDatabase } from './helpers.js';
import { sleep, startDaemon, waitFor, type Daemon } from './daemon-helpers.js';

const t = useTestDatabase('start');
let home: string;
let q: QueryBatch | undefined;
let daemon: Daemon | undefined;

/** A cron expression that does not fire during a test (1 January, midnight). */
const NEVER = '0 0 1 1 *';

async function writeConfig(extra: Record<string, unknown> = {}): Promise<void> {
  await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url }, ...extra }));
}

async function count(table: string): Promise<number> {
  const [rows] = await t.db.query(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number((rows as Array<{ n: number }>)[0]!.n);
}

/** A failed file made for real: a statement on a table that does not exist yet. */
async function makeFailedFile(table: string, value: string): Promise<string> {
  const lib = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
  const id = await lib.spool(`INSERT INTO ${table} (v) VALUES (?)`, [value]);
  expect(await lib.run()).toMatchObject({ sqlFailed: 1 });
  await lib.close();
  const name = `failed-${id}.batchsql`;
  expect(await readdir(join(home, 'failed'))).toEqual([name]);
  await t.db.query(`CREATE TABLE ${table} (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))`);
  return join(home, 'failed', name);
}

afterEach(async () => {
  if (daemon) expect(await daemon.stop()).toBe(0);
  daemon = undefined;
  await q?.close();
  q = undefined;
  await removeHome(home);
});

describe('querybatch start', () => {
  it("with --cron '*/1 * * * * *' (a seconds field) drains files spooled while it runs", async () => {
    home = await tempHome();
    await writeConfig();
    await t.db.query('CREATE TABLE drained (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    daemon = await startDaemon(home, ['--cron', '*/1 * * * * *', '--start-delay', '600000', '--no-watch']);
    expect(daemon.events[0]).toMatchObject({ event: 'started', cron: '*/1 * * * * *', watch: false, runOnDrop: false });
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    for (let i = 1; i <= 5; i++) await q.spool('INSERT INTO drained (v) VALUES (?)', [i]);
    await waitFor(async () => ((await count('drained')) === 5 ? true : undefined), 5_000, 'the first 5 rows');
    for (let i = 6; i <= 8; i++) await q.spool('INSERT INTO drained (v) VALUES (?)', [i]);
    await waitFor(async () => ((await count('drained')) === 8 ? true : undefined), 5_000, 'all 8 rows');
    const [rows] = await t.db.query('SELECT v FROM drained ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // The rows commit before the run reports: wait for its event.
    const executed = () => daemon!.events.filter((e) => e.event === 'run').reduce((n, e) => n + (e.success as number), 0);
    await waitFor(() => (executed() === 8 ? true : undefined), 3_000, 'the run events');
    expect(daemon.events.filter((e) => e.event === 'run').every((e) => e.reason === 'schedule')).toBe(true);
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('SIGTERM during a 2,000-statement batch exits 0 within 5 s; every job ran once or is still in spool', async () => {
    home = await tempHome();
    await writeConfig();
    await t.db.query('CREATE TABLE big (n INT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL)');
    const lib = new QueryBatch({ home, configFile: false, datasources: { main: t.url }, durability: 'none' });
    // A couple of milliseconds each, so the batch is surely still going when the signal comes.
    for (let k = 0; k < 2000; k++) await lib.spool('INSERT INTO big (k) SELECT ? FROM DUAL WHERE SLEEP(0.002) = 0', [k]);
    await lib.close();

    daemon = await startDaemon(home, ['--cron', '*/1 * * * * *', '--start-delay', '0']);
    await waitFor(async () => ((await count('big')) >= 100 ? true : undefined), 20_000, '100 rows');
    const t0 = Date.now();
    daemon.child.kill('SIGTERM');
    const code = await daemon.exited;
    const elapsed = Date.now() - t0;
    const d = daemon;
    daemon = undefined;
    expect(code, d.stderr()).toBe(0);
    expect(elapsed).toBeLessThan(5_000);
    expect(d.events.at(-1)).toEqual({ event: 'stopped' });

    const [rows] = await t.db.query('SELECT k FROM big');
    const executed = (rows as Array<{ k: number }>).map((r) => r.k);
    const left = await filesBelow(join(home, 'spool'));
    const pending: number[] = [];
    for (const file of left) pending.push((decodeRecord(await readFile(file, 'utf8')).params as number[])[0]!);
    expect(left.every((f) => !f.includes('/.active/'))).toBe(true); // nothing left claimed
    expect(executed.length).toBeGreaterThan(0);
    expect(pending.length).toBeGreaterThan(0); // it really stopped mid-batch
    expect(executed.length + pending.length).toBe(2000);
    expect(new Set([...executed, ...pending]).size).toBe(2000); // no duplicates, nothing lost
    expect(await readdir(join(home, 'failed'))).toEqual([]);
  });

  it('with --run-on-drop, a failed file copied into spool/a/b/c/ runs within 2 s', async () => {
    home = await tempHome();
    const failed = await makeFailedFile('dropped', 'again');
    await writeConfig({ dropInSettleMs: 500 });
    daemon = await startDaemon(home, ['--cron', NEVER, '--start-delay', '600000', '--run-on-drop']);
    await mkdir(join(home, 'spool', 'a', 'b', 'c'), { recursive: true });
    const t0 = Date.now();
    await copyFile(failed, join(home, 'spool', 'a', 'b', 'c', 'again.batchsql'));
    await waitFor(async () => ((await count('dropped')) === 1 ? true : undefined), 5_000, 'the dropped job to run');
    expect(Date.now() - t0).toBeLessThan(2_000);
    const run = await daemon.waitForEvent((e) => e.event === 'run' && e.success === 1, 2_000);
    expect(run).toMatchObject({ reason: 'drop', adopted: 1 });
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('without --run-on-drop, the watcher queues the drop-in and the next scheduled run executes it', async () => {
    home = await tempHome();
    const failed = await makeFailedFile('scheduled', 'later');
    await writeConfig({ dropInSettleMs: 300 });
    // Every 4 seconds: long enough to see the drop-in queued before it runs (most of the time;
    // the run is checked by its reason, not by timing).
    daemon = await startDaemon(home, ['--cron', '*/4 * * * * *', '--start-delay', '600000']);
    await mkdir(join(home, 'spool', 'a', 'b', 'c'), { recursive: true });
    await copyFile(failed, join(home, 'spool', 'a', 'b', 'c', 'later.batchsql'));
    await waitFor(async () => ((await count('scheduled')) === 1 ? true : undefined), 8_000, 'the scheduled run');
    await daemon.waitForEvent((e) => e.event === 'run' && e.success === 1, 2_000, 'its run event');
    const runs = daemon.events.filter((e) => e.event === 'run');
    expect(runs.filter((e) => e.reason === 'drop')).toEqual([]);
    expect(runs.filter((e) => e.reason === 'schedule' && e.success === 1)).toHaveLength(1);
    expect(runs.filter((e) => e.adopted === 1)).toHaveLength(1);
    expect(await filesBelow(join(home, 'spool', 'a'))).toEqual([]);
  });

  it('a file written slowly in several chunks is not read half-written', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE slow (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))');
    await writeConfig({ dropInSettleMs: 500 });
    daemon = await startDaemon(home, ['--cron', NEVER, '--start-delay', '600000', '--run-on-drop']);
    await mkdir(join(home, 'spool', 'incoming'));
    const path = join(home, 'spool', 'incoming', 'slow.sql');
    const chunks = ['INSERT INTO sl', 'ow (v) VA', "LUES ('comp", "lete')"];
    const handle = await open(path, 'w');
    for (const chunk of chunks) {
      await handle.write(chunk);
      await handle.sync();
      await sleep(350); // each pause shorter than dropInSettleMs, together much longer
    }
    await handle.close();
    await waitFor(async () => ((await count('slow')) === 1 ? true : undefined), 5_000, 'the slow file to run');
    const [rows] = await t.db.query('SELECT v FROM slow');
    expect(rows).toEqual([{ v: 'complete' }]);
    expect(await readdir(join(home, 'failed'))).toEqual([]);
    expect(daemon.events.filter((e) => e.event === 'run' && (e.sqlFailed as number) > 0)).toEqual([]);
  });

  it('library: qb.start() returns a handle whose stop() is idempotent and shares its promise; no two runs overlap', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE lib (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    for (let i = 0; i < 30; i++) await q.spool('INSERT INTO lib (v) SELECT ? FROM DUAL WHERE SLEEP(0.01) = 0', [i]);
    let active = 0;
    let maxActive = 0;
    const reasons: string[] = [];
    const handle = await q.start({
      cron: '* * * * * *',
      startDelayMs: 0,
      watch: false,
      onRun: (_summary, reason) => reasons.push(reason),
    });
    expect(await q.start()).toBe(handle);
    // Ask for runs while one is going: they queue behind it, never beside it.
    const original = q.run.bind(q);
    q.run = async (options) => {
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        return await original(options);
      } finally {
        active--;
      }
    };
    await Promise.all([handle.runNow(), handle.runNow(), sleep(1_500)]);
    await waitFor(async () => ((await count('lib')) === 30 ? true : undefined), 10_000, 'all rows');
    const first = handle.stop();
    const second = handle.stop();
    expect(second).toBe(first);
    await first;
    expect(handle.nextRun()).toBeNull();
    expect(maxActive).toBe(1);
    expect(reasons.length).toBeGreaterThanOrEqual(2);
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('a second signal forces the exit while a statement is still in flight; the job is given back by the next run', async () => {
    home = await tempHome();
    await writeConfig();
    const lib = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const id = await lib.spool('SELECT SLEEP(3)');
    daemon = await startDaemon(home, ['--cron', NEVER, '--start-delay', '0']);
    await waitFor(async () => {
      const [rows] = await t.db.query("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(3)%'");
      return (rows as unknown[]).length > 0 ? true : undefined;
    }, 10_000, 'the statement to start');
    daemon.child.kill('SIGTERM');
    await waitFor(() => (daemon!.stderr().includes('stopping after the statement in flight') ? true : undefined), 5_000, 'the first signal');
    const t0 = Date.now();
    daemon.child.kill('SIGINT');
    const code = await daemon.exited;
    const d = daemon;
    daemon = undefined;
    expect(code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(d.stderr()).toContain('SIGINT again: exiting now');
    // Claimed, not lost: the next run gives it back, and once the dead process's session,
    // still sleeping on the server, lets go of the datasource's lock, it is either run or
    // (when that session went on to commit it: the ledger has its id) settled: once either way.
    expect(await lib.run()).toMatchObject({ recovered: 1 });
    await waitFor(async () => {
      const s = await lib.run();
      return s.success + s.settled === 1 ? true : undefined;
    }, 15_000, 'the job to run or be settled');
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
    await lib.close();
    expect(id).toMatch(/^[0-9A-Z]{26}$/);
  });

  it('refuses a bad cron expression or time zone with exit 2, naming what was expected', async () => {
    home = await tempHome();
    await writeConfig();
    const { runCli } = await import('./helpers.js');
    const bad = await runCli(['--home', home, 'start', '--cron', '*/5 * * *x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Expected `cron` to be a cron expression like "\*\/5 \* \* \* \*".*got "\*\/5 \* \* \*x" \[CONFIG_INVALID\]/);
    const tz = await runCli(['--home', home, 'start', '--timezone', 'Mars/Olympus']);
    expect(tz.code).toBe(2);
    expect(tz.stderr).toMatch(/Expected `schedule.timezone` to be an IANA time zone.*got "Mars\/Olympus"/);
  });
});
