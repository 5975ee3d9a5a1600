import { afterEach, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import type { RunReason } from '../src/daemon/schedule.js';
import type { RunSummary } from '../src/interfaces.js';
import { lockNameFor } from '../src/db/mysql/dialect.js';
import { shardOf } from '../src/spool/shards.js';
import { DIALECTS, sqliteSessions, type FixtureDatabase } from './dialects.js';
import { filesBelow, removeHome, runCli, tempHome, useTestDatabase } from './helpers.js';
import { startDaemon, waitFor, type Daemon } from './daemon-helpers.js';

/**
 * Continuous mode keeps a datasource's session and drain lock between runs
 * (RunOptions.keepLockMs, run/kept-holds.ts): another runner is refused as busy while it is
 * kept, and gets the datasource once it is given back; a kept session that died while idle is
 * replaced, not used.
 */
const t = useTestDatabase('continuous2_kept', 'CREATE TABLE kept (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40) NOT NULL)');
let home: string;
let qb: QueryBatch | undefined;
let daemon: Daemon | undefined;

const NEVER = '0 0 1 1 *';
const LONG = 600_000;

afterEach(async () => {
  await qb?.close();
  qb = undefined;
  if (daemon) expect(await daemon.stop()).toBe(0);
  daemon = undefined;
  await t.db.query('DELETE FROM kept');
  await removeHome(home);
});

async function values(): Promise<string[]> {
  const [rows] = await t.db.query('SELECT v FROM kept ORDER BY n');
  return (rows as Array<{ v: string }>).map((r) => r.v);
}

/** The server's connection id holding GET_LOCK `name`, or null when it is free. */
async function holder(name: string): Promise<number | null> {
  const [rows] = await t.db.query('SELECT IS_USED_LOCK(?) AS id', [name]);
  const id = (rows as Array<{ id: unknown }>)[0]?.id;
  return id === null || id === undefined ? null : Number(id);
}

/** The datasource `main`'s drain lock name in this home (the dialect's lockKey of the spool's id). */
async function lockName(): Promise<string> {
  return lockNameFor((await readFile(join(home, 'spool', '.id'), 'utf8')).trim(), 'main');
}

/** `querybatch run --json` in another process: its summary of datasource main. */
async function cliRun(): Promise<RunSummary['datasources'][string]> {
  const out = await runCli(['--home', home, 'run', '--json']);
  expect(out.code, out.stderr).toBe(0);
  return (JSON.parse(out.stdout) as RunSummary).datasources.main!;
}

async function newHome(): Promise<void> {
  home = await tempHome();
  await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
}

describe('a lock kept between runs (RunOptions.keepLockMs)', () => {
  it('refuses another runner as busy while kept, which then drains once close() gave it back', async () => {
    await newHome();
    qb = new QueryBatch({ home });
    await qb.spool('INSERT INTO kept (v) VALUES (?)', ['first']);
    expect(await qb.run({ keepLockMs: LONG })).toMatchObject({ success: 1 });
    expect(await holder(await lockName())).not.toBeNull();
    // Spooled with nothing running: only the other runner could drain it, and the lock is kept.
    await qb.spool('INSERT INTO kept (v) VALUES (?)', ['second']);
    expect(await cliRun()).toMatchObject({ busy: true, success: 0 });
    expect(await values()).toEqual(['first']);
    await qb.close();
    qb = undefined;
    // close() unlocked it (this process still lives: the lock connection would otherwise hold it).
    expect(await holder(await lockName())).toBeNull();
    expect(await cliRun()).toMatchObject({ success: 1 });
    expect(await values()).toEqual(['first', 'second']);
  });

  it('gives the lock back after keepLockMs without a run: the other runner then drains', async () => {
    await newHome();
    qb = new QueryBatch({ home });
    await qb.spool('INSERT INTO kept (v) VALUES (?)', ['first']);
    expect(await qb.run({ keepLockMs: 300 })).toMatchObject({ success: 1 });
    await qb.spool('INSERT INTO kept (v) VALUES (?)', ['second']);
    await waitFor(async () => (await holder(await lockName())) === null ? true : undefined, 10_000, 'the kept lock to be given back');
    expect(await cliRun()).toMatchObject({ success: 1 });
    expect(await values()).toEqual(['first', 'second']);
  });

  it('a run without keepLockMs (one with the upkeep) takes the kept lock and gives it back', async () => {
    await newHome();
    qb = new QueryBatch({ home });
    await qb.spool('INSERT INTO kept (v) VALUES (?)', ['first']);
    expect(await qb.run({ keepLockMs: LONG })).toMatchObject({ success: 1 });
    await qb.spool('INSERT INTO kept (v) VALUES (?)', ['second']);
    // Not busy: this process's own kept lock is taken over, then released at the end.
    expect((await qb.run()).datasources.main).toMatchObject({ success: 1 });
    expect(await holder(await lockName())).toBeNull();
    expect(await values()).toEqual(['first', 'second']);
  });

  it('pausing the datasource gives the kept lock back at the next run', async () => {
    await newHome();
    qb = new QueryBatch({ home });
    await qb.spool('INSERT INTO kept (v) VALUES (?)', ['first']);
    expect(await qb.run({ keepLockMs: LONG })).toMatchObject({ success: 1 });
    await qb.pause('main');
    expect((await qb.run({ keepLockMs: LONG })).datasources.main).toMatchObject({ paused: true });
    expect(await holder(await lockName())).toBeNull();
  });
});

describe('continuous mode keeps the lock', () => {
  /** A continuous daemon in this process (yearly cron, no first run, no drop-in watcher), its runs collected. */
  async function startContinuous(): Promise<Array<{ reason: RunReason; summary: RunSummary }>> {
    const runs: Array<{ reason: RunReason; summary: RunSummary }> = [];
    qb = new QueryBatch({ home, schedule: { continuous: true, cron: NEVER, startDelayMs: LONG, watch: false, keepLockMs: LONG } });
    await qb.start({ onRun: (summary, reason) => runs.push({ reason, summary }) });
    return runs;
  }

  it('between its runs; a KILLed kept connection is replaced and later jobs drain without a connection failure', async () => {
    await newHome();
    const runs = await startContinuous();
    // The first run does the upkeep and gives the lock back; the second, without it, keeps it.
    for (const [k, v] of ['zeroth', 'first'].entries()) {
      await qb!.spool('INSERT INTO kept (v) VALUES (?)', [v]);
      await waitFor(async () => ((await values()).length === k + 1 ? true : undefined), 10_000, `row ${v}`);
    }
    const name = await lockName();
    const lockConnection = await waitFor(async () => (await holder(name)) ?? undefined, 5_000, 'the kept lock');
    const jobConnection = await holder(`${name}:session`);
    expect(jobConnection).not.toBeNull();
    // Killed from a second session while the daemon is idle (as a DBA or a failover would).
    await t.db.query(`KILL ${lockConnection}`);
    await t.db.query(`KILL ${jobConnection!}`);
    await qb!.spool('INSERT INTO kept (v) VALUES (?)', ['second']);
    await qb!.spool('INSERT INTO kept (v) VALUES (?)', ['third']);
    await waitFor(async () => ((await values()).length === 4 ? true : undefined), 10_000, 'the later rows');
    expect(await values()).toEqual(['zeroth', 'first', 'second', 'third']);
    expect(runs.every((r) => r.reason === 'continuous' && r.summary.connectionFailed === 0)).toBe(true);
    // Held again, on a new connection.
    const again = await waitFor(async () => (await holder(name)) ?? undefined, 5_000, 'the lock held again');
    expect(again).not.toBe(lockConnection);
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
    await qb!.stop();
    expect(await holder(name)).toBeNull();
  });

  it('querybatch start --continuous holds the lock after its run; SIGTERM gives it back and exits 0', async () => {
    await newHome();
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url }, schedule: { keepLockMs: LONG } }));
    daemon = await startDaemon(home, ['--continuous', '--cron', NEVER, '--start-delay', String(LONG), '--no-watch']);
    // The first run does the upkeep and gives the lock back; the second, without it, keeps it.
    for (const [k, v] of ['zeroth', 'first'].entries()) {
      expect((await runCli(['--home', home, 'spool', 'INSERT INTO kept (v) VALUES (?)', '--param', v])).code).toBe(0);
      await waitFor(async () => ((await values()).length === k + 1 ? true : undefined), 10_000, `row ${v}`);
    }
    const name = await lockName();
    await waitFor(async () => (await holder(name)) ?? undefined, 5_000, 'the kept lock');
    const code = await daemon.stop();
    daemon = undefined;
    expect(code).toBe(0);
    expect(await holder(name)).toBeNull();
  });
});

