/**
 * Why a job failed: the one list of failure classes, and the Failure value that the spool
 * record's lastError, the error-log entry and the job's outcome are all derived from. Pure.
 *
 * - connection: the database could not be reached, or the connection was lost (the job is
 *   tried again, up to maxConnectionAttempts, then goes to failed/connection-…);
 * - sql: the database refused the statement (failed/failed-…);
 * - timeout: the statement was stopped on the server for its time limit (failed/failed-…);
 * - invalid: the file is not a job that can run (failed/failed-…);
 * - uncertain: a statement that commits implicitly was cut short: it may or may not have
 *   run, and a person decides (failed/uncertain-…).
 */
export const FAILURE_CLASSES = ['connection', 'sql', 'timeout', 'invalid', 'uncertain'] as const;

export type FailureClass = (typeof FAILURE_CLASSES)[number];

/** The classes a spool record's lastError can carry: an uncertain job's file is moved as it was, never rewritten. */
export type RecordedFailureClass = Exclude<FailureClass, 'uncertain'>;

export const RECORDED_FAILURE_CLASSES: ReadonlySet<string> = new Set(FAILURE_CLASSES.filter((c) => c !== 'uncertain'));

/** A failure, as it is recorded and reported. */
export interface Failure {
  readonly class: FailureClass;
  readonly code: string;
  readonly message: string;
  /** The database's error number, when it gave one. */
  readonly errno?: number;
  readonly sqlState?: string;
  /** When it happened (ISO time). */
  readonly at: string;
  /** A script's: the statement that failed (its number, the line it starts on, its first characters). */
  readonly statement?: FailedStatement;
}

/** Where in a script a failure happened. */
export interface FailedStatement {
  /** 1-based position among the script's statements. */
  readonly index: number;
  /** 1-based line of the script where it starts. */
  readonly line: number;
  /** Its first characters (at most STATEMENT_TEXT_CHARS); the error log has more. */
  readonly text: string;
}

/** How much of a failed statement's text a record's lastError keeps. */
export const STATEMENT_TEXT_CHARS = 200;

/** The failed/ file name prefix each class sends a job to (a connection failure with attempts left stays in spool/). */
export const FAILED_PREFIX_OF: Readonly<Record<FailureClass, 'failed-' | 'connection-' | 'uncertain-'>> = {
  connection: 'connection-',
  sql: 'failed-',
  timeout: 'failed-',
  invalid: 'failed-',
  uncertain: 'uncertain-',
};
