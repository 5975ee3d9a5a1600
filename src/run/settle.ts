import { relative } from 'node:path';
import type { Logs } from '../ops/logs.js';
import type { Outcome } from '../ops/outcomes.js';
import { FAILED_PREFIX_OF, type Failure } from '../spool/failure.js';
import type { DirSyncer } from '../spool/durable.js';
import { keepFailedReason, moveToFailed, type FailedPrefix } from '../spool/failed-dir.js';
import type { Layout } from '../spool/layout.js';
import type { SpoolRecord } from '../spool/record.js';
import type { Recovery } from './recovery.js';
import { failedOutcome, isWholeRecord, logEntryOf, withFailure } from './failure.js';

/** Where a failed job's file goes: failed/ under a prefix, or back to its place in the spool. */
export type Destination = Exclude<FailedPrefix, ''> | 'spool';

/** What settling a failure needs of the run. */
export interface SettleContext {
  readonly home: string;
  readonly logs: Logs;
  /** logs.logParams: param values in the error log. */
  readonly logParams: boolean;
  readonly maxConnectionAttempts: number;
  /** Told of a job that reached failed/. */
  readonly onOutcome?: (outcome: Outcome, record: SpoolRecord | null) => void;
}

/** A failed job's file: what is known of it, and how it moves. */
export interface FailedJob {
  /** The job, or what is known of a file that could not be read as one (the id its name carries, its datasource). */
  readonly record: SpoolRecord | Partial<SpoolRecord> | null;
  /** Where the job was found (absolute). */
  readonly foundAt: string;
  /** Where the file is now (absolute): stays its place when it can't be moved. */
  readonly path: string;
  /** Moves the file to `to`, rewritten as `updated` when given; resolves with where it went. */
  place(to: Destination, updated: SpoolRecord | null): Promise<string>;
}

/** How a settle is told and counted. */
export interface SettleOptions {
  /** Milliseconds the statement ran (0 when it never did). */
  readonly ms?: number;
  /** The log's message, when it says more than the failure's own. */
  readonly message?: string;
  /** The SQL the log shows, when it is not the record's (a script's failed statement). */
  readonly sql?: string;
  /** Counts the failure into the run's summary, once it is settled, and where it sent the job. */
  readonly count?: (failure: Failure, to: Destination) => void;
  /** When the runner claimed the job (ISO), for its outcome; unknown for a file that was not a valid job. */
  readonly claimedAt?: string;
}

/** Where a failure sends a job: a connection failure with attempts left keeps its place in the spool. */
export function destinationOf(failure: Failure, attempts: number, maxConnectionAttempts: number): Destination {
  if (failure.class === 'connection' && attempts < maxConnectionAttempts) return 'spool';
  return FAILED_PREFIX_OF[failure.class];
}

/**
 * Settles a failed job, the one way every failure goes: the record is rewritten with one
 * more attempt and the failure as its lastError (not for a file that could not be read, nor
 * an uncertain job, whose file is kept as it was), the file moves (failed/, or back to the
 * spool), the outcome is reported, the failure counted and logged. A file that could not be
 * read and can't be moved either stays where it is (nothing is lost; the next run tries
 * again) and the log says so; any other failure to move rejects. Resolves with the file's
 * path in failed/, or null when it went back to the spool or stayed where it was.
 */
export async function settleFailure(ctx: SettleContext, job: FailedJob, failure: Failure, options: SettleOptions = {}): Promise<string | null> {
  const record = isWholeRecord(job.record) ? job.record : null;
  const updated = record !== null && failure.class !== 'invalid' && failure.class !== 'uncertain' ? withFailure(record, { ...failure, class: failure.class }) : null;
  const attempts = record === null || failure.class === 'invalid' ? undefined : record.attempts + 1;
  const to = destinationOf(failure, attempts ?? 0, ctx.maxConnectionAttempts);
  let moved: string;
  let message = options.message;
  try {
    moved = await job.place(to, updated);
  } catch (error) {
    if (failure.class !== 'invalid') throw error;
    moved = job.path;
    message = `${message ?? failure.message} (could not move it to failed/: ${(error as Error).message}; left in place)`;
  }
  const inFailed = to !== 'spool' && relative(ctx.home, moved).startsWith('failed');
  if (inFailed && failure.class === 'invalid') {
    // Its record can't carry why: the reason is kept beside it, for `failed list`.
    await keepFailedReason(moved, { class: 'invalid', code: failure.code, message: message ?? failure.message, at: failure.at });
  }
  report(ctx, job, failure, to, moved, inFailed, attempts, { ...options, ...(message !== undefined && { message }) });
  return inFailed ? moved : null;
}

