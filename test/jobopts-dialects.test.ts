import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueryBatch, type QueryBatchOptions } from '../src/index.js';
import { DIALECTS, type FixtureDatabase } from './dialects.js';
import { removeHome, startRunner, tempHome, waitFor } from './helpers.js';
import { sleep } from './daemon-helpers.js';

/**
 * What a runner SIGKILLed between a keyed job's COMMIT and the write of its outcome record
 * leaves behind: the job's file gone, no outcome record, and the key's marker, here made
 * older than the grace in which a marker whose job can't be found still holds (KEY_GRACE_MS).
 */
async function loseOutcome(home: string, key: string): Promise<void> {
  await fs.promises.rm(join(home, 'logs', 'outcomes'), { recursive: true, force: true });
  const marker = join(home, 'spool', '.keys', 'main', createHash('sha256').update(key, 'utf8').digest('hex'));
  const old = new Date(Date.now() - 5 * 60_000);
  await fs.promises.utimes(marker, old, old);
}

/** The unreachable twin of a datasource URL: a port nothing listens on, or a SQLite file in a directory that does not exist. */
function unreachable(url: string): string {
  return url.startsWith('sqlite') ? 'sqlite:no-such-dir/none/x.db' : url.replace(/@([^/:]+)(:\d+)?\//, '@$1:1/');
}

/** Keys and delayed jobs live in the spool, not the database: the same on every dialect. */
describe.each(DIALECTS)('job options: $name', (dialect) => {
  let home: string;
  let db: FixtureDatabase;
  let q: QueryBatch | undefined;

  beforeEach(async () => {
    home = await tempHome();
    db = await dialect.open(home);
    await db.exec(dialect.table('jobopts_jobs'));
  });

  afterEach(async () => {
    await q?.close();
    q = undefined;
    await db.close();
    await removeHome(home);
  });

  it('a key dedups while pending and after it ran; a delayed job runs once due, in id order', async () => {
    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: db.url } } });
    const insert = 'INSERT INTO jobopts_jobs (v) VALUES (?)';
    const a = await q.spool(insert, ['A'], { key: 'a', delayMs: 800 });
    expect(await q.spool(insert, ['A again'], { key: 'a' })).toBe(a);
    await q.spool(insert, ['B']);
    expect(await q.run()).toMatchObject({ success: 1, delayed: 1 });
    await q.spool(insert, ['C']);
    await sleep(900);
    expect(await q.run()).toMatchObject({ success: 2, delayed: 0 });
    expect(await q.spool(insert, ['A once more'], { key: 'a' })).toBe(a);
    expect(await q.run()).toMatchObject({ success: 0 });
    expect((await db.query('SELECT v FROM jobopts_jobs ORDER BY k')).map((r) => String(r.v))).toEqual(['B', 'A', 'C']);
  });

  describe('the ledger remembers keys', () => {
    const insert = 'INSERT INTO jobopts_jobs (v) VALUES (?)';
    const options = (extra: Partial<QueryBatchOptions> = {}): QueryBatchOptions => ({ home, configFile: false, datasources: { main: { url: db.url } }, ...extra });
    const values = async () => (await db.query('SELECT v FROM jobopts_jobs ORDER BY k')).map((r) => String(r.v));
    const keyRows = async () => (await db.query("SELECT id FROM querybatch_ledger WHERE id LIKE 'k:%' ORDER BY id")).map((r) => String(r.id));

    it('a keyed job that committed but whose outcome record was lost still holds its key: spooling it again returns the first id and runs nothing', async () => {
      q = new QueryBatch(options());
      const first = await q.spool(insert, ['A'], { key: 'order-1' });
      expect(await q.run()).toMatchObject({ success: 1 });
      await q.close();
      expect(await keyRows()).toEqual([`k:${first}`]);
      await loseOutcome(home, 'order-1');
      q = new QueryBatch(options());
      expect(await q.status(first)).toMatchObject({ state: 'unknown' });
      expect(await q.spool(insert, ['A again'], { key: 'order-1' })).toBe(first);
      expect(await q.run()).toMatchObject({ success: 0 });
      expect(await values()).toEqual(['A']);
    });

    it('a key row older than keyRetentionMs holds no more (the key is free again), and a run prunes it', async () => {
      q = new QueryBatch(options());
      const first = await q.spool(insert, ['A'], { key: 'order-2' });
      expect(await q.run()).toMatchObject({ success: 1 });
      await q.close();
      await loseOutcome(home, 'order-2');
      // Written long ago, by the database's clock: past the default keyRetentionMs (24 h).
      await db.query('UPDATE querybatch_ledger SET done_at = ? WHERE id = ?', ['2000-01-01 00:00:00', `k:${first}`]);
      q = new QueryBatch(options());
      const second = await q.spool(insert, ['A later'], { key: 'order-2' });
      expect(second).not.toBe(first);
      expect(await q.run()).toMatchObject({ success: 1 });
      expect(await values()).toEqual(['A', 'A later']);
      expect(await keyRows()).toEqual([`k:${second}`]);
    });

    it('with the ledger, keyRetentionMs may outlive the outcome records: the ledger holds the key once they are gone', async () => {
      q = new QueryBatch(options({ retentionMs: 1000, keyRetentionMs: 60 * 60_000 }));
      const first = await q.spool(insert, ['A'], { key: 'order-3' });
      expect(await q.run()).toMatchObject({ success: 1 });
      await q.close();
      // The outcome record is past retentionMs: status(id) forgets the job.
      await sleep(1100);
      const marker = join(home, 'spool', '.keys', 'main', createHash('sha256').update('order-3', 'utf8').digest('hex'));
      const old = new Date(Date.now() - 5 * 60_000);
      await fs.promises.utimes(marker, old, old);
      q = new QueryBatch(options({ retentionMs: 1000, keyRetentionMs: 60 * 60_000 }));
      expect(await q.status(first)).toMatchObject({ state: 'unknown' });
      expect(await q.spool(insert, ['A again'], { key: 'order-3' })).toBe(first);
      expect(await values()).toEqual(['A']);
    });

    it('a keyed script\'s key row is written once it has run to its end: the key holds without its outcome record', async () => {
      q = new QueryBatch(options());
      const script = "INSERT INTO jobopts_jobs (v) VALUES ('s1');\nINSERT INTO jobopts_jobs (v) VALUES ('s2');\n";
      const first = await q.spoolScript(script, { key: 'migration-1' });
      expect(await q.run()).toMatchObject({ success: 1 });
      await q.close();
      expect(await keyRows()).toEqual([`k:${first}`]);
      await loseOutcome(home, 'migration-1');
      q = new QueryBatch(options());
      expect(await q.spoolScript(script, { key: 'migration-1' })).toBe(first);
      expect(await q.run()).toMatchObject({ success: 0 });
      expect(await values()).toEqual(['s1', 's2']);
    });

    it('several keyed jobs in one group commit each get their key row', async () => {
      q = new QueryBatch(options());
      const ids = [
        await q.spool(insert, ['g1'], { key: 'g-1' }),
        await q.spool('UPDATE jobopts_jobs SET v = ? WHERE v = ?', ['g1!', 'g1'], { key: 'g-2' }),
        await q.spool(insert, ['g3']),
        await q.spool(insert, ['g4'], { key: 'g-4' }),
      ];
      expect(await q.run()).toMatchObject({ success: 4 });
      expect(await values()).toEqual(['g1!', 'g3', 'g4']);
      expect(await keyRows()).toEqual([ids[0], ids[1], ids[3]].map((id) => `k:${id}`).sort());
    });

    it('a group refused by one bad job goes again under savepoints: the keyed jobs that commit get their key rows, the refused one none', async () => {
      q = new QueryBatch(options());
      const ids = [
        await q.spool(insert, ['s1'], { key: 's-1' }),
        await q.spool('INSERT INTO jobopts_no_such_table (v) VALUES (?)', ['s2'], { key: 's-2' }),
        await q.spool('UPDATE jobopts_jobs SET v = ? WHERE v = ?', ['s1!', 's1'], { key: 's-3' }),
        await q.spool(insert, ['s4']),
      ];
      expect(await q.run()).toMatchObject({ success: 3, sqlFailed: 1 });
      expect(await values()).toEqual(['s1!', 's4']);
      expect(await keyRows()).toEqual([ids[0], ids[2]].map((id) => `k:${id}`).sort());
    });

    it('a real `querybatch run` SIGKILLed after a keyed job committed and before its outcome record was written: the key still returns the first id', async () => {
      await fs.promises.writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: { url: db.url } } }));
      q = new QueryBatch({ home });
      const first = await q.spool(insert, ['A'], { key: 'order-kill' });
      // Runs alone after it (a time limit of its own keeps it out of the group), keeping the runner busy until the kill.
      await q.spool(dialect.sleep(20), [], { timeoutMs: 60_000 });
      await q.close();
      q = undefined;
      // The runner can't write outcome records (logs/outcomes is a plain file): the kill lands
      // with the keyed job committed and its outcome unwritten, as in the ~100 ms after a COMMIT.
      await fs.promises.mkdir(join(home, 'logs'), { recursive: true });
      await fs.promises.writeFile(join(home, 'logs', 'outcomes'), '');
      const runner = startRunner(home);
      try {
        await waitFor(async () => {
          const names = (await fs.promises.readdir(join(home, 'spool'), { recursive: true })).map(String);
          return (await values()).includes('A') && !names.some((name) => name.includes(first)) ? true : undefined;
        }, 30_000, 'job A committed and its claim removed');
      } finally {
        runner.child.kill('SIGKILL');
      }
      expect((await runner.exit).signal).toBe('SIGKILL');
      await fs.promises.rm(join(home, 'logs', 'outcomes'));
      await loseOutcome(home, 'order-kill');
      q = new QueryBatch({ home });
      expect(await q.status(first)).toMatchObject({ state: 'unknown' });
      expect(await q.spool(insert, ['A again'], { key: 'order-kill' })).toBe(first);
      expect(await values()).toEqual(['A']);
    });

    it('when the ledger can\'t be asked, spool() refuses with KEY_UNVERIFIED and spools nothing (never a duplicate on a guess)', async () => {
      q = new QueryBatch(options());
      const first = await q.spool(insert, ['A'], { key: 'order-4' });
      expect(await q.run()).toMatchObject({ success: 1 });
      await q.close();
      await loseOutcome(home, 'order-4');
      q = new QueryBatch(options({ datasources: { main: { url: unreachable(db.url) } }, maxConnectionAttempts: 1 }));
      await expect(q.spool(insert, ['A again'], { key: 'order-4' })).rejects.toMatchObject({ code: 'KEY_UNVERIFIED', message: expect.stringContaining(`job ${first}`) });
      expect(await q.status(first)).toMatchObject({ state: 'unknown' });
      const spooled = await fs.promises.readdir(join(home, 'spool', 'main'), { recursive: true });
      expect(spooled.filter((name) => String(name).endsWith('.batchsql'))).toEqual([]);
    });
  });
});
