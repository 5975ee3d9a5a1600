import { describe, expect, it } from 'vitest';
import { QueryBatchError } from '../../src/errors.js';
import { formatSummary } from '../../src/cli/format.js';
import type { RunSummary } from '../../src/interfaces.js';
import { formatErrorLine, parseErrorLine } from '../../src/ops/log-format.js';
import { parseLogLine } from '../../src/ops/log-reader.js';
import type { Job } from '../../src/run/job.js';
import { MAX_BACKOFF_MS, backoffDelay, isRetryable, pause, retryEntry } from '../../src/run/retry.js';
import { deadlockError, fakeDialect, sqlError } from './fake-driver.js';

function job(sql: string): Job {
  const record = { format: 'querybatch/1', id: '01JTESTTESTTESTTESTTESTTES', datasource: 'main', sql, params: [7, 'x'], createdAt: '2026-11-29T00:00:00.000Z', attempts: 0 } as unknown as Job['record'];
  return { record, params: [7, 'x'], path: '/home/spool/.active/r/main/01JTESTTESTTESTTESTTESTTES.batchsql', src: '/home/spool/main/01JTES/TT/01JTESTTESTTESTTESTTESTTES.batchsql', claimedAt: '2026-11-29T00:00:01.000Z', once: true, changesSession: false };
}

describe('backoffDelay: full jitter, exponential, bounded', () => {
  it('lies in [0, backoffMs * 2^(tries-1)) for each try', () => {
    for (const [tries, ceiling] of [[1, 100], [2, 200], [3, 400], [4, 800]] as const) {
      expect(backoffDelay(tries, 100, () => 0)).toBe(0);
      expect(backoffDelay(tries, 100, () => 0.5)).toBe(ceiling / 2);
      expect(backoffDelay(tries, 100, () => 0.999_999)).toBe(ceiling - 1);
    }
  });

  it('is capped at MAX_BACKOFF_MS however many tries, or at backoffMs when that is larger', () => {
    const top = () => 0.999_999;
    expect(backoffDelay(30, 100, top)).toBeLessThan(MAX_BACKOFF_MS);
    expect(backoffDelay(1000, 100, top)).toBeLessThan(MAX_BACKOFF_MS);
    expect(backoffDelay(1000, 100, top)).toBeGreaterThan(MAX_BACKOFF_MS - 2);
    expect(backoffDelay(5, 60_000, top)).toBe(59_999);
    expect(backoffDelay(3, 0, top)).toBe(0);
  });

  it('is jittered: random waits, all within the bound', () => {
    const waits = Array.from({ length: 200 }, () => backoffDelay(3, 100));
    expect(waits.every((w) => Number.isInteger(w) && w >= 0 && w < 400)).toBe(true);
    expect(new Set(waits).size).toBeGreaterThan(50);
  });
});

describe('pause', () => {
  it('waits the time and resolves true', async () => {
    const t = Date.now();
    expect(await pause(30)).toBe(true);
    expect(Date.now() - t).toBeGreaterThanOrEqual(25);
  });

  it('resolves false at once for a signal aborted before, and as soon as it aborts during the wait', async () => {
    expect(await pause(60_000, AbortSignal.abort())).toBe(false);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const t = Date.now();
    expect(await pause(60_000, controller.signal)).toBe(false);
    expect(Date.now() - t).toBeLessThan(1000);
  });
});

describe('isRetryable', () => {
  it('retries a transient error of one transactional statement', () => {
    expect(isRetryable(fakeDialect, job('UPDATE t SET n = n + 1 WHERE id = ?'), deadlockError())).toBe(true);
  });

  it('does not retry an SQL error, a statement stopped for its time limit, or a job that is not one transactional statement', () => {
    expect(isRetryable(fakeDialect, job('UPDATE t SET n = 1'), sqlError(1))).toBe(false);
    const timeout = new QueryBatchError('STATEMENT_TIMEOUT', 'stopped', { cause: deadlockError() });
    expect(isRetryable(fakeDialect, job('UPDATE t SET n = 1'), timeout)).toBe(false);
    expect(isRetryable(fakeDialect, job('INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)'), deadlockError())).toBe(false);
    expect(isRetryable(fakeDialect, job('CREATE TABLE t (n INT)'), deadlockError())).toBe(false);
  });
});

describe('the retry log line', () => {
  it('is an error-log line of class retry that parseErrorLine reads back', () => {
    const entry = retryEntry({ home: '/home', logParams: false }, job('UPDATE t SET n = ? WHERE v = ?'), '/home/spool/.active/r/main/01JTESTTESTTESTTESTTESTTES.batchsql', deadlockError(), { tries: 2, maxAttempts: 5, waitMs: 137 });
    const line = formatErrorLine(new Date('2026-11-29T12:00:00.000Z'), entry);
    expect(line).toBe('2026-11-29T12:00:00.000Z retry id=01JTESTTESTTESTTESTTESTTES file="spool/main/01JTES/TT/01JTESTTESTTESTTESTTESTTES.batchsql" datasource=main code=ER_LOCK_DEADLOCK errno=1213 attempts=2 moved="spool/.active/r/main/01JTESTTESTTESTTESTTESTTES.batchsql" message="Deadlock found when trying to get lock; try restarting transaction (fake) (try 2 of 5 failed; it runs again in 137 ms)" sql="UPDATE t SET n = ? WHERE v = ?" params="2[number,string]"');
    expect(parseErrorLine(line)).toMatchObject({ time: '2026-11-29T12:00:00.000Z', class: 'retry', code: 'ER_LOCK_DEADLOCK', errno: '1213', attempts: '2' });
    // `querybatch logs` and qb.logs() read it as an error-log record.
    expect(parseLogLine(line)).toMatchObject({ log: 'error', class: 'retry', errno: 1213, attempts: 2, moved: 'spool/.active/r/main/01JTESTTESTTESTTESTTESTTES.batchsql' });
  });
});

describe('the CLI summary', () => {
  const summary = (retried: number): RunSummary => ({
    runner: 'r', startedAt: '', finishedAt: '', success: 1, sqlFailed: 0, connectionFailed: 0, invalid: 0, deferred: 0, adopted: 0, recovered: 0,
    settled: 0, uncertain: 0, tmpRemoved: 0, retried, totalMs: 1, avgMs: 1, wallMs: 1, datasources: {},
  });

  it('says how many times statements ran again, only when some did', () => {
    expect(formatSummary(summary(3))).toContain('\n  3 time(s) a statement ran again after a deadlock or lock wait timeout (retry lines in logs/querybatch-error.log)');
    expect(formatSummary(summary(0))).not.toContain('ran again');
  });
});