/** After a failed job's file moved: its outcome (when it reached failed/), its count, its error-log line. */
function report(ctx: SettleContext, job: Pick<FailedJob, 'record' | 'foundAt'>, failure: Failure, to: Destination, moved: string, inFailed: boolean, attempts: number | undefined, options: SettleOptions): void {
  const shown = (path: string) => relative(ctx.home, path);
  const record = isWholeRecord(job.record) ? job.record : null;
  const id = job.record?.id;
  if (inFailed && id) {
    // A file that was not valid reports no record (its webhook, if it names one, is not trusted).
    ctx.onOutcome?.(failedOutcome(id, job.record?.datasource ?? '', failure, options.ms ?? 0, moved, options.claimedAt), failure.class === 'invalid' ? null : record);
  }
  options.count?.(failure, to);
  ctx.logs.failure(new Date(), logEntryOf(failure, job.record, {
    file: shown(job.foundAt),
    moved: shown(moved),
    ...(attempts !== undefined && { attempts }),
    ...(options.message !== undefined && { message: options.message }),
    ...(options.sql !== undefined && { sql: options.sql }),
    logParams: ctx.logParams,
  }));
}

/** A refused job (class sql or timeout: it goes to failed/failed-…) waiting to settle with the rest of its burst. */
export interface Refused {
  readonly record: SpoolRecord;
  /** Where the job was found (absolute). */
  readonly foundAt: string;
  readonly failure: Failure & { readonly class: 'sql' | 'timeout' };
  readonly options: SettleOptions;
}

/**
 * settleFailure() for a burst of refused jobs: each record is rewritten with one more attempt
 * and its failure, `place` moves them all to failed/ at once (the file work shared:
 * Claims.placeRefused), then each is reported, counted and logged as settleFailure() does.
 * Resolves with where each went.
 */
export async function settleRefused(ctx: SettleContext, refused: readonly Refused[], place: (updated: readonly SpoolRecord[], prefix: 'failed-') => Promise<string[]>): Promise<string[]> {
  if (refused.length === 0) return [];
  const prefix = 'failed-'; // FAILED_PREFIX_OF of both classes
  const moved = await place(refused.map(({ record, failure }) => withFailure(record, failure)), prefix);
  refused.forEach(({ record, foundAt, failure, options }, k) => report(ctx, { record, foundAt }, failure, prefix, moved[k]!, true, record.attempts + 1, options));
  return moved;
}

/** A file that could not be read as a job, or can't be put in its place: it goes to failed/failed-<name> as it is. */
export function invalidFile(layout: Layout, syncer: DirSyncer, path: string, name: string, record: Partial<SpoolRecord> | undefined, foundAt: string): FailedJob {
  return { record: record ?? null, foundAt, path, place: (to) => moveToFailed(layout, path, to === 'spool' ? '' : to, name, syncer) };
}

/** Logs the claims that recovery moved to failed/uncertain-… (a runner died while their statement ran). */
export function logUncertainClaims(ctx: Pick<SettleContext, 'home' | 'logs'>, recovery: Recovery): void {
  for (const u of recovery.uncertain) {
    ctx.logs.failure(new Date(), {
      class: 'uncertain',
      id: u.id,
      file: relative(ctx.home, u.claim),
      datasource: u.datasource,
      code: 'UNCERTAIN',
      moved: relative(ctx.home, u.moved),
      message: 'A runner died while this statement, which commits implicitly and so runs outside the ledger, was in flight: it may or may not have run. Check the database, then respool it or delete it.',
    });
  }
}
