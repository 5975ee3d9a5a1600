import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueryBatch } from '../src/index.js';
import { DIALECTS, type FixtureDatabase } from './dialects.js';
import { removeHome, tempHome } from './helpers.js';
import { sleep } from './daemon-helpers.js';

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
});
