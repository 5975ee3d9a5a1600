import type { RunOptions, RunReason, RunSummary } from '../interfaces.js';

/** A continuous run does the upkeep (RunOptions.upkeep) when no run did for this long, whatever the cron. */
export const UPKEEP_EVERY_MS = 60_000;

/** Whether a datasource stopped on a connection failure in this run. Pure. */
function stoppedOnConnection(summary: RunSummary): boolean {
  return Object.values(summary.datasources).some((d) => d.connectionError !== undefined);
}

export interface ContinuousPacerDeps {
  /** schedule.keepLockMs: a continuous run without the upkeep keeps the datasources' locks this long (0: gives them back). */
  readonly keepLockMs: number;
  /** Asks for a continuous run. */
  wake(): void;
  /** Drops a continuous run asked for during the run in flight; true when there was one. */
  withdrawWake(): boolean;
}

/**
 * How continuous mode's runs are paced (schedule.continuous). A job spooled by any process
 * (onJob) asks for a run. Such a run only drains: the upkeep (drop-ins, prunes) comes with the
 * other runs, or with a continuous one once UPKEEP_EVERY_MS passed without it (a yearly cron),
 * and it keeps the datasources' locks for the next one (RunOptions.keepLockMs); a run with the
 * upkeep gives them back. After a run that stopped on a connection failure, jobs wake nothing
 * until a run without one (the cron's, a drop-in's, runNow()): connection retries keep the
 * cron's pace, as without continuous mode, instead of one run per job spooled.
 */
export class ContinuousPacer {
  readonly #deps: ContinuousPacerDeps;
  /** When the last run with the upkeep started (Date.now()). */
  #lastUpkeep = 0;
  /** The last run stopped on a connection failure: wake-ups wait. */
  #held = false;
  /** A wake-up came while held. */
  #missed = false;

  constructor(deps: ContinuousPacerDeps) {
    this.#deps = deps;
  }

  /** The options of a run (not an adoption pass) for `reason`. */
  runOptions(reason: Exclude<RunReason, 'adopt'>, signal: AbortSignal): RunOptions {
    const upkeep = reason !== 'continuous' || Date.now() - this.#lastUpkeep >= UPKEEP_EVERY_MS;
    if (upkeep) {
      this.#lastUpkeep = Date.now();
      return { signal };
    }
    return { signal, upkeep: false, ...(this.#deps.keepLockMs > 0 && { keepLockMs: this.#deps.keepLockMs }) };
  }

  /** A job was spooled. */
  onJob(): void {
    if (this.#held) this.#missed = true;
    else this.#deps.wake();
  }

  /** After a run (not an adoption pass): holds wake-ups, or lets them go with one run for what came meanwhile. */
  afterRun(summary: RunSummary): void {
    const wasHeld = this.#held;
    this.#held = stoppedOnConnection(summary);
    const wake = wasHeld && !this.#held && this.#missed;
    this.#missed = false;
    // A wake-up that came during this run waits too.
    if (this.#held && this.#deps.withdrawWake()) this.#missed = true;
    if (wake) this.#deps.wake();
  }
}
