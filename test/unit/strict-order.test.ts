import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatSummary } from '../../src/cli/format.js';
import { spoolPathFor } from '../../src/spool/shards.js';
import { faultOnce, harness, homes, range } from './drain-harness.js';

/** datasources.<name>.strictOrder: a refused job blocks its datasource while its file is in failed/. */

afterEach(async () => {
  for (const home of homes.splice(0)) await rm(home, { recursive: true, force: true });
});

describe('drain: strictOrder', () => {
  it('a refused job stops the drain: the rest stay pending, `blocked` names its file; the next run drains nothing; once the file is removed the rest runs in order', async () => {
    const h = await harness({ batch: 1, strictOrder: true });
    h.db.fault = (n) => (n === 2 ? 'sql' : null);
    await h.spool(...range(1, 5));
    const blocked = `failed-${h.ids.get(2)}.batchsql`;

    const first = await h.run();
    expect(h.db.committed).toEqual([1]);
    expect(await h.failed()).toEqual([blocked]);
    expect(first).toMatchObject({ success: 1, sqlFailed: 1, deferred: 3 });
    expect(first.datasources.main).toMatchObject({ blocked, deferred: 3 });
    expect((await h.pending()).map((p) => [p.n, p.attempts])).toEqual([[3, 0], [4, 0], [5, 0]]);
    expect(await h.claimsLeft()).toEqual([]);
    expect(formatSummary(first)).toContain(`main: 1 ok, 1 failed (see failed/ and logs/querybatch-error.log), blocked by failed/${blocked} (strictOrder): respool or delete it to go on, 3 left in spool`);

    // Blocked before connecting: an unreachable database is not even tried.
    h.db.reachable = false;
    const connects = h.db.connects;
    const second = await h.run();
    expect(h.db.connects).toBe(connects);
    expect(second).toMatchObject({ success: 0, sqlFailed: 0, connectionFailed: 0, deferred: 3 });
    expect(second.datasources.main?.blocked).toBe(blocked);
    expect((await h.pending()).map((p) => [p.n, p.attempts])).toEqual([[3, 0], [4, 0], [5, 0]]);

    h.db.reachable = true;
    await rm(join(h.layout.failedDir, blocked));
    const third = await h.run();
    expect(third.datasources.main?.blocked).toBeUndefined();
    expect(h.db.committed).toEqual([1, 3, 4, 5]);
    expect(await h.pending()).toEqual([]);
  });

  it('a group with a refused job in the middle: the jobs before it commit, the jobs after it stay pending', async () => {
    const h = await harness({ batch: 4, strictOrder: true });
    h.db.fault = (n) => (n === 3 ? 'sql' : null);
    await h.spool(...range(1, 8));
    const summary = await h.run();
    expect(h.db.committed).toEqual([1, 2]);
    expect(summary.datasources.main).toMatchObject({ success: 2, sqlFailed: 1, deferred: 5, blocked: `failed-${h.ids.get(3)}.batchsql` });
    expect((await h.pending()).map((p) => [p.n, p.attempts])).toEqual(range(4, 8).map((n) => [n, 0]));
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('a refused job of a segment file stops the drain; the segment\'s later jobs go back to the spool', async () => {
    const h = await harness({ batch: 4, strictOrder: true });
    h.db.fault = (n) => (n === 2 ? 'sql' : null);
    await h.spoolTogether(1, 2, 3, 4);
    await h.spool(5);
    const summary = await h.run();
    expect(h.db.committed).toEqual([1]);
    expect(summary.datasources.main?.blocked).toBe(`failed-${h.ids.get(2)}.batchsql`);
    expect((await h.pending()).map((p) => p.n)).toEqual([3, 4, 5]);
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('a connection failure does not block: neither a job moved to failed/connection-… nor one kept in the spool', async () => {
    const h = await harness({ batch: 4, strictOrder: true, maxConnectionAttempts: 1 });
    h.db.reachable = false;
    await h.spool(1, 2, 3);
    const first = await h.run();
    expect(first.datasources.main?.blocked).toBeUndefined();
    expect(await h.failed()).toEqual([`connection-${h.ids.get(1)}.batchsql`]);
    h.db.reachable = true;
    const second = await h.run();
    expect(second.datasources.main?.blocked).toBeUndefined();
    expect(h.db.committed).toEqual([2, 3]);

    const k = await harness({ batch: 4, strictOrder: true, maxConnectionAttempts: 3 });
    k.db.fault = faultOnce(2, 'lost');
    await k.spool(1, 2, 3);
    const lost = await k.run();
    expect(lost.connectionFailed).toBe(1);
    expect(lost.datasources.main?.blocked).toBeUndefined();
    const again = await k.run();
    expect(again.datasources.main?.blocked).toBeUndefined();
    expect(k.db.committed).toEqual([1, 2, 3]);
  });

  it('a statement outside the ledger cut short by a lost connection (uncertain-…) blocks', async () => {
    const h = await harness({ batch: 4, strictOrder: true });
    h.db.fault = faultOnce(2, 'lost');
    await h.spool(1);
    await h.spoolSql('CREATE TABLE t2 (n INT) COMMENT ?', 2);
    await h.spool(3);
    const first = await h.run();
    const blocked = `uncertain-${h.ids.get(2)}.batchsql`;
    expect(await h.failed()).toEqual([blocked]);
    expect(first.datasources.main?.blocked).toBe(blocked);
    const second = await h.run();
    expect(second.datasources.main?.blocked).toBe(blocked);
    expect(h.db.committed).toEqual([1]);
    expect((await h.pending()).map((p) => p.n)).toEqual([3]);
  });

  it('a file that is not a valid job goes to failed/ and blocks nothing', async () => {
    const h = await harness({ batch: 1, strictOrder: true });
    await h.spool(1, 2, 3);
    await writeFile(spoolPathFor(h.layout.spoolDir, 'main', h.ids.get(2)!), 'not a job\n');
    const summary = await h.run();
    expect(summary).toMatchObject({ success: 2, invalid: 1 });
    expect(summary.datasources.main?.blocked).toBeUndefined();
    expect(h.db.committed).toEqual([1, 3]);
    expect((await h.failed()).filter((name) => !name.startsWith('.'))).toEqual([`failed-${h.ids.get(2)}.batchsql`]);
    expect((await h.run()).datasources.main?.blocked).toBeUndefined();
  });

  it('without strictOrder a refused job does not stop the drain', async () => {
    const h = await harness({ batch: 1 });
    h.db.fault = (n) => (n === 2 ? 'sql' : null);
    await h.spool(1, 2, 3);
    const summary = await h.run();
    expect(summary.datasources.main?.blocked).toBeUndefined();
    expect(h.db.committed).toEqual([1, 3]);
  });
});
