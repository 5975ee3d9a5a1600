import { relative } from 'node:path';
import type { Dialect } from '../db/driver.js';
import { isQueryBatchError } from '../errors.js';
import type { DatasourceSummary, ResolvedDatasource } from '../interfaces.js';
import type { FailureEntry } from '../ops/log-format.js';
import { failureOf, logEntryOf } from './failure.js';
import type { Job } from './job.js';
import type { SettleContext } from './settle.js';

/**
 * Retrying a statement that met a transient error (a deadlock, a lock wait timeout: the
 * dialect's `transient` class) within the run, on the same session, after a backoff with
 * full jitter. The policy (which error, how long to wait) is pure; the wait honours the run's
 * abort signal.
 *
 * Running it again can't make it run twice: a transient error leaves nothing of the
 * statement behind. A deadlock rolls back the victim's whole transaction (InnoDB), the ledger
 * row with it; after a lock wait timeout the server rolls back the statement and the session
 * the rest of the ledger transaction (db/mysql/session.ts executeOnce). Outside the ledger
 * (ledger off, a captured SELECT) the statement ran alone in autocommit, rolled back
 * likewise. Only a job whose text is one statement that runs inside a transaction
 * (`inspect().transactional`) is retried: a job of several statements, or one that commits
 * implicitly, may have committed part of its work before the error: it fails at once, as an SQL error.
 */

/** The longest wait between two tries, unless backoffMs itself is longer. */
export const MAX_BACKOFF_MS = 30_000;

/**
 * The wait after failed try `tries` (1: the first): a random time in [0, ceiling) with
 * ceiling = backoffMs * 2^(tries-1), at most max(backoffMs, MAX_BACKOFF_MS) ("full jitter").
 * Pure given `random`.
 */
export function backoffDelay(tries: number, backoffMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(backoffMs * 2 ** Math.max(0, tries - 1), Math.max(backoffMs, MAX_BACKOFF_MS));
  return Math.floor(random() * ceiling);
}

/** Waits `ms`; resolves false at once when `signal` aborts (or had), true when the time passed. */
export function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    function onAbort(): void {
      clearTimeout(timer);
      resolve(false);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Whether a failed try of `job` is run again: a transient error of a single transactional statement (not a time limit's stop). Pure. */
export function isRetryable(dialect: Dialect, job: Job, error: unknown): boolean {
  if (isQueryBatchError(error, 'STATEMENT_TIMEOUT')) return false;
  return dialect.classifyError(error, 'execute') === 'transient' && dialect.inspect(job.record.sql).transactional;
}

/** What follows a failed try: run it again, settle the failure (failed/, or timeout), or stop (the run was aborted during the wait; the job goes back untouched). */
export type AfterFailure = 'again' | 'settle' | 'aborted';

/** A drain's retry of transient errors: its datasource's policy, the run's signal, the error log; it counts each retry into the drain's summary. */
export class Retrier {
  readonly #policy: ResolvedDatasource['retry'];
  readonly #dialect: Dialect;
  readonly #settling: SettleContext;
  readonly #signal: AbortSignal | undefined;
  readonly #summary: DatasourceSummary;

  /** `policy` undefined (a datasource not in the config): no retry. */
  constructor(policy: ResolvedDatasource['retry'] | undefined, dialect: Dialect, settling: SettleContext, signal: AbortSignal | undefined, summary: DatasourceSummary) {
    this.#policy = policy ?? { maxAttempts: 1, backoffMs: 0 };
    this.#dialect = dialect;
    this.#settling = settling;
    this.#signal = signal;
    this.#summary = summary;
  }

  /**
   * After try `tries` of `job` (claimed at `claim`) failed with `error` (not a lost
   * connection): when it is retryable and tries are left, logs a `retry` line and waits the
   * backoff. Resolves 'again' (counted as `retried`) when the job runs again now.
   */
  async after(job: Job, claim: string, error: unknown, tries: number): Promise<AfterFailure> {
    if (tries >= this.#policy.maxAttempts || !isRetryable(this.#dialect, job, error)) return 'settle';
    const waitMs = backoffDelay(tries, this.#policy.backoffMs);
    const at = job.segment?.path ?? claim;
    this.#settling.logs.failure(new Date(), retryEntry(this.#settling, job, at, error, { tries, maxAttempts: this.#policy.maxAttempts, waitMs }));
    if (!(await pause(waitMs, this.#signal))) return 'aborted';
    this.#summary.retried++;
    return 'again';
  }
}

/** The error log's `retry` line of a failed try (docs/logs.md): `attempts` is the try that failed, `moved` where the claim is. */
export function retryEntry(ctx: Pick<SettleContext, 'home' | 'logParams'>, job: Job, claim: string, error: unknown, facts: { tries: number; maxAttempts: number; waitMs: number }): FailureEntry {
  const failure = failureOf('sql', error);
  const entry = logEntryOf(failure, job.record, {
    file: relative(ctx.home, job.src),
    moved: relative(ctx.home, claim),
    attempts: facts.tries,
    message: `${failure.message} (try ${facts.tries} of ${facts.maxAttempts} failed; it runs again in ${facts.waitMs} ms)`,
    logParams: ctx.logParams,
  });
  return { ...entry, class: 'retry' };
}
