import { runsOnceWithLedger, type Dialect, type StatementParams } from '../db/driver.js';
import type { FillItem } from './group-fill.js';
import type { SpoolRecord } from '../spool/record.js';
import type { ScriptFile } from '../spool/script-file.js';

/** A claimed job, read and checked, ready to run. */
export interface Job {
  readonly record: SpoolRecord;
  readonly params: StatementParams;
  /** Its claim (a segment's jobs: the segment's claim when it was read). */
  readonly path: string;
  /** Where it was found in the spool. */
  readonly src: string;
  /** Runs in a ledger transaction, exactly once (the ledger is on and the statement can share its transaction). */
  readonly once: boolean;
  /** Its statement may leave state behind in the session: the session is reset after it, and it never shares a group. */
  readonly changesSession: boolean;
  /** Set for a job of a segment file: the jobs that share its claim. */
  readonly segment?: Segment;
  /** Set for a script: its file's parts (the statements stay on disk until they run: run/script.ts). */
  readonly script?: ScriptFile;
}

/** What the dialect reads from a job's statement: whether the ledger runs it once (`ledger`: the ledger is on), whether it may change the session. */
export function traitsOf(dialect: Dialect, ledger: boolean, record: SpoolRecord): Pick<Job, 'once' | 'changesSession'> {
  // A script: each statement once with the ledger (run/script.ts); it sets its own session, reset after it.
  if (record.script !== undefined) return { once: ledger, changesSession: true };
  const traits = dialect.inspect(record.sql); // read once for both
  return { once: ledger && runsOnceWithLedger(dialect, record, traits), changesSession: traits.changesSession };
}

/** The ledger's settings, as the drain reads them (null: the ledger is off). */
type Ledger = { readonly batch: number } | null;

/** Per-statement mode (`ledger.batch: 1`) claims this many jobs at a time, then commits them one by one. */
const PER_STATEMENT_BURST = 32;

/**
 * Group commit: jobs wait (claimed) to go in one ledger transaction together. A job that
 * failed to connect before runs alone, so a failure is pinned on the right job; so does
 * one with a time limit of its own, and one that may change the session (a reset follows
 * it). Per-statement mode (batch 1) claims a burst the same way and commits its jobs one by
 * one: file work in bursts between COMMITs slows them less than a claim and a removal
 * around each (docs/benchmarks.md).
 */
export function groupable(job: Job, ledger: Ledger): boolean {
  return job.once && !job.changesSession && ledger !== null && job.record.attempts === 0 && job.record.timeoutMs === undefined;
}

/** How many jobs wait for one flush: the group-commit size, or per-statement mode's burst. */
export function groupSize(ledger: Ledger): number {
  const batch = ledger?.batch ?? 1;
  return batch > 1 ? batch : PER_STATEMENT_BURST;
}

/** A grouped job as the group's fill counts it (group-fill.ts): its INSERT's prefix when it may be merged, and its size (the SQL and its values, about). */
export function fillItemOf(dialect: Dialect, job: Job): FillItem {
  const { sql } = job.record;
  let bytes = sql.length;
  const values = Array.isArray(job.params) ? job.params : Object.values(job.params);
  for (const value of values) bytes += typeof value === 'string' ? value.length : value instanceof Uint8Array ? 2 * value.length : 24;
  return { prefix: Array.isArray(job.params) ? (dialect.insertPrefix?.(sql) ?? null) : null, bytes };
}

/** Outside the ledger although the ledger is on: a statement that commits implicitly (a crash mid-statement leaves it uncertain). */
export function outsideLedger(ledger: Ledger, job: Job): boolean {
  return ledger !== null && !job.once && !job.record.captureResult;
}

/**
 * A claimed segment (`<id>.<n>.batchsql`, spool/writer.ts): its jobs run and finish one by
 * one, and the claim goes when the last has. Only jobs the ledger runs exactly once are
 * kept in a segment, so a crash that gives the claim back whole repeats nothing.
 */
export class Segment {
  /** The claim: rewritten, under a new name, when one of its jobs leaves for failed/. */
  path: string;
  readonly jobs: readonly Job[];
  /** Jobs finished: committed, settled by the ledger, or moved to failed/. */
  readonly #finished = new Set<Job>();

  /** The segment of claim `path`, holding `jobs` (read from it, in order). */
  constructor(path: string, jobs: readonly Omit<Job, 'segment'>[]) {
    this.path = path;
    this.jobs = jobs.map((job) => ({ ...job, segment: this }));
  }

  /** Marks a job finished; true once every job of the segment is. */
  finish(job: Job): boolean {
    this.#finished.add(job);
    return this.#finished.size === this.jobs.length;
  }

  /** Whether any job has finished (else the claim holds exactly what was read). */
  get touched(): boolean {
    return this.#finished.size > 0;
  }

  /** The records of the jobs not finished, in order, `updated` in place of its job's. */
  openRecords(updated?: SpoolRecord): SpoolRecord[] {
    return this.jobs.filter((j) => !this.#finished.has(j)).map((j) => (j.record.id === updated?.id ? updated : j.record));
  }
}
