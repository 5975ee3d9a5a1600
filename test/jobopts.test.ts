import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { CLI, filesBelow, jobIdsBelow, removeHome, runCli, tempHome, useTestDatabase } from './helpers.js';
import { sleep, startDaemon, waitFor, type Daemon } from './daemon-helpers.js';

const t = useTestDatabase('jobopts', 'CREATE TABLE jobopts_ran (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40), at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))');
let home: string;
let q: QueryBatch | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  if (daemon) expect(await daemon.stop()).toBe(0);
  daemon = undefined;
  await q?.close();
  q = undefined;
  await removeHome(home);
  await t.db.query('TRUNCATE jobopts_ran');
});

/** The job files under a directory, the daemon's wake file (spool/.delayed/.wake) aside. */
async function jobFilesBelow(dir: string): Promise<string[]> {
  return (await filesBelow(dir)).filter((f) => !f.endsWith('.wake'));
}

async function ran(): Promise<string[]> {
  const [rows] = await t.db.query('SELECT v FROM jobopts_ran ORDER BY n');
  return (rows as Array<{ v: string }>).map((r) => r.v);
}

const INSERT = 'INSERT INTO jobopts_ran (v) VALUES (?)';

function open(extra: Record<string, unknown> = {}): QueryBatch {
  q = new QueryBatch({ home, configFile: false, datasources: { main: t.url }, ...extra });
  return q;
}

