import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { filesBelow, removeHome, runCli, tempHome, useTestDatabase } from './helpers.js';
import { waitFor } from './daemon-helpers.js';

const t = useTestDatabase('priority', 'CREATE TABLE ran (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))');
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
  await t.db.query('TRUNCATE ran');
});

async function ranInOrder(): Promise<string[]> {
  const [rows] = await t.db.query('SELECT v FROM ran ORDER BY n');
  return (rows as Array<{ v: string }>).map((r) => r.v);
}

describe('priority: immediate', () => {
  it('100 normal and 5 immediate spooled among them: the 5 run first, in their own order, then the rest in theirs', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const expectedImmediate: string[] = [];
    const expectedNormal: string[] = [];
    let immediateId = '';
    for (let i = 0; i < 100; i++) {
      await q.spool('INSERT INTO ran (v) VALUES (?)', [`n${i}`]);
      expectedNormal.push(`n${i}`);
      if (i % 20 === 7) {
        const v = `i${expectedImmediate.length}`;
        immediateId = await q.spool('INSERT INTO ran (v) VALUES (?)', [v], { priority: 'immediate' });
        expectedImmediate.push(v);
      }
    }
    // Queued positions say the same: the last immediate job is 5th, the first normal one 6th.
    expect(await q.status(immediateId)).toMatchObject({ state: 'queued', priority: 'immediate', position: 5 });
    expect((await readdir(join(home, 'spool', '.immediate', 'main'))).length).toBe(5);

    expect(await q.run()).toMatchObject({ success: 105, sqlFailed: 0 });
    expect(await ranInOrder()).toEqual([...expectedImmediate, ...expectedNormal]);
    expect(await filesBelow(join(home, 'spool'))).toEqual([]);
  });

  it('a marker whose job is gone is skipped, and removed once it is stale', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    const id = await q.spool('INSERT INTO ran (v) VALUES (?)', ['x'], { priority: 'immediate' });
    await q.run();
    // A marker left behind by a crash, for a job that already ran: a young one waits, an old one goes.
    const marker = join(home, 'spool', '.immediate', 'main', id);
    await writeFile(marker, '');
    await q.spool('INSERT INTO ran (v) VALUES (?)', ['y']);
    expect(await q.run()).toMatchObject({ success: 1 });
    expect(await readdir(join(home, 'spool', '.immediate', 'main'))).toEqual([id]);
    const { utimes } = await import('node:fs/promises');
    await utimes(marker, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    await q.run();
    expect(await readdir(join(home, 'spool', '.immediate', 'main'))).toEqual([]);
    expect(await ranInOrder()).toEqual(['x', 'y']);
  });

  it('under a running start, an immediate job triggers a run at once; a normal one waits for the schedule', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url }, dropInSettleMs: 200 });
    await q.spool('SELECT 1'); // the layout and the datasource tree exist before the watcher starts
    await q.run();
    const handle = await q.start({ cron: '0 0 1 1 *', startDelayMs: 3_600_000 });
    try {
      await q.spool('INSERT INTO ran (v) VALUES (?)', ['normal']);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await ranInOrder()).toEqual([]);
      // The configured datasources' marker directories exist before the watcher starts (a
      // marker in a directory born with it can be missed by chokidar).
      expect(await readdir(join(home, 'spool', '.immediate'))).toEqual(['main']);
      // A marker directory appearing (a producer about to write its first marker) is no marker.
      await mkdir(join(home, 'spool', '.immediate', 'other'), { recursive: true });
      await new Promise((r) => setTimeout(r, 1000));
      expect(await ranInOrder()).toEqual([]);
      // From another process, as a producer would.
      await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: t.url } }));
      const spooled = await runCli(['--home', home, 'spool', '--priority', 'immediate', "INSERT INTO ran (v) VALUES ('urgent')"]);
      expect(spooled.code).toBe(0);
      await waitFor(async () => ((await ranInOrder()).length === 2 ? true : undefined), 5_000, 'the immediate run');
      expect(await ranInOrder()).toEqual(['urgent', 'normal']);
    } finally {
      await handle.stop();
    }
  });

  it('under a running start, a marker in a directory created with it still triggers a run', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: t.url } });
    await q.spool('SELECT 1');
    await q.run();
    const handle = await q.start({ cron: '0 0 1 1 *', startDelayMs: 3_600_000 });
    try {
      const id = await q.spool('INSERT INTO ran (v) VALUES (?)', ['late']);
      // A new directory with a marker in it, one level deeper than chokidar reports files:
      // as when chokidar misses a directory born with its first marker, only the look into
      // the new directory (daemon/watcher.ts) can see it. The run drains main, 'late' with it.
      await mkdir(join(home, 'spool', '.immediate', 'elsewhere', 'deeper'), { recursive: true });
      await writeFile(join(home, 'spool', '.immediate', 'elsewhere', 'deeper', id), '');
      await waitFor(async () => ((await ranInOrder()).includes('late') ? true : undefined), 5_000, 'a run');
    } finally {
      await handle.stop();
    }
  });
});
