import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { mkdir, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { watchShards, type ShardWatcher } from '../src/daemon/shard-watcher.js';
import { UPKEEP_EVERY_MS, startSchedule, type RunReason, type ScheduleHandle } from '../src/daemon/schedule.js';
import { resolveConfig } from '../src/config.js';
import { QueryBatch } from '../src/index.js';
import { newId } from '../src/spool/id.js';
import { spoolPathFor } from '../src/spool/shards.js';
import type { RunSummary } from '../src/interfaces.js';
import { removeHome, tempHome } from './helpers.js';
import { sleep, waitFor } from './daemon-helpers.js';

/** The shard watcher of continuous mode, on a real spool tree (no database). */
let home: string;
let watcher: ShardWatcher | undefined;
let handle: ScheduleHandle | undefined;

afterEach(async () => {
  vi.restoreAllMocks();
  watcher?.close();
  watcher = undefined;
  await handle?.stop();
  handle = undefined;
  await removeHome(home);
});

const BUCKET = '01ABCD';
/** A leaf name for i < 1024: its second (two id characters) and generation 0. */
const leafName = (i: number) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[i >> 5]! + '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[i & 31]! + '0';
/** A job file name of that leaf (its 11th character, the generation, a 0); `n` makes it unique. */
const jobName = (bucket: string, leaf: string, n: number) => `${bucket}${leaf.slice(0, 2)}${String(n).padStart(18, '0')}.batchsql`;

/** Writes a job file the way the spool writer does: into spool/.tmp, then renamed into its leaf. */
async function spoolFile(spool: string, bucket: string, leaf: string, n: number): Promise<string> {
  const tmp = join(spool, '.tmp', `${n}.tmp`);
  await writeFile(tmp, 'x');
  const dir = join(spool, 'main', bucket, leaf);
  await mkdir(dir, { recursive: true });
  const path = join(dir, jobName(bucket, leaf, n));
  await rename(tmp, path);
  return path;
}

describe('continuous mode: the shard watcher', () => {
  it('watches directories, not files: 100,000 pending files cost the tree, its buckets and the newest leaves', async () => {
    home = await tempHome();
    const spool = join(home, 'spool');
    const perLeaf = 500;
    for (let l = 0; l < 200; l++) {
      const dir = join(spool, 'main', BUCKET, leafName(l));
      mkdirSync(dir, { recursive: true });
      for (let n = 0; n < perLeaf; n++) writeFileSync(join(dir, jobName(BUCKET, leafName(l), l * perLeaf + n)), '');
    }
    mkdirSync(join(spool, 'main', '01ABCC', '000'), { recursive: true });
    let woken = 0;
    watcher = watchShards(spool, ['main'], () => woken++, (e) => {
      throw e;
    }, { maxLeaves: 64 });
    await watcher.ready;
    const watched = watcher.watched();
    expect(watched).toHaveLength(1 + 2 + 64);
    expect(watched).toContain(join(spool, 'main'));
    expect(watched).toContain(join(spool, 'main', BUCKET, leafName(199)));
    expect(watched).toContain(join(spool, 'main', BUCKET, leafName(136)));
    expect(watched).not.toContain(join(spool, 'main', BUCKET, leafName(135)));
    expect(watched).not.toContain(join(spool, 'main', '01ABCC', '000'));
    await sleep(200);
    expect(woken).toBe(0); // what was there at start is the start run's
  }, 180_000);

  it('wakes on a file renamed into a leaf, a new leaf or a new bucket; not on a file taken away', async () => {
    home = await tempHome();
    const spool = join(home, 'spool');
    await mkdir(join(spool, '.tmp'), { recursive: true });
    await mkdir(join(spool, 'main', BUCKET, '000'), { recursive: true });
    let woken = 0;
    watcher = watchShards(spool, ['main', 'other'], () => woken++, (e) => {
      throw e;
    });
    await watcher.ready;
    expect(watcher.watched()).toContain(join(spool, 'other')); // made at start, so its first bucket is seen

    const first = await spoolFile(spool, BUCKET, '000', 1); // an existing leaf
    await waitFor(() => (woken >= 1 ? true : undefined), 2_000, 'a wake-up for a file in a watched leaf');

    // Taken by a run (renamed away): nothing to do.
    const before = woken;
    await rename(first, join(spool, '.tmp', 'claimed'));
    await sleep(300);
    expect(woken).toBe(before);

    // A leaf made and filled at once: the file may land before the leaf is watched; the listing after the watch finds it.
    for (let i = 1; i <= 20; i++) {
      const n = woken;
      await spoolFile(spool, BUCKET, leafName(i), 100 + i);
      await waitFor(() => (woken > n ? true : undefined), 2_000, `a wake-up for new leaf ${i}`);
    }
    const n = woken;
    await spoolFile(spool, '01ABCE', '000', 500); // a new bucket
    await waitFor(() => (woken > n ? true : undefined), 2_000, 'a wake-up for a new bucket');

    // A drained leaf removed: its watch goes.
    const leaf = join(spool, 'main', '01ABCE', '000');
    await unlink(join(leaf, jobName('01ABCE', '000', 500)));
    await rmdir(leaf);
    await waitFor(() => (watcher!.watched().includes(leaf) ? undefined : true), 2_000, 'the removed leaf unwatched');
  });
});

/** A run's summary with nothing done; `connectionError` as if the datasource stopped on a connection failure. */
function summaryOf(connectionError?: string): RunSummary {
  const ds = { success: 0, sqlFailed: 0, connectionFailed: connectionError ? 1 : 0, invalid: 0, deferred: 0, sqlMs: 0, settled: 0, uncertain: 0, retried: 0, ...(connectionError && { connectionError }) };
  return {
    runner: 'test', startedAt: '', finishedAt: '', success: 0, sqlFailed: 0, connectionFailed: ds.connectionFailed, invalid: 0, deferred: 0, adopted: 0, recovered: 0,
    settled: 0, uncertain: 0, tmpRemoved: 0, retried: 0, totalMs: 0, avgMs: 0, wallMs: 0, datasources: { main: ds },
  };
}

describe('continuous mode: the schedule', () => {
  it('after a connection failure, jobs wake nothing until a run without one; then they wake runs again', async () => {
    home = await tempHome();
    const spool = join(home, 'spool');
    await mkdir(join(spool, '.tmp'), { recursive: true });
    const config = resolveConfig({ home, configFile: false, datasources: { main: 'mysql://root@127.0.0.1:1/x' }, schedule: { cron: '0 0 1 1 *', startDelayMs: 600_000, watch: false, continuous: true } });
    const reasons: RunReason[] = [];
    let down = true;
    handle = startSchedule({
      spoolDir: spool,
      settleMs: 0,
      schedule: config.schedule,
      datasources: ['main'],
      run: () => Promise.resolve(summaryOf(down ? 'ECONNREFUSED' : undefined)),
      adopt: () => Promise.resolve(summaryOf()),
      nextDue: () => Promise.resolve(null),
    }, { onRun: (_s, reason) => reasons.push(reason) });
    await handle.ready;
    await spoolFile(spool, BUCKET, '000', 1);
    await waitFor(() => (reasons.length === 1 ? true : undefined), 2_000, 'the first continuous run');
    expect(reasons).toEqual(['continuous']);
    for (let i = 2; i <= 10; i++) await spoolFile(spool, BUCKET, '000', i);
    await sleep(500);
    expect(reasons).toEqual(['continuous']); // held: no run per job
    down = false;
    await handle.runNow(); // the cron's run (reason schedule) connects: continuous mode resumes
    await waitFor(() => (reasons.length >= 3 ? true : undefined), 2_000, 'the run the held wake-ups asked for');
    expect(reasons.slice(0, 3)).toEqual(['continuous', 'schedule', 'continuous']);
    await spoolFile(spool, BUCKET, '000', 11);
    await waitFor(() => (reasons.length >= 4 ? true : undefined), 2_000, 'a continuous run for a new job');
  });
});

describe('continuous mode: the upkeep', () => {
  it('a continuous run skips the upkeep when a run did it less than UPKEEP_EVERY_MS ago, else does it; cron runs always do it', async () => {
    home = await tempHome();
    const spool = join(home, 'spool');
    await mkdir(join(spool, '.tmp'), { recursive: true });
    const config = resolveConfig({ home, configFile: false, datasources: { main: 'mysql://root@127.0.0.1:1/x' }, schedule: { cron: '0 0 1 1 *', startDelayMs: 600_000, watch: false, continuous: true } });
    const runs: Array<{ reason: RunReason; upkeep: boolean }> = [];
    let upkeep = true;
    handle = startSchedule({
      spoolDir: spool,
      settleMs: 0,
      schedule: config.schedule,
      datasources: ['main'],
      run: (options) => {
        upkeep = options.upkeep !== false;
        return Promise.resolve(summaryOf());
      },
      adopt: () => Promise.resolve(summaryOf()),
      nextDue: () => Promise.resolve(null),
    }, { onRun: (_s, reason) => runs.push({ reason, upkeep }) });
    await handle.ready;
    // A file may wake more than one run (a new leaf is listed, and its rename reported): count runs from a mark.
    const after = async (mark: number, what: string) => {
      await waitFor(() => (runs.slice(mark).some((r) => r.reason === 'continuous') ? true : undefined), 2_000, what);
      return runs.slice(mark).filter((r) => r.reason === 'continuous');
    };
    await spoolFile(spool, BUCKET, '000', 1);
    // No run did the upkeep before the first (no start run yet).
    expect((await after(0, 'the first continuous run'))[0]).toEqual({ reason: 'continuous', upkeep: true });
    let mark = runs.length;
    await spoolFile(spool, BUCKET, '000', 2);
    expect((await after(mark, 'a second continuous run')).map((r) => r.upkeep)).not.toContain(true);
    await handle.runNow(); // the cron's run always does the upkeep
    expect(runs.filter((r) => r.reason === 'schedule')).toEqual([{ reason: 'schedule', upkeep: true }]);
    mark = runs.length;
    await spoolFile(spool, BUCKET, '000', 3);
    expect((await after(mark, 'a continuous run after the cron run')).map((r) => r.upkeep)).not.toContain(true);
    // A minute later (a yearly cron): a continuous run does the upkeep.
    const now = Date.now();
    vi.spyOn(Date, 'now').mockImplementation(() => now + UPKEEP_EVERY_MS);
    mark = runs.length;
    await spoolFile(spool, BUCKET, '000', 4);
    const late = await after(mark, 'a continuous run a minute later');
    vi.restoreAllMocks();
    expect(late[0]).toEqual({ reason: 'continuous', upkeep: true });
  });
});

describe('continuous mode: the writer', () => {
  it('spools while a runner keeps removing the current leaf (as a continuous daemon does): no SPOOL_WRITE_FAILED', async () => {
    home = await tempHome();
    const qb = new QueryBatch({ home, configFile: false, datasources: { main: 'mysql://root@127.0.0.1:1/x' } });
    let writing = true;
    // What a drain does after each leaf: rmdir it and its bucket if they are empty, over and over.
    const remover = (async () => {
      while (writing) {
        const leaf = dirname(spoolPathFor(join(home, 'spool'), 'main', newId()));
        for (const dir of [leaf, dirname(leaf)]) {
          try {
            rmdirSync(dir);
          } catch {
            // not empty, or not there
          }
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      for (let i = 0; i < 150; i++) await qb.spool('INSERT INTO t (v) VALUES (?)', [i]);
    } finally {
      writing = false;
      await remover;
      await qb.close();
    }
  });
});