describe('idempotency keys', () => {
  it('a key pending: the second spool returns the first id and writes nothing', async () => {
    home = await tempHome();
    const qb = open();
    const first = await qb.spool(INSERT, ['a'], { key: 'order-1' });
    const again = await qb.spool(INSERT, ['b'], { key: 'order-1' });
    expect(again).toBe(first);
    // Another key, or the same key on another datasource's marker directory, is its own.
    const other = await qb.spool(INSERT, ['c'], { key: 'order-2' });
    expect(other).not.toBe(first);
    expect(await jobIdsBelow(join(home, 'spool'))).toEqual([first, other].sort());
    expect(await qb.run()).toMatchObject({ success: 2, sqlFailed: 0 });
    expect(await ran()).toEqual(['a', 'c']);
  });

  it('a key whose job ran within keyRetentionMs still returns the first id; after it, a new job is spooled', async () => {
    home = await tempHome();
    const qb = open({ keyRetentionMs: 1500 });
    const first = await qb.spool(INSERT, ['a'], { key: 'k' });
    expect(await qb.run()).toMatchObject({ success: 1 });
    expect(await qb.status(first)).toMatchObject({ state: 'succeeded' });
    expect(await qb.spool(INSERT, ['b'], { key: 'k' })).toBe(first);
    expect(await filesBelow(join(home, 'spool', 'main'))).toEqual([]);
    await sleep(1600);
    const second = await qb.spool(INSERT, ['c'], { key: 'k' });
    expect(second).not.toBe(first);
    expect(await qb.run()).toMatchObject({ success: 1 });
    expect(await ran()).toEqual(['a', 'c']);
  });

  it('a run removes the markers of keys that are free again (succeeded past keyRetentionMs), not of keys still held (a job in failed/)', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE IF NOT EXISTS jobopts_unique (v VARCHAR(40) PRIMARY KEY)');
    await t.db.query("INSERT IGNORE INTO jobopts_unique VALUES ('taken')");
    const qb = open({ keyRetentionMs: 300 });
    await qb.spool(INSERT, ['a'], { key: 'done' });
    await qb.spool('INSERT INTO jobopts_unique VALUES (?)', ['taken'], { key: 'refused' });
    expect(await qb.run()).toMatchObject({ success: 1, sqlFailed: 1 });
    const markers = () => readdir(join(home, 'spool', '.keys', 'main')).then((names) => names.filter((n) => /^[0-9a-f]{64}$/.test(n)));
    expect(await markers()).toHaveLength(2);
    await sleep(400);
    await qb.run();
    // The succeeded job's key is free and its marker gone; the failed job's key still holds.
    expect(await markers()).toHaveLength(1);
    const refusedAgain = await qb.spool('INSERT INTO jobopts_unique VALUES (?)', ['taken'], { key: 'refused' });
    expect(await filesBelow(join(home, 'spool', 'main'))).toEqual([]);
    expect((await qb.failed()).map((f) => f.id)).toContain(refusedAgain);
  });

  it('a failed job keeps its key while its file is in failed/; deleting it, or cancelling a job, gives the key back', async () => {
    home = await tempHome();
    const qb = open();
    const bad = await qb.spool('INSERT INTO jobopts_missing (v) VALUES (?)', ['x'], { key: 'f' });
    expect(await qb.run()).toMatchObject({ sqlFailed: 1 });
    expect(await qb.spool(INSERT, ['y'], { key: 'f' })).toBe(bad);
    await qb.deleteFailed([`failed-${bad}.batchsql`]);
    const fresh = await qb.spool(INSERT, ['z'], { key: 'f' });
    expect(fresh).not.toBe(bad);
    await qb.cancel(fresh);
    const third = await qb.spool(INSERT, ['w'], { key: 'f' });
    expect(third).not.toBe(fresh);
    expect(await qb.run()).toMatchObject({ success: 1 });
    expect(await ran()).toEqual(['w']);
  });

  it('a marker whose job never came (a producer killed between the two) holds the key for a grace period, then not', async () => {
    home = await tempHome();
    const qb = open();
    const first = await qb.spool(INSERT, ['a'], { key: 'lost' });
    await qb.cancel(first); // the marker stays, naming a job that no longer holds it
    const { keyPathFor } = await import('../src/spool/keys.js');
    const marker = keyPathFor(qb.layout, 'main', 'lost');
    await writeFile(marker, `${JSON.stringify({ id: '01ZZZZZZZZ0000000000000000', key: 'lost', at: new Date().toISOString() })}\n`);
    // Young: its job may be being written; kept.
    expect(await qb.spool(INSERT, ['b'], { key: 'lost' })).toBe('01ZZZZZZZZ0000000000000000');
    const { utimes } = await import('node:fs/promises');
    await utimes(marker, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    const id = await qb.spool(INSERT, ['c'], { key: 'lost' });
    expect(id).not.toBe('01ZZZZZZZZ0000000000000000');
    expect(await qb.run()).toMatchObject({ success: 1 });
    expect(await ran()).toEqual(['c']);
  });

  it('a script spooled with a key is deduplicated like a statement', async () => {
    home = await tempHome();
    const qb = open();
    const first = await qb.spoolScript(`${INSERT.replace('?', "'s1'")};\n${INSERT.replace('?', "'s2'")};\n`, { key: 'migration-7' });
    expect(await qb.spoolScript(`${INSERT.replace('?', "'other'")};\n`, { key: 'migration-7' })).toBe(first);
    expect(await qb.run()).toMatchObject({ success: 1 });
    expect(await ran()).toEqual(['s1', 's2']);
  });

  it('eight processes spooling one key at the same moment make one job, and all print its id', async () => {
    home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
    // Processes started together, each writing as soon as it is up.
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => runCli(['--home', home, 'spool', '--key', 'race', INSERT, '-p', `p${i}`])));
    for (const r of results) expect(r).toMatchObject({ code: 0, stderr: '' });
    const ids = new Set(results.map((r) => r.stdout.trim()));
    expect(ids.size).toBe(1);
    expect(await jobIdsBelow(join(home, 'spool'))).toEqual([...ids]);
    const qb = open();
    expect(await qb.run()).toMatchObject({ success: 1 });
    expect(await ran()).toHaveLength(1);
  });

  it('bad keys and a keyRetentionMs longer than retentionMs are refused, saying what was expected', async () => {
    home = await tempHome();
    const qb = open();
    await expect(qb.spool(INSERT, ['a'], { key: '' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('Expected key to be a string of 1 to 256') });
    await expect(qb.spool(INSERT, ['a'], { key: 'x'.repeat(257) })).rejects.toMatchObject({ message: expect.stringContaining('got a string of 257') });
    await expect(qb.spool(INSERT, ['a'], { key: 7 as unknown as string })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect(() => new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: false } }, retentionMs: 1000, keyRetentionMs: 2000 }))
      .toThrow(/Expected `keyRetentionMs` to be at most `retentionMs` \(1000.*while a datasource has no ledger \("main"\); got 2000/);
    expect(() => new QueryBatch({ home, configFile: false, datasources: { main: t.url }, keyRetentionMs: -1 })).toThrow(/`keyRetentionMs` to be a whole number >= 0; got -1/);
    expect(new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: false } }, retentionMs: 1000 }).config.keyRetentionMs).toBe(1000);
    // With the ledger on every datasource, it remembers keys: keyRetentionMs may outlive the outcome records.
    expect(new QueryBatch({ home, configFile: false, datasources: { main: t.url }, retentionMs: 1000, keyRetentionMs: 2000 }).config.keyRetentionMs).toBe(2000);
    expect(await filesBelow(join(home, 'spool', 'main'))).toEqual([]);
  });
});