describe('a run lists its leaf again before leaving it', () => {
  it('a job spooled into the leaf while the run works on it runs in that run, not the next', async () => {
    await newHome();
    // Without the ledger each job runs as soon as it is claimed: the second is spooled while the first sleeps.
    qb = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: false } } });
    for (let attempt = 1; ; attempt++) {
      const first = await qb.spool('DO SLEEP(1)');
      const running = qb.run();
      await waitFor(async () => ((await qb!.status(first)).state === 'running' ? true : undefined), 10_000, 'the first job to be claimed');
      const second = await qb.spool('INSERT INTO kept (v) VALUES (?)', [`attempt ${attempt}`]);
      const summary = await running;
      // Only a second job in the same leaf (the same second) says anything; else try again.
      if (shardOf(first).join('/') !== shardOf(second).join('/')) {
        await qb.run();
        expect(attempt).toBeLessThan(5);
        continue;
      }
      expect(summary).toMatchObject({ success: 2 });
      expect((await values()).at(-1)).toBe(`attempt ${attempt}`);
      break;
    }
  });
});

describe.each(DIALECTS.filter((d) => d.name !== 'mariadb'))('a lock kept between runs on $name', (dialect) => {
  let db: FixtureDatabase;

  /** PostgreSQL: the backends holding advisory locks in the test's database; SQLite: this process's session processes. */
  async function holders(): Promise<number[]> {
    if (dialect.name === 'sqlite') return sqliteSessions(process.pid).map((p) => p.pid).sort();
    const rows = await db.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY pid");
    return rows.map((r) => Number(r.pid));
  }

  async function rows(): Promise<string[]> {
    return (await db.query('SELECT v FROM kept_d ORDER BY k')).map((r) => String(r.v));
  }

  it('is used again while its session holds it (Session.holdsLock), refuses another runner, and goes with close()', async () => {
    home = await tempHome();
    db = await dialect.open(home);
    try {
      await db.exec(dialect.table('kept_d'));
      await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: db.url } }));
      qb = new QueryBatch({ home });
      await qb.spool('INSERT INTO kept_d (v) VALUES (?)', ['first']);
      expect(await qb.run({ keepLockMs: LONG })).toMatchObject({ success: 1 });
      const kept = await holders();
      expect(kept.length).toBeGreaterThan(0);
      await qb.spool('INSERT INTO kept_d (v) VALUES (?)', ['second']);
      expect(await cliRun()).toMatchObject({ busy: true, success: 0 });
      // The kept session says it still holds the lock: the same connections (processes) run the next job.
      expect((await qb.run({ keepLockMs: LONG })).datasources.main).toMatchObject({ success: 1, connectionFailed: 0 });
      expect(await holders()).toEqual(expect.arrayContaining(kept));
      await qb.spool('INSERT INTO kept_d (v) VALUES (?)', ['third']);
      await qb.close();
      qb = undefined;
      expect(await cliRun()).toMatchObject({ success: 1 });
      expect(await rows()).toEqual(['first', 'second', 'third']);
    } finally {
      await db.close();
    }
  });
});
