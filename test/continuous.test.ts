import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { QueryBatch } from '../src/index.js';
import { CLI, CLOSED_PORT_URL, filesBelow, jobIdsBelow, removeHome, runCli, tempHome, useTestDatabase } from './helpers.js';
import { sleep, startDaemon, waitFor, type Daemon } from './daemon-helpers.js';

/**
 * `querybatch start --continuous` (issue 15): jobs spooled by other processes run without
 * waiting for the cron, which is set to fire once a year in every test here.
 */
const t = useTestDatabase('continuous');
let home: string;
let daemon: Daemon | undefined;

const NEVER = '0 0 1 1 *';
/** No first run, no drop-in watcher: only continuous mode can wake the daemon. */
const ONLY_CONTINUOUS = ['--continuous', '--cron', NEVER, '--start-delay', '600000', '--no-watch'];

async function writeConfig(datasources: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<void> {
  await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources, ...extra }));
}

async function count(table: string): Promise<number> {
  const [rows] = await t.db.query(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number((rows as Array<{ n: number }>)[0]!.n);
}

const DIST_INDEX = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;

/**
 * A producer process: spools `n` INSERTs of (p, seq) into `table`, one after another, and
 * prints for each job `seq start end` (Date.now() before spool() and after it resolved).
 */
function producer(p: number, n: number, table: string): Promise<Array<{ p: number; seq: number; start: number; end: number }>> {
  const code = `
    const { QueryBatch } = await import(${JSON.stringify(DIST_INDEX)});
    const qb = new QueryBatch({ home: ${JSON.stringify(home)} });
    const lines = [];
    for (let seq = 0; seq < ${n}; seq++) {
      const start = Date.now();
      await qb.spool('INSERT INTO ${table} (p, seq) VALUES (?, ?)', [${p}, seq]);
      lines.push(seq + ' ' + start + ' ' + Date.now());
    }
    await qb.close();
    process.stdout.write(lines.join('\\n') + '\\n');`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (status) => {
      if (status !== 0) return reject(new Error(`producer ${p} exited ${status}: ${err}`));
      resolve(out.trim().split('\n').map((line) => {
        const [seq, start, end] = line.split(' ').map(Number);
        return { p, seq: seq!, start: start!, end: end! };
      }));
    });
  });
}

afterEach(async () => {
  if (daemon) expect(await daemon.stop()).toBe(0);
  daemon = undefined;
  await removeHome(home);
});

