import cron, { type ScheduledTask } from 'node-cron';
import type { ResolvedSchedule, RunOptions, RunReason, RunSummary } from '../interfaces.js';
import { watchSpool } from './watcher.js';
import { watchShards } from './shard-watcher.js';
import { Debounce } from './debounce.js';
import { DueTimer } from './due-timer.js';
import { ContinuousPacer } from './continuous-pacer.js';
import { RunQueue } from './run-queue.js';

export type { RunReason } from '../interfaces.js';
export { UPKEEP_EVERY_MS } from './continuous-pacer.js';

export interface ScheduleHooks {
  /** After every run (and every adoption-only pass), with its summary. */
  readonly onRun?: (summary: RunSummary, reason: RunReason) => void;
  /** A run or the watcher failed; the schedule carries on. */
  readonly onError?: (error: unknown) => void;
}

export interface ScheduleDeps {
  readonly spoolDir: string;
  /** dropInSettleMs: how long a drop-in must be unchanged before it is taken. */
  readonly settleMs: number;
  readonly schedule: ResolvedSchedule;
  /** The configured datasources: continuous mode watches their shard trees. */
  readonly datasources: readonly string[];
  /** Runs a batch (the QueryBatch's run(), with its in-process guard). */
  run(options: RunOptions): Promise<RunSummary>;
  /** Takes drop-ins into the spool and executes nothing. */
  adopt(signal: AbortSignal): Promise<RunSummary>;
  /** When the earliest delayed job is due (ms since the epoch), or null when none waits (spool/delayed.ts). */
  nextDue(): Promise<number | null>;
}

/** The handle start() returns. stop() is idempotent and shares its in-flight promise. */
export interface ScheduleHandle {
  /** The cron expression in use. */
  readonly cron: string;
  /** Resolves once the watcher (if any) is watching. */
  readonly ready: Promise<void>;
  /** When the schedule fires next (null once stopped). */
  nextRun(): Date | null;
  /** Runs a batch now (joins the one in flight, then runs again). */
  runNow(): Promise<void>;
  /** Stops the schedule and the watcher; a run in flight finishes its statement and leaves the rest in spool. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Drop-ins still settling: the run summary's deferred count beyond what the datasources left. */
function settlingOf(summary: RunSummary): number {
  const perDatasource = Object.values(summary.datasources).reduce((n, d) => n + d.deferred, 0);
  return Math.max(0, summary.deferred - perDatasource);
}

/**
 * The schedule: a node-cron task that runs a batch, a first run `startDelayMs` after start, the
 * drop-in watcher that takes new files into the spool (or runs a batch, with runOnDrop) once
 * they have settled, the delayed jobs' timer, and in continuous mode the shard watcher. Never
 * two runs at once: node-cron's noOverlap, plus the RunQueue's single run in flight, plus the
 * QueryBatch's guard. The pieces: RunQueue (run-queue.ts), the drop-ins' Debounce
 * (debounce.ts), DueTimer (due-timer.ts), ContinuousPacer (continuous-pacer.ts).
 */
export function startSchedule(deps: ScheduleDeps, hooks: ScheduleHooks = {}): ScheduleHandle {
  const { schedule } = deps;
  const controller = new AbortController();
  const { signal } = controller;
  const onError = (error: unknown) => hooks.onError?.(error);

  const runs = new RunQueue((reason) => runOnce(reason), signal);
  const drops = new Debounce(() => void runs.request(schedule.runOnDrop ? 'drop' : 'adopt'), signal);
  const due = new DueTimer({ nextDue: () => deps.nextDue(), onDue: () => void runs.request('due'), onError, signal });
  const pacer = new ContinuousPacer({ keepLockMs: schedule.keepLockMs, wake: () => void runs.request('continuous'), withdrawWake: () => runs.withdraw('continuous') });

  /** One run (or adoption pass), then what it tells the pieces. */
  const runOnce = async (reason: RunReason): Promise<void> => {
    try {
      const summary = reason === 'adopt' ? await deps.adopt(signal) : await deps.run(pacer.runOptions(reason, signal));
      hooks.onRun?.(summary, reason);
      if (reason !== 'adopt') pacer.afterRun(summary);
      void due.arm();
      // A drop-in that had not settled yet: look again once it may have.
      if ((reason === 'drop' || reason === 'adopt') && settlingOf(summary) > 0) drops.arm(Math.max(50, Math.ceil(deps.settleMs / 2)));
    } catch (error) {
      onError(error);
    }
  };

  const task: ScheduledTask = cron.schedule(schedule.cron, () => runs.request('schedule'), {
    name: 'querybatch',
    noOverlap: true,
    ...(schedule.timezone !== null && { timezone: schedule.timezone }),
  });
  const firstRun = setTimeout(() => void runs.request('start'), schedule.startDelayMs);
  const watcher = schedule.watch
    ? watchSpool(deps.spoolDir, () => drops.arm(deps.settleMs + schedule.dropDebounceMs), onError, () => void runs.request('immediate'), () => due.wake())
    : null;
  const shards = schedule.continuous ? watchShards(deps.spoolDir, deps.datasources, () => pacer.onJob(), onError) : null;

  // The due timer is armed from what is in spool/.delayed/ once the watchers see what comes next.
  const ready = Promise.all([watcher?.ready, shards?.ready]).then(() => due.arm());

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      controller.abort();
      clearTimeout(firstRun);
      drops.stop();
      due.stop();
      await task.destroy();
      await watcher?.close().catch(onError);
      shards?.close();
      await runs.settled();
    })();
    return stopping;
  };

  return {
    cron: schedule.cron,
    ready,
    nextRun: () => (stopping ? null : task.getNextRun()),
    runNow: () => runs.request('schedule'),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
