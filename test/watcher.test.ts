import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { newId } from '../src/spool/id.js';
import { spoolPathFor } from '../src/spool/shards.js';
import { watchSpool } from '../src/daemon/watcher.js';
import { removeHome, tempHome } from './helpers.js';
import { waitFor } from './daemon-helpers.js';

let home: string;
afterEach(async () => {
  await removeHome(home);
});

describe('the spool watcher', () => {
  it('holds a handful of entries however many jobs are pending, and still sees drop-ins at any depth', async () => {
    home = await tempHome();
    const spool = join(home, 'spool');
    // 3,000 pending jobs in their shards (written straight to disk: only the layout matters here).
    const t0 = Date.now() - 3_000_000;
    for (let i = 0; i < 3000; i++) {
      const path = spoolPathFor(spool, 'main', newId(t0 + i * 1000));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, '{}');
    }
    await mkdir(join(spool, '.tmp'), { recursive: true });
    await writeFile(join(spool, '.tmp', 'x'), '');
    await mkdir(join(spool, 'incoming'));
    const seen: string[] = [];
    const watcher = watchSpool(spool, (path) => seen.push(path), (error) => {
      throw error;
    });
    try {
      await watcher.ready;
      const watched = watcher.watched();
      const entries = Object.values(watched).reduce((n, names) => n + names.length, 0);
      expect(Object.keys(watched).sort()).toEqual([home, spool, join(spool, 'incoming'), join(spool, 'main')].sort());
      expect(entries).toBeLessThan(10);

      await mkdir(join(spool, 'a', 'b', 'c'), { recursive: true });
      await writeFile(join(spool, 'a', 'b', 'c', 'x.batchsql'), '{}');
      await writeFile(join(spool, 'incoming', 'y.sql'), 'SELECT 1');
      await waitFor(() => (seen.includes(join(spool, 'a', 'b', 'c', 'x.batchsql')) && seen.includes(join(spool, 'incoming', 'y.sql')) ? true : undefined), 5_000, 'both drop-ins');
      // Jobs written into the shards are not events.
      const fresh = spoolPathFor(spool, 'main', newId());
      await mkdir(dirname(fresh), { recursive: true });
      await writeFile(fresh, '{}');
      await new Promise((r) => setTimeout(r, 300));
      expect(seen.filter((p) => p.includes(join(spool, 'main', '')))).toEqual([]);
    } finally {
      await watcher.close();
    }
  });
});