describe('delayed jobs', () => {
  it('does not run before its runAt; run reports it waiting, status shows it delayed; it runs once due', async () => {
    home = await tempHome();
    const qb = open();
    const runAt = new Date(Date.now() + 1500);
    const id = await qb.spool(INSERT, ['later'], { runAt });
    const summary = await qb.run();
    expect(summary).toMatchObject({ success: 0, sqlFailed: 0, connectionFailed: 0, delayed: 1, nextDueAt: runAt.toISOString() });
    expect(await ran()).toEqual([]);
    expect(await qb.status(id)).toEqual({ id, state: 'delayed', datasource: 'main', runAt: runAt.toISOString(), attempts: 0 });
    expect((await qb.status()).delayed).toEqual({ main: { count: 1, nextRunAt: runAt.toISOString() } });
    await sleep(Math.max(0, runAt.getTime() - Date.now()) + 20);
    expect(await qb.run()).toMatchObject({ success: 1, delayed: 0, nextDueAt: null });
    expect(await ran()).toEqual(['later']);
    expect(await jobFilesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('FIFO by id once due: an older delayed job goes ahead of newer jobs still pending, after the ones that ran before it was due', async () => {
    home = await tempHome();
    const qb = open();
    await qb.spool(INSERT, ['A'], { delayMs: 1000 });
    await qb.spool(INSERT, ['B']);
    await qb.spool(INSERT, ['C']);
    expect(await qb.run()).toMatchObject({ success: 2, delayed: 1 });
    await qb.spool(INSERT, ['D']);
    await qb.spool(INSERT, ['E'], { delayMs: 200 });
    await sleep(1100);
    expect(await qb.run()).toMatchObject({ success: 3, delayed: 0 });
    expect(await ran()).toEqual(['B', 'C', 'A', 'D', 'E']);
  });

  it('a delayed job can be cancelled; status then says cancelled', async () => {
    home = await tempHome();
    const qb = open();
    const id = await qb.spool(INSERT, ['x'], { delayMs: 60_000 });
    expect(await qb.cancel(id)).toMatchObject({ id, datasource: 'main' });
    expect(await qb.status(id)).toMatchObject({ state: 'cancelled' });
    expect(await jobFilesBelow(join(home, 'spool', '.delayed'))).toEqual([]);
  });

  it('invalid runAt / delayMs are refused with what was expected, and nothing is spooled', async () => {
    home = await tempHome();
    const qb = open();
    await expect(qb.spool(INSERT, ['a'], { runAt: new Date('nope') })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: 'Expected runAt to be a valid Date; got an invalid Date' });
    await expect(qb.spool(INSERT, ['a'], { runAt: '2030-01-01' as unknown as Date })).rejects.toMatchObject({ message: expect.stringContaining('Expected runAt to be a valid Date') });
    await expect(qb.spool(INSERT, ['a'], { delayMs: -5 })).rejects.toMatchObject({ message: 'Expected delayMs to be a whole number of milliseconds >= 0; got -5' });
    await expect(qb.spool(INSERT, ['a'], { delayMs: 1.5 })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(qb.spool(INSERT, ['a'], { delayMs: 5, runAt: new Date() })).rejects.toMatchObject({ message: expect.stringContaining('Expected runAt or delayMs, not both') });
    await expect(qb.spool(INSERT, ['a'], { delayMs: 5, priority: 'immediate' })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const cli = await runCli(['--home', home, 'spool', '--run-at', 'tomorrow', INSERT]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('Expected --run-at to be an ISO 8601 time with a time zone');
    const cli2 = await runCli(['--home', home, 'spool', '--delay', '-3', INSERT]);
    expect(cli2.code).toBe(2);
    expect(cli2.stderr).toContain('Expected --delay to be a whole number of milliseconds >= 0');
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('the CLI: spool --delay and --run-at, status counts them, run reports them waiting', async () => {
    home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
    const a = await runCli(['--home', home, 'spool', '--delay', '60000', INSERT, '-p', 'a']);
    expect(a).toMatchObject({ code: 0, stderr: '' });
    const at = new Date(Date.now() + 120_000).toISOString();
    const b = await runCli(['--home', home, 'spool', '--run-at', at, INSERT, '-p', 'b']);
    expect(b).toMatchObject({ code: 0 });
    const status = await runCli(['--home', home, 'status']);
    expect(status.stdout).toContain('delayed (not due yet): 2');
    const one = await runCli(['--home', home, 'status', b.stdout.trim()]);
    expect(one.stdout).toContain(`delayed in main until ${at}`);
    const run = await runCli(['--home', home, 'run']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('2 delayed job(s) waiting, not due yet');
    expect(await ran()).toEqual([]);
  });
});

describe('delayed jobs under start', () => {
  it('start with a cron far in the future runs a job spooled (by another process) with --delay 1500 soon after it is due', async () => {
    home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
    daemon = await startDaemon(home, ['--cron', '0 0 1 1 *', '--start-delay', '3600000']);
    const r = await runCli(['--home', home, 'spool', '--delay', '1500', INSERT, '-p', 'woke']);
    expect(r).toMatchObject({ code: 0 });
    const id = r.stdout.trim();
    q = open();
    const status = await q.status(id);
    if (status.state !== 'delayed') throw new Error(`expected the job delayed; it is ${status.state} (the CLI took over 1.5 s?)`);
    const due = Date.parse(status.runAt);
    await waitFor(async () => ((await ran()).length === 1 ? true : undefined), Math.max(0, due - Date.now()) + 5_000, 'the delayed job to run');
    const [rows] = await t.db.query('SELECT v, UNIX_TIMESTAMP(at) * 1000 AS at FROM jobopts_ran');
    const [row] = rows as Array<{ v: string; at: string }>;
    expect(row!.v).toBe('woke');
    // Not before it was due; within a couple of seconds after (the daemon's cron never fires in this test).
    expect(Number(row!.at)).toBeGreaterThanOrEqual(due);
    expect(Number(row!.at) - due).toBeLessThan(2_000);
    await daemon.waitForEvent((e) => e.event === 'run' && e.reason === 'due', 5_000, 'the due run');
    expect(daemon.events.filter((e) => e.event === 'run').map((e) => e.reason)).toEqual(['due']);
  });
});

describe('delayed jobs: crash safety', () => {
  it('a promotion cut short (a job that can not be moved) leaves that job and the later ones waiting, none lost; the next run goes on in id order', async () => {
    home = await tempHome();
    const qb = open();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await qb.spool(INSERT, [`d${i}`], { delayMs: 200 + i }));
    await sleep(300);
    // Something in the way of the 4th job's place in its shard: its rename fails (EISDIR).
    const { spoolPathFor } = await import('../src/spool/shards.js');
    const { mkdir, rmdir } = await import('node:fs/promises');
    const obstacle = spoolPathFor(join(home, 'spool'), 'main', ids[3]!);
    await mkdir(obstacle, { recursive: true });
    const first = await qb.run();
    expect(first).toMatchObject({ success: 3, sqlFailed: 0, delayed: 3 });
    expect(await qb.status(ids[3]!)).toMatchObject({ state: 'delayed' });
    expect((await qb.logs({ errors: true })).map((e) => e.record)).toEqual([expect.objectContaining({ id: ids[3], code: 'EISDIR', message: expect.stringContaining('left in place for the next run') })]);
    await rmdir(obstacle);
    expect(await qb.run()).toMatchObject({ success: 3, delayed: 0 });
    expect(await ran()).toEqual(['d0', 'd1', 'd2', 'd3', 'd4', 'd5']);
  });

  it('a runner SIGKILLed while it promotes due jobs loses none and runs none twice', async () => {
    home = await tempHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
    const qb = open();
    const N = 300;
    for (let i = 0; i < N; i++) await qb.spool(INSERT, [`j${i}`], { delayMs: 300 });
    await qb.close();
    q = undefined;
    expect(await readdir(join(home, 'spool', '.delayed', 'main'))).toHaveLength(N);
    await sleep(350);
    const child = spawn(process.execPath, [CLI, '--home', home, 'run'], { stdio: 'ignore' });
    // Killed as soon as promotion has begun: some jobs moved into their shards, most not yet.
    await waitFor(async () => ((await readdir(join(home, 'spool', '.delayed', 'main')).catch(() => [])).length < N ? true : undefined), 10_000, 'promotion to begin');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
    const left = (await readdir(join(home, 'spool', '.delayed', 'main')).catch(() => [])).length;
    const queued = (await jobIdsBelow(join(home, 'spool'))).length; // shards and the dead runner's claims
    const done = (await ran()).length;
    // Every job in one place: waiting, queued (or claimed), or run; a job that committed just
    // before the kill may still have its claim (the ledger settles it, below).
    expect(left + queued + done).toBeGreaterThanOrEqual(N);
    expect(left + queued + done).toBeLessThanOrEqual(N + 1);
    const again = open();
    await again.run();
    const values = await ran();
    expect(values).toHaveLength(N);
    expect(new Set(values).size).toBe(N);
  });
});