describe('querybatch start --continuous', () => {
  it('runs a job spooled by another process (the CLI) within seconds, though the cron fires once a year', async () => {
    home = await tempHome();
    await writeConfig({ main: t.url });
    await t.db.query('CREATE TABLE continuous_one (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    daemon = await startDaemon(home, ONLY_CONTINUOUS);
    expect(daemon.events[0]).toMatchObject({ event: 'started', continuous: true, cron: NEVER });
    for (const v of [1, 2]) {
      const spooled = await runCli(['--home', home, 'spool', 'INSERT INTO continuous_one (v) VALUES (?)', '--param', String(v)]);
      expect(spooled.code).toBe(0);
      // Not a speed target: a bound that fails only when nothing wakes the daemon.
      await waitFor(async () => ((await count('continuous_one')) === v ? true : undefined), 5_000, `row ${v}`);
    }
    await daemon.waitForEvent((e) => e.event === 'run' && e.reason === 'continuous', 3_000, 'a continuous run event');
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('keeps FIFO across a burst of 500 jobs from two producer processes into one datasource; SIGTERM then exits 0', async () => {
    home = await tempHome();
    await writeConfig({ main: t.url });
    await t.db.query('CREATE TABLE continuous_burst (n INT AUTO_INCREMENT PRIMARY KEY, p INT NOT NULL, seq INT NOT NULL)');
    daemon = await startDaemon(home, ONLY_CONTINUOUS);
    const spooled = (await Promise.all([producer(1, 250, 'continuous_burst'), producer(2, 250, 'continuous_burst')])).flat();
    await waitFor(async () => ((await count('continuous_burst')) === 500 ? true : undefined), 20_000, 'all 500 rows');
    const [rows] = await t.db.query('SELECT p, seq FROM continuous_burst ORDER BY n');
    const order = rows as Array<{ p: number; seq: number }>;
    // Each job once, each producer's jobs in the order it spooled them.
    expect(new Set(order.map((r) => `${r.p}.${r.seq}`)).size).toBe(500);
    for (const p of [1, 2]) expect(order.filter((r) => r.p === p).map((r) => r.seq)).toEqual([...Array(250).keys()]);
    // Across the processes: a job spooled (resolved) before another began to be spooled commits first.
    const times = new Map(spooled.map((s) => [`${s.p}.${s.seq}`, s]));
    const byCommit = order.map((r) => times.get(`${r.p}.${r.seq}`)!);
    let laterMinEnd = Infinity;
    for (let i = byCommit.length - 1; i >= 0; i--) {
      const job = byCommit[i]!;
      expect(laterMinEnd >= job.start, `a job spooled before ${job.p}.${job.seq} began committed after it`).toBe(true);
      laterMinEnd = Math.min(laterMinEnd, job.end);
    }
    // The jobs came while runs were in flight: fewer runs than jobs (wake-ups coalesce).
    const runs = daemon.events.filter((e) => e.event === 'run');
    expect(runs.every((e) => e.reason === 'continuous')).toBe(true);
    expect(runs.length).toBeLessThan(500);
    const code = await daemon.stop();
    daemon = undefined;
    expect(code).toBe(0);
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('does not loop on a connection failure: jobs wait in spool for the cron', async () => {
    home = await tempHome();
    await writeConfig({ main: CLOSED_PORT_URL });
    daemon = await startDaemon(home, ONLY_CONTINUOUS);
    const lib = new QueryBatch({ home, configFile: false, datasources: { main: CLOSED_PORT_URL } });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 30; i++) {
        ids.push(await lib.spool('INSERT INTO nowhere (v) VALUES (?)', [i]));
        await sleep(100);
      }
    } finally {
      await lib.close();
    }
    await sleep(500);
    // The first job woke one run, which could not connect; every job after it waited.
    const failedRuns = daemon.events.filter((e) => e.event === 'run' && (e.connectionFailed as number) > 0);
    expect(failedRuns.length).toBeGreaterThanOrEqual(1);
    expect(failedRuns.length).toBeLessThanOrEqual(2);
    expect((await jobIdsBelow(join(home, 'spool'))).sort()).toEqual(ids);
    expect(await readdir(join(home, 'failed'))).toEqual([]);
  });

  it('on SQLite: a job spooled by the CLI runs without waiting for the cron', async () => {
    home = await tempHome();
    await writeConfig({ main: 'sqlite:continuous.db' });
    const file = new Database(join(home, 'continuous.db'));
    try {
      file.exec('CREATE TABLE continuous_lite (n INTEGER PRIMARY KEY, v INT)');
      daemon = await startDaemon(home, ONLY_CONTINUOUS);
      for (const v of [1, 2, 3]) expect((await runCli(['--home', home, 'spool', 'INSERT INTO continuous_lite (v) VALUES (?)', '--param', String(v)])).code).toBe(0);
      const values = () => file.prepare('SELECT v FROM continuous_lite ORDER BY n').all().map((r) => (r as { v: number }).v);
      await waitFor(() => (values().length === 3 ? true : undefined), 5_000, 'three rows');
      expect(values()).toEqual([1, 2, 3]);
    } finally {
      file.close();
    }
  });

  it('CLI: --help lists --continuous', async () => {
    home = await tempHome();
    const help = await runCli(['start', '--help']);
    expect(help.stdout).toMatch(/--continuous\s+Run as soon as any process spools a job/);
    expect(CLI).toMatch(/cli\.js$/);
  });
});
