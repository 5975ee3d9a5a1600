import type { EachResult, ErrorClass } from './driver.js';

/**
 * A refused group again, under savepoints (issue 15): after a group commit failed, its jobs
 * go again in ONE ledger transaction, each under a savepoint of its own (its ledger row and
 * its statement). A job whose statement is refused is rolled back to its savepoint and the
 * others go on; one COMMIT at the end. Statements go many to a round trip, as the group
 * commit sends them: a trip runs until a statement fails (the server skips the rest), and
 * the next trip starts by rolling that job back, then goes on with the jobs after it. So a
 * group of n jobs with r refused costs r + 1 trips and one commit, instead of a ledger
 * transaction (and a ROLLBACK) per job.
 *
 * The trips' text is pure (eachTrip, failedAt); runEachUnderSavepoints runs the loop on a
 * dialect's session, handed in as EachTrips (MySQL/MariaDB and PostgreSQL; SQLite runs the
 * same loop in its session's process).
 */

/** The savepoint each job runs under (one at a time: released after the job, or rolled back to and released). */
export const JOB_SAVEPOINT = 'querybatch_job';

/** A job's statements in a trip: SAVEPOINT, its ledger row, its statement, RELEASE SAVEPOINT. */
const PER_JOB = 4;

/** One trip: its statements, and how many come before the first job's. */
export interface Trip {
  readonly statements: readonly string[];
  /** Statements before the first job's: the transaction's start, or the refused job's rollback. */
  readonly prefix: number;
  /** The first job of the trip. */
  readonly from: number;
}

/**
 * The trip that runs jobs `from` to the end, then COMMIT: the first (`resume` false) opens
 * the transaction with `begin`; a later one first rolls back the refused job before `from`
 * to its savepoint. `rows[k]` is job k's ledger row, `statements[k]` its statement. Pure.
 */
export function eachTrip(begin: string, resume: boolean, rows: readonly string[], statements: readonly string[], from: number): Trip {
  const prefix = resume ? [`ROLLBACK TO SAVEPOINT ${JOB_SAVEPOINT}`, `RELEASE SAVEPOINT ${JOB_SAVEPOINT}`] : [begin];
  const jobs = statements.slice(from).flatMap((sql, k) => [`SAVEPOINT ${JOB_SAVEPOINT}`, rows[from + k]!, sql, `RELEASE SAVEPOINT ${JOB_SAVEPOINT}`]);
  return { statements: [...prefix, ...jobs, 'COMMIT'], prefix: prefix.length, from };
}

/** Where in a trip the statement at `index` (0-based: the count of statements that completed before it) is. */
export type TripPlace =
  | { readonly part: 'row' | 'statement'; readonly job: number }
  /** The trip's start, a savepoint's own statement, or the COMMIT: not a job's fault. */
  | { readonly part: 'other' };

/** The place of statement `index` of `trip`. Pure. */
export function placeOf(trip: Trip, index: number): TripPlace {
  const k = index - trip.prefix;
  const jobs = trip.statements.length - 1 - trip.prefix;
  if (k < 0 || k >= jobs) return { part: 'other' };
  const part = k % PER_JOB;
  const job = trip.from + Math.floor(k / PER_JOB);
  return part === 1 ? { part: 'row', job } : part === 2 ? { part: 'statement', job } : { part: 'other' };
}

/** The index in a trip of job `job`'s statement (its affected rows are that statement's). Pure. */
export function statementIndex(trip: Trip, job: number): number {
  return trip.prefix + (job - trip.from) * PER_JOB + 2;
}

/** How a trip went: the affected rows of each statement that completed, and the error that stopped it (none: all completed). */
export interface TripResult {
  readonly affected: readonly number[];
  readonly error?: unknown;
}

/** A dialect's session, as the loop uses it. */
export interface EachTrips {
  /** `START TRANSACTION` or `BEGIN`. */
  readonly begin: string;
  /** Sends the statements as one round trip (they stop at the first that fails). */
  send(statements: readonly string[]): Promise<TripResult>;
  classify(error: unknown): ErrorClass;
  /** The error is the ledger's duplicate key for `id`: the job ran before. */
  isLedgerDuplicate(error: unknown, id: string): boolean;
  /** Rolls the transaction back (after an error that is not a job's own). */
  rollback(): Promise<void>;
}

/**
 * Runs jobs under savepoints (above). Resolves with each job's result in order, or null,
 * all rolled back, when an error was not a job's own: a transient one (the server may have
 * rolled back the whole transaction; the jobs then go one by one, retried as usual), a
 * savepoint's or the COMMIT's. A lost connection rejects as it is (the server rolls back);
 * so does any error once `cancelled()` says the time limit stopped a statement (rolled back).
 */
export async function runEachUnderSavepoints(session: EachTrips, ids: readonly string[], rows: readonly string[], statements: readonly string[], cancelled: () => boolean = () => false): Promise<EachResult[] | null> {
  const results: EachResult[] = [];
  let trip = eachTrip(session.begin, false, rows, statements, 0);
  for (;;) {
    const { affected, error } = await session.send(trip.statements);
    const failed = error === undefined ? null : affected.length;
    for (let job = trip.from; job < statements.length; job++) {
      const at = statementIndex(trip, job);
      // A job is done when the statement after its own (its RELEASE) completed.
      if (failed !== null && at + 1 >= failed) break;
      results.push({ status: 'done', affectedRows: affected[at] ?? 0 });
    }
    if (failed === null) return results;
    if (session.classify(error) === 'connection') throw error;
    if (cancelled()) {
      await session.rollback();
      throw error;
    }
    const place = placeOf(trip, failed);
    const own = place.part === 'statement' ? session.classify(error) === 'sql' : place.part === 'row' && session.isLedgerDuplicate(error, ids[place.job]!);
    if (place.part === 'other' || !own || place.job !== results.length) {
      await session.rollback();
      return null;
    }
    results.push(place.part === 'row' ? { status: 'done-before' } : { status: 'refused', error });
    trip = eachTrip(session.begin, true, rows, statements, place.job + 1);
  }
}
