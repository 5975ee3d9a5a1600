import type { BatchJob, Dialect, EachResult, Session } from '../db/driver.js';
import { isQueryBatchError } from '../errors.js';
import { ResultWriter } from '../ops/results.js';
import type { Job } from './job.js';
import { withTimeout } from './timeout.js';

/** What running one job did: its affected rows, or that the ledger showed it had run before (nothing ran now). */
export type Executed = { readonly doneBefore: false; readonly affectedRows: number } | { readonly doneBefore: true };

/** The driver's error behind a STATEMENT_TIMEOUT, else the error itself: what the dialect classifies. */
export function causeOf(error: unknown): unknown {
  return isQueryBatchError(error, 'STATEMENT_TIMEOUT') ? error.cause : error;
}

/** Whether a statement's error (behind a time limit's stop, the driver's) means the connection is gone. */
export function lostConnection(dialect: Dialect, error: unknown): boolean {
  return dialect.classifyError(causeOf(error), 'execute') === 'connection';
}

/**
 * Runs one job's statement on `session` under its time limit (null: none), stopped on the
 * server when the limit passes: a captured SELECT streams its rows into result pages
 * (outside the ledger: reading twice after a crash does no harm, the pages are rewritten),
 * a job the ledger runs once goes in its own ledger transaction (with its key row when it
 * was spooled with a key: db/driver.ts keyLedgerId), anything else runs alone.
 */
export async function executeJob(session: Session, job: Job, limitMs: number | null, resultsDir: string): Promise<Executed> {
  const { record, params } = job;
  const cancel = () => session.cancel();
  if (record.captureResult) {
    return { doneBefore: false, affectedRows: await withTimeout(limitMs, () => capture(session, job, resultsDir), cancel) };
  }
  if (job.once) {
    const result = await withTimeout(limitMs, () => session.executeOnce(record.id, record.sql, params, record.key !== undefined), cancel);
    return result.status === 'done-before' ? { doneBefore: true } : { doneBefore: false, affectedRows: result.affectedRows };
  }
  const { affectedRows } = await withTimeout(limitMs, () => session.execute(record.sql, params), cancel);
  return { doneBefore: false, affectedRows };
}

/**
 * Group commit: the jobs in one ledger transaction and one round trip, under one time limit
 * for the whole group; with `coalesce`, consecutive single-row INSERTs as one multi-row
 * INSERT (a CoalescedBatchError when that failed: the group may go again unmerged).
 * Resolves with each job's affected rows, or null when the driver can't run them together
 * (then they run one by one).
 */
export function executeGroup(session: Session, jobs: readonly Job[], limitMs: number | null, coalesce = false): Promise<readonly number[] | null> {
  return withTimeout(
    limitMs,
    () => session.executeBatch(batchJobs(jobs), { coalesce }),
    () => session.cancel(),
  );
}

/**
 * A refused group again, its jobs under savepoints in one ledger transaction
 * (Session.executeEach), under one time limit for the whole group: once it stops a
 * statement, nothing goes on (all rolled back, a STATEMENT_TIMEOUT). Resolves with each
 * job's result, or null when they must run one by one.
 */
export function executeUnderSavepoints(session: Session, jobs: readonly Job[], limitMs: number | null): Promise<readonly EachResult[] | null> {
  let stopped = false;
  return withTimeout(
    limitMs,
    () => session.executeEach(batchJobs(jobs), { cancelled: () => stopped }),
    () => {
      stopped = true;
      return session.cancel();
    },
  );
}

function batchJobs(jobs: readonly Job[]): BatchJob[] {
  return jobs.map((j) => ({ id: j.record.id, sql: j.record.sql, params: j.params, keyed: j.record.key !== undefined }));
}

/** Streams a captured statement's rows into result pages; resolves with its affected rows (0 for a SELECT). */
async function capture(session: Session, job: Job, resultsDir: string): Promise<number> {
  const { record, params } = job;
  const writer = new ResultWriter(resultsDir, record.id, record.datasource);
  try {
    const { affectedRows } = await session.stream(record.sql, params, (columns) => (writer.columns = columns), (row) => writer.add(row as never[]));
    await writer.finish();
    return affectedRows;
  } catch (error) {
    await writer.abort();
    throw error;
  }
}
