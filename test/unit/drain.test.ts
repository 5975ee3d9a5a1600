import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runnerName } from '../../src/run/recovery.js';
import { decodeJobText } from '../../src/spool/record.js';
import { spoolPathFor } from '../../src/spool/shards.js';
import { parseErrorLine } from '../../src/ops/log-format.js';
import { fakeDialect } from './fake-driver.js';
import { faultOnce, harness, homes, range } from './drain-harness.js';

/**
 * The drain's decisions, against a fake driver (drain-harness.ts): no database is reachable
 * or needed.
 */

afterEach(async () => {
  for (const home of homes.splice(0)) await rm(home, { recursive: true, force: true });
});

describe('drain: group commit', () => {
  it('runs consecutive jobs in groups of ledger.batch, in FIFO order', async () => {
    const h = await harness({ batch: 4 });
    await h.spool(...range(1, 10));
    const summary = await h.run();
    expect(h.db.groups).toEqual([4, 4, 2]);
    expect(h.db.committed).toEqual(range(1, 10));
    expect(summary.success).toBe(10);
    expect(await h.pending()).toEqual([]);
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('asks the driver to merge a group\'s INSERTs (coalescing); when the merge fails, the group goes again unmerged, in one transaction', async () => {
    const h = await harness({ batch: 4 });
    h.db.refuseMerged = true;
    await h.spool(...range(1, 10));
    const summary = await h.run();
    expect(h.db.groups).toEqual([4, 4, 4, 4, 2, 2]);
    expect(h.db.coalesceAsked).toEqual([true, false, true, false, true, false]);
    expect(h.db.committed).toEqual(range(1, 10));
    expect(summary).toMatchObject({ success: 10, sqlFailed: 0 });
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('on an SQL error rolls the group back and runs it again one by one: only the refused job fails', async () => {
    const h = await harness({ batch: 4 });
    h.db.fault = (n) => (n === 3 ? 'sql' : null);
    await h.spool(...range(1, 5));
    const summary = await h.run();
    expect(h.db.committed).toEqual([1, 2, 4, 5]);
    expect(summary).toMatchObject({ success: 4, sqlFailed: 1, connectionFailed: 0 });
    const failed = await h.failed();
    expect(failed).toEqual([`failed-${h.ids.get(3)}.batchsql`]);
    const record = await h.failedRecord(failed[0]!);
    expect(record.attempts).toBe(1);
    expect(record.lastError).toMatchObject({ class: 'sql', code: 'ER_FAKE_REFUSED', errno: 1146 });
    expect(h.outcomes.find((o) => o.id === h.ids.get(3))).toMatchObject({ status: 'failed', class: 'sql', file: failed[0] });
    expect(await h.errorLog()).toMatch(/ sql id=\S+ .*code=ER_FAKE_REFUSED errno=1146 attempts=1 moved="failed\/failed-/);
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('on a connection lost mid-group gives the first job one more attempt, the rest back untouched, and stops', async () => {
    const h = await harness({ batch: 4, maxConnectionAttempts: 3 });
    h.db.fault = faultOnce(3, 'lost');
    await h.spool(...range(1, 6));
    const summary = await h.run();
    expect(h.db.committed).toEqual([]);
    expect(summary.connectionFailed).toBe(1);
    expect(summary.datasources.main).toMatchObject({ deferred: 6, connectionError: 'FAKE_LOST: Connection lost (fake)' });
    expect((await h.pending()).map((p) => [p.n, p.attempts])).toEqual([[1, 1], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0]]);
    expect(await h.claimsLeft()).toEqual([]);

    // The next run: job 1 alone (it has a failed attempt), then the rest in groups; nothing twice.
    await h.run();
    expect(h.db.committed).toEqual(range(1, 6));
  });

  it('counts a group lost during COMMIT as committed when the ledger has it, and never runs it again', async () => {
    const h = await harness({ batch: 4 });
    h.db.fault = faultOnce(2, 'lost-after-commit');
    await h.spool(...range(1, 4));
    const summary = await h.run();
    expect(summary.success).toBe(4);
    expect(summary.datasources.main?.connectionError).toBe('FAKE_LOST: Connection lost (fake)');
    expect(h.outcomes.filter((o) => o.status === 'succeeded')).toHaveLength(4);
    expect(await h.pending()).toEqual([]);
    await h.run();
    expect(h.db.committed).toEqual([1, 2, 3, 4]);
  });
});

describe('drain: session resets', () => {
  it('resets the session after a job that may change it, and never groups such a job', async () => {
    const h = await harness({ batch: 4 });
    await h.spool(1, 2);
    await h.spool(3);
    await h.spoolSql('SET @x = ?', 10);
    await h.spool(4, 5);
    const summary = await h.run();
    expect(summary.success).toBe(6);
    expect(h.db.committed).toEqual([1, 2, 3, 10, 4, 5]);
    expect(h.db.groups).toEqual([3, 2]); // 1-3 together; the SET alone; 4-5 together
    expect(h.db.resets).toEqual([10]);
  });
});

describe('drain: segments', () => {
  it('writes concurrent jobs as one segment file, and a refused job of it goes to failed/ alone', async () => {
    const h = await harness({ batch: 4 });
    h.db.fault = (n) => (n === 3 ? 'sql' : null);
    await h.spoolTogether(...range(1, 6));
    expect(new Set((await h.pending()).map((p) => p.file)).size).toBeLessThan(6); // segments were written
    // When job 3 reaches failed/, the segment's claim already holds only its open jobs: a crash now would not run 3 again.
    let claimedWhenFailed: unknown[] = [];
    h.onOutcome((o) => {
      if (o.status !== 'failed') return;
      const dir = join(h.layout.activeDir, runnerName(), 'main');
      claimedWhenFailed = readdirSync(dir).flatMap((name) => decodeJobText(readFileSync(join(dir, name), 'utf8')).map((r) => (r.params as unknown[])[0]));
    });
    const summary = await h.run();
    expect(claimedWhenFailed).not.toContain(3);
    // (Refused jobs settle when their burst ends, 1-4 here: 4 ran by then; 5 and 6 are still open.)
    expect(claimedWhenFailed).toEqual(expect.arrayContaining([5, 6]));
    expect(h.db.committed).toEqual([1, 2, 4, 5, 6]);
    expect(summary).toMatchObject({ success: 5, sqlFailed: 1 });
    expect(await h.failed()).toEqual([`failed-${h.ids.get(3)}.batchsql`]);
    expect(await h.pending()).toEqual([]);
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('on a connection lost mid-segment keeps the finished jobs done and gives the rest back as one file, the failing job with its attempt', async () => {
    const h = await harness({ batch: 1 });
    h.db.fault = faultOnce(4, 'lost');
    await h.spool(1);
    await h.spoolTogether(...range(2, 7));
    const summary = await h.run();
    expect(h.db.committed).toEqual([1, 2, 3]);
    expect(summary).toMatchObject({ success: 3, connectionFailed: 1 });
    const pending = await h.pending();
    expect(pending.map((p) => [p.n, p.attempts])).toEqual([[4, 1], [5, 0], [6, 0], [7, 0]]);
    expect(pending[0]!.file).toBe(`${h.ids.get(4)}.4.batchsql`);
    expect(await h.claimsLeft()).toEqual([]);

    await h.run();
    expect(h.db.committed).toEqual(range(1, 7));
  });
});

describe('drain: limit and abort', () => {
  it('takes at most `limit` jobs; the rest stay in spool, counted as deferred', async () => {
    const h = await harness({ batch: 4 });
    await h.spool(...range(1, 10));
    const summary = await h.run({ limit: 3 });
    expect(h.db.committed).toEqual([1, 2, 3]);
    expect(summary.deferred).toBe(7);
    expect((await h.pending()).map((p) => p.n)).toEqual(range(4, 10));
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('on abort lets the statement in flight finish and leaves the rest in spool', async () => {
    const h = await harness({ batch: 1 });
    await h.spool(...range(1, 10));
    const controller = new AbortController();
    h.onOutcome(() => {
      if (h.outcomes.length === 2) controller.abort();
    });
    const summary = await h.run({ signal: controller.signal });
    expect(h.db.committed).toEqual([1, 2]);
    expect(summary).toMatchObject({ success: 2, deferred: 8 });
    expect((await h.pending()).map((p) => [p.n, p.attempts])).toEqual(range(3, 10).map((n) => [n, 0]));
    expect(await h.claimsLeft()).toEqual([]);
  });
});

describe('drain: connection failures and the lock', () => {
  it('when the database is unreachable, the first job carries the attempt; at maxConnectionAttempts it goes to failed/connection-…', async () => {
    const h = await harness({ batch: 4, maxConnectionAttempts: 2 });
    h.db.reachable = false;
    await h.spool(1, 2, 3);
    const first = await h.run();
    expect(first).toMatchObject({ connectionFailed: 1, deferred: 3 });
    expect((await h.pending()).map((p) => [p.n, p.attempts])).toEqual([[1, 1], [2, 0], [3, 0]]);
    const second = await h.run();
    expect(second.connectionFailed).toBe(1);
    expect(await h.failed()).toEqual([`connection-${h.ids.get(1)}.batchsql`]);
    expect((await h.failedRecord(`connection-${h.ids.get(1)}.batchsql`)).lastError).toMatchObject({ class: 'connection', code: 'ECONNREFUSED' });
    expect((await h.pending()).map((p) => [p.n, p.attempts])).toEqual([[2, 0], [3, 0]]);
    expect(h.outcomes).toEqual([expect.objectContaining({ id: h.ids.get(1), status: 'failed', class: 'connection' })]);
  });

  it('when another runner holds the datasource lock, touches nothing', async () => {
    const h = await harness({ batch: 4 });
    await h.spool(1, 2, 3);
    const spoolId = (await readFile(h.layout.spoolIdFile, 'utf8')).trim();
    const other = await h.db.driver().connect();
    expect(await other.tryLock(fakeDialect.lockKey(spoolId, 'main'))).toBe(true);
    const summary = await h.run();
    expect(summary.datasources.main).toMatchObject({ busy: true, deferred: 3, success: 0 });
    expect(h.db.committed).toEqual([]);
    expect((await h.pending()).map((p) => [p.n, p.attempts])).toEqual([[1, 0], [2, 0], [3, 0]]);
  });
});

describe('drain: recovery of claims', () => {
  it('gives a dead runner\'s claims back to their places first, and sends an uncertain claim to failed/uncertain-…', async () => {
    const h = await harness({ batch: 4 });
    await h.spool(1, 2, 3, 4);
    const dead = join(h.layout.activeDir, `${hostname()}.999999.1`, 'main');
    await mkdir(dead, { recursive: true });
    const path = (n: number) => spoolPathFor(h.layout.spoolDir, 'main', h.ids.get(n)!);
    await rename(path(2), join(dead, `${h.ids.get(2)}.batchsql`));
    await rename(path(4), join(dead, `${h.ids.get(4)}.uncertain`));
    const summary = await h.run();
    expect(summary).toMatchObject({ recovered: 1, uncertain: 1, success: 3 });
    expect(h.db.committed).toEqual([1, 2, 3]);
    expect(await h.failed()).toEqual([`uncertain-${h.ids.get(4)}.batchsql`]);
    expect(await h.errorLog()).toContain(` uncertain id=${h.ids.get(4)} `);
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('settles a claimed job the ledger already holds without running it again', async () => {
    const h = await harness({ batch: 1 });
    await h.spool(1, 2);
    h.db.ledger.add(h.ids.get(1)!); // it committed before a crash took its runner
    const summary = await h.run();
    expect(summary).toMatchObject({ settled: 1, success: 1 });
    expect(h.db.committed).toEqual([2]);
  });
});

describe('drain: transient errors (deadlocks) are retried', () => {
  const retryLines = (log: string) => log.split('\n').map(parseErrorLine).filter((e) => e?.class === 'retry');

  it('runs a job that deadlocks twice again on the same session, commits it once, and counts retried 2', async () => {
    const h = await harness({ batch: 1, retry: { maxAttempts: 5, backoffMs: 1 } });
    h.db.fault = faultOnce(2, 'transient', 2);
    await h.spool(1, 2, 3);
    const summary = await h.run();
    expect(h.db.committed).toEqual([1, 2, 3]);
    expect(h.db.transients).toBe(2);
    expect(h.db.connects).toBe(1);
    expect(summary).toMatchObject({ success: 3, sqlFailed: 0, retried: 2 });
    expect(summary.datasources.main?.retried).toBe(2);
    expect(await h.failed()).toEqual([]);
    expect(await h.pending()).toEqual([]);
    expect(await h.claimsLeft()).toEqual([]);
    const lines = retryLines(await h.errorLog());
    expect(lines.map((e) => [e?.id, e?.code, e?.errno, e?.attempts])).toEqual([[h.ids.get(2), 'ER_LOCK_DEADLOCK', '1213', '1'], [h.ids.get(2), 'ER_LOCK_DEADLOCK', '1213', '2']]);
    expect(lines[0]?.message).toMatch(/try 1 of 5 failed; it runs again in \d+ ms\)$/);
    expect(h.outcomes.filter((o) => o.status === 'failed')).toEqual([]);
  });

  it('runs a group that deadlocked one by one, and the deadlocked job again', async () => {
    const h = await harness({ batch: 4, retry: { backoffMs: 1 } });
    h.db.fault = faultOnce(3, 'transient', 2); // once in the group, once alone
    await h.spool(...range(1, 5));
    const summary = await h.run();
    expect(h.db.committed).toEqual(range(1, 5));
    expect(summary).toMatchObject({ success: 5, sqlFailed: 0, retried: 1 });
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('after maxAttempts deadlocks sends the job to failed/ as an SQL error with attempts 1, and runs the next', async () => {
    const h = await harness({ batch: 1, retry: { maxAttempts: 3, backoffMs: 1 } });
    h.db.fault = (n) => (n === 2 ? 'transient' : null);
    await h.spool(1, 2, 3);
    const summary = await h.run();
    expect(h.db.committed).toEqual([1, 3]);
    expect(h.db.transients).toBe(3);
    expect(summary).toMatchObject({ success: 2, sqlFailed: 1, retried: 2 });
    const name = `failed-${h.ids.get(2)}.batchsql`;
    expect(await h.failed()).toEqual([name]);
    const record = await h.failedRecord(name);
    expect(record.attempts).toBe(1);
    expect(record.lastError).toMatchObject({ class: 'sql', code: 'ER_LOCK_DEADLOCK', errno: 1213 });
    const log = await h.errorLog();
    expect(retryLines(log)).toHaveLength(2);
    expect(log).toMatch(/ sql id=\S+ .*code=ER_LOCK_DEADLOCK errno=1213 attempts=1 moved="failed\/failed-/);
  });

  it('retries a job of a segment file, and the segment\'s other jobs run once each', async () => {
    const h = await harness({ batch: 1, retry: { backoffMs: 1 } });
    h.db.fault = faultOnce(3, 'transient', 1);
    await h.spoolTogether(...range(1, 5));
    expect(new Set((await h.pending()).map((p) => p.file)).size).toBeLessThan(5); // segments were written
    expect(await h.run()).toMatchObject({ success: 5, retried: 1 });
    expect(h.db.committed).toEqual(range(1, 5));
    expect(await h.pending()).toEqual([]);
    expect(await h.claimsLeft()).toEqual([]);
  });

  it('with retry: false fails a deadlocked job at once', async () => {
    const h = await harness({ batch: 1, retry: false });
    h.db.fault = (n) => (n === 1 ? 'transient' : null);
    await h.spool(1, 2);
    const summary = await h.run();
    expect(h.db.transients).toBe(1);
    expect(summary).toMatchObject({ success: 1, sqlFailed: 1, retried: 0 });
    expect(retryLines(await h.errorLog())).toEqual([]);
  });

  it('retries outside the ledger too (ledger off: the statement ran alone in autocommit and was rolled back)', async () => {
    const h = await harness({ batch: false, retry: { backoffMs: 1 } });
    h.db.fault = faultOnce(1, 'transient', 1);
    await h.spool(1, 2);
    expect(await h.run()).toMatchObject({ success: 2, retried: 1 });
    expect(h.db.committed).toEqual([1, 2]);
  });

  it('on abort during the backoff stops the wait and gives the job back to the spool untouched', async () => {
    // A backoff of up to 1000 s: the run only ends this quickly if the abort stops the wait.
    const h = await harness({ batch: 1, retry: { backoffMs: 1_000_000 } });
    const controller = new AbortController();
    h.db.fault = (n) => {
      if (n !== 2) return null;
      setTimeout(() => controller.abort(), 20);
      return 'transient';
    };
    await h.spool(1, 2, 3);
    const started = Date.now();
    const summary = await h.run({ signal: controller.signal });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(h.db.committed).toEqual([1]);
    expect(summary).toMatchObject({ success: 1, sqlFailed: 0, retried: 0, deferred: 2 });
    expect((await h.pending()).map((p) => [p.n, p.attempts])).toEqual([[2, 0], [3, 0]]);
    expect(await h.failed()).toEqual([]);
    expect(await h.claimsLeft()).toEqual([]);
  });
});
