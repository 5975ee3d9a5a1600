import { basename } from 'node:path';
import { errorInfo } from '../db/error-info.js';
import { codeAndMessage, isQueryBatchError } from '../errors.js';
import { loggedSql, type FailureEntry } from '../ops/log-format.js';
import type { Outcome } from '../ops/outcomes.js';
import type { Failure, FailureClass } from '../spool/failure.js';
import { describeParams, type LastError, type SpoolRecord } from '../spool/record.js';

/**
 * A failure read from what was thrown, and what is derived from it: the spool record's
 * lastError, the job's outcome and the error-log entry. Pure.
 */
export function failureOf(cls: FailureClass, error: unknown, at = new Date()): Failure {
  const info = isQueryBatchError(error) ? { code: error.code, message: error.message } : errorInfo(error);
  return {
    class: cls,
    code: info.code,
    message: info.message,
    ...('errno' in info && info.errno !== undefined && { errno: info.errno }),
    ...('sqlState' in info && info.sqlState !== undefined && { sqlState: info.sqlState }),
    at: at.toISOString(),
  };
}

/** `CODE: message`, as a run summary names the error that stopped a datasource. */
export function describeFailure(failure: Pick<Failure, 'code' | 'message'>): string {
  return codeAndMessage(failure.code, failure.message);
}

/** The record with one more attempt and the failure as its lastError (an uncertain failure is never recorded in the file). */
export function withFailure(record: SpoolRecord, failure: Failure & { readonly class: LastError['class'] }): SpoolRecord {
  return { ...record, attempts: record.attempts + 1, lastError: failure };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** A failed job's outcome; `moved` is where its file went in failed/, `claimedAt` when its runner claimed it (unknown for a file that was not a valid job). */
export function failedOutcome(id: string, datasource: string, failure: Failure, ms: number, moved: string, claimedAt?: string): Outcome {
  return {
    id,
    status: 'failed',
    datasource,
    finishedAt: failure.at,
    ...(claimedAt !== undefined && { claimedAt }),
    durationMs: round(ms),
    class: failure.class,
    code: failure.code,
    message: failure.message,
    file: basename(moved),
  };
}

/** A committed job's outcome; `claimedAt` is when its runner claimed it. */
export function succeededOutcome(id: string, datasource: string, ms: number, affectedRows: number, claimedAt: string): Outcome {
  return { id, status: 'succeeded', datasource, finishedAt: new Date().toISOString(), claimedAt, durationMs: round(ms), affectedRows };
}

/** What the error log says of a failed job (paths relative to the home). */
export interface EntryFacts {
  /** Where the job was found. */
  readonly file: string;
  /** Where its file went (failed/…, or spool/… when it stays). */
  readonly moved: string;
  /** Its attempts, counting this one (absent for a file that could not be read). */
  readonly attempts?: number;
  /** The log's message, when it says more than the failure's own. */
  readonly message?: string;
  /** The SQL to show, when it is not the record's (a script's failed statement). */
  readonly sql?: string;
  /** Param values in the log (logs.logParams), else their count and types. */
  readonly logParams: boolean;
}

/**
 * The error-log entry of a failure. A job that could be read is logged with its SQL and
 * params; a file that could not (`record` holds what its name says, if anything) with what
 * is known of it.
 */
export function logEntryOf(failure: Failure, record: SpoolRecord | Partial<SpoolRecord> | null, facts: EntryFacts): FailureEntry {
  const message = facts.message ?? failure.message;
  if (facts.attempts === undefined || !isWholeRecord(record)) {
    return {
      class: failure.class,
      id: record?.id ?? null,
      file: facts.file,
      datasource: record?.datasource ?? null,
      code: failure.code,
      moved: facts.moved,
      message,
      ...(facts.sql !== undefined ? loggedSql(facts.sql) : record?.sql !== undefined && loggedSql(record.sql)),
    };
  }
  return {
    class: failure.class,
    id: record.id,
    file: facts.file,
    datasource: record.datasource,
    code: failure.code,
    ...(failure.errno !== undefined && { errno: failure.errno }),
    attempts: facts.attempts,
    moved: facts.moved,
    message,
    ...loggedSql(facts.sql ?? record.sql),
    params: facts.logParams ? JSON.stringify(record.params) : describeParams(record.params),
  };
}

/** A whole job's record, as opposed to what is known of a file that could not be read as one. */
export function isWholeRecord(record: SpoolRecord | Partial<SpoolRecord> | null): record is SpoolRecord {
  return record !== null && record.format !== undefined && record.params !== undefined && typeof record.attempts === 'number';
}
