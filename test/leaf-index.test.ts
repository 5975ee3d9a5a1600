import { afterEach, describe, expect, it } from 'vitest';
import { cp, readdir, readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { removeHome, tempHome, useTestDatabase } from './helpers.js';

/** The leaf index (src/spool/leaf-index.ts) through whole runs: it must never hide a drop-in or miscount. */
const t = useTestDatabase('leafindex', 'CREATE TABLE li (n INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)');
let home: string;
const open: QueryBatch[] = [];

function qb(): QueryBatch {
  const q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: t.url } });
  open.push(q);
  return q;
}

/** Every leaf directory of spool/main, made to look untouched for a minute. */
async function settleLeaves(): Promise<string[]> {
  const leaves: string[] = [];
  const dsDir = join(home, 'spool', 'main');
  for (const bucket of await readdir(dsDir)) {
    for (const leaf of await readdir(join(dsDir, bucket))) leaves.push(join(dsDir, bucket, leaf));
  }
  const past = new Date(Date.now() - 60_000);
  for (const leaf of leaves) await utimes(leaf, past, past);
  return leaves;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.close()));
  await removeHome(home);
});

describe('the leaf index across runs', () => {
  it('records settled leaves, still adopts a failed file copied into one, and counts what is deferred', async () => {
    home = await tempHome();
    const q = qb();
    await Promise.all(Array.from({ length: 200 }, (_, v) => q.spool('INSERT INTO li (v) VALUES (?)', [v])));
    await q.spool('INSERT INTO li (v) VALUES (?)', ['not a number']); // fails: a failed file to copy back
    const leaves = await settleLeaves();

    // A stopped run walks (adoption, deferred count) and records the settled leaves.
    const stopped = new AbortController();
    stopped.abort();
    expect(await q.run({ signal: stopped.signal })).toMatchObject({ success: 0, deferred: 201 });
    const index = JSON.parse(await readFile(join(home, 'spool', '.index', 'main.json'), 'utf8')) as { leaves: Record<string, unknown> };
    expect(Object.keys(index.leaves).length).toBeGreaterThan(0);
    // The recorded counts are the truth: a second stopped run, served from the index, agrees.
    expect(await q.run({ signal: stopped.signal })).toMatchObject({ deferred: 201 });

    // Run 10: counts what is left through the index.
    expect(await q.run({ limit: 10 })).toMatchObject({ success: 10, deferred: 191 });

    const summary = await q.run();
    expect(summary).toMatchObject({ success: 190, sqlFailed: 1 });
    const failed = (await readdir(join(home, 'failed'))).filter((f) => f.startsWith('failed-'));
    expect(failed).toHaveLength(1);

    // Fill again, record, then copy the failed file into a recorded leaf: it is adopted.
    await Promise.all(Array.from({ length: 300 }, (_, v) => q.spool('INSERT INTO li (v) VALUES (?)', [v])));
    await settleLeaves();
    expect(await q.run({ signal: stopped.signal })).toMatchObject({ deferred: 300 });
    const again = JSON.parse(await readFile(join(home, 'spool', '.index', 'main.json'), 'utf8')) as { leaves: Record<string, unknown> };
    const recorded = Object.keys(again.leaves)[0];
    expect(recorded).toBeDefined();
    await cp(join(home, 'failed', failed[0]!), join(home, 'spool', 'main', recorded!, failed[0]!));
    expect(leaves.length).toBeGreaterThan(0);
    expect(await q.run({ signal: stopped.signal })).toMatchObject({ adopted: 1, deferred: 301 });
    expect(await q.run()).toMatchObject({ success: 300, sqlFailed: 1 });
  });
});
