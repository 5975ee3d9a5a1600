import cron, { type ScheduledTask } from 'node-cron';
import type { ResolvedSchedule, RunOptions, RunSummary } from '../interfaces.js';
import { watchSpool, type SpoolWatcher } from './watcher.js';
import { watchShards, type ShardWatcher } from './shard-watcher.js';

/**
 * Why a run started. `adopt`: the watcher took drop-ins into the spool and ran nothing.
 * `immediate`: an immediate-priority job was spooled. `continuous`: a job was spooled (schedule.continuous).
 */
export type RunReason = 'start' | 'schedule' | 'drop' | 'adopt' | 'immediate' | 'continuous';

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

/** Whether a datasource stopped on a connection failure in this run. Pure. */
export function stoppedOnConnection(summary: RunSummary): boolean {
  return Object.values(summary.datasources).some((d) => d.connectionError !== undefined);
}

/**
 * The schedule: a node-cron task that runs a batch (never two at once: node-cron's
 * noOverlap, plus this module's own single in-flight run, plus the QueryBatch's guard),
 * a first run `startDelayMs` after start, and the drop-in watcher that takes new files into
 * the spool (or runs a batch, with runOnDrop) once they have settled.
 */
export function startSchedule(deps: ScheduleDeps, hooks: ScheduleHooks = {}): ScheduleHandle {
  const { schedule } = deps;
  const controller = new AbortController();
  const onError = (error: unknown) => hooks.onError?.(error);
  let inFlight: Promise<void> | null = null;
  let again: RunReason | null = null;
  let stopping: Promise<void> | null = null;
  let dropTimer: NodeJS.Timeout | null = null;

  const afterDrop = (delayMs: number): void => {
    if (dropTimer !== null || controller.signal.aborted) return;
    // Not reset by later events: a steady stream of drops can't put the pass off forever.
    dropTimer = setTimeout(() => {
      dropTimer = null;
      void request(schedule.runOnDrop ? 'drop' : 'adopt');
    }, delayMs);
  };

  const once = async (reason: RunReason): Promise<void> => {
    try {
      const summary = reason === 'adopt' ? await deps.adopt(controller.signal) : await deps.run({ signal: controller.signal });
      hooks.onRun?.(summary, reason);
      if (reason !== 'adopt') holdAfter(summary);
      // A drop-in that had not settled yet: look again once it may have.
      if ((reason === 'drop' || reason === 'adopt') && settlingOf(summary) > 0) afterDrop(Math.max(50, Math.ceil(deps.settleMs / 2)));
    } catch (error) {
      onError(error);
    }
  };

  /** One run at a time; a request during a run is run once more right after it (an adoption pass is dropped for a real run). */
  const request = (reason: RunReason): Promise<void> => {
    if (controller.signal.aborted) return Promise.resolve();
    if (inFlight) {
      if (again === null || again === 'adopt') again = reason;
      return inFlight;
    }
    inFlight = (async () => {
      let next: RunReason | null = reason;
      while (next !== null && !controller.signal.aborted) {
        again = null;
        await once(next);
        next = again;
      }
    })().finally(() => {
      inFlight = null;
    });
    return inFlight;
  };

  const task: ScheduledTask = cron.schedule(schedule.cron, () => request('schedule'), {
    name: 'querybatch',
    noOverlap: true,
    ...(schedule.timezone !== null && { timezone: schedule.timezone }),
  });
  const firstRun = setTimeout(() => void request('start'), schedule.startDelayMs);

  let watcher: SpoolWatcher | null = null;
  if (schedule.watch) {
    watcher = watchSpool(deps.spoolDir, () => afterDrop(deps.settleMs + schedule.dropDebounceMs), onError, () => void request('immediate'));
  }

  // Continuous mode: a job spooled by any process asks for a run (one more after the run in
  // flight, however many come). After a run that stopped on a connection failure, jobs wake
  // nothing until a run without one (the cron's, a drop-in's, runNow()): connection retries
  // keep the cron's pace, as without continuous mode, instead of one run per job spooled.
  let held = false;
  let missed = false;
  const holdAfter = (summary: RunSummary): void => {
    const wasHeld = held;
    held = stoppedOnConnection(summary);
    const wake = wasHeld && !held && missed;
    missed = false;
    // A wake-up that came during this run waits too.
    if (held && again === 'continuous') [again, missed] = [null, true];
    if (wake) void request('continuous');
  };
  const onJob = (): void => {
    if (held) missed = true;
    else void request('continuous');
  };
  const shards: ShardWatcher | null = schedule.continuous ? watchShards(deps.spoolDir, deps.datasources, onJob, onError) : null;

  const ready = Promise.all([watcher?.ready, shards?.ready]).then(() => {});

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      controller.abort();
      clearTimeout(firstRun);
      if (dropTimer !== null) clearTimeout(dropTimer);
      await task.destroy();
      await watcher?.close().catch(onError);
      shards?.close();
      await inFlight;
    })();
    return stopping;
  };

  return {
    cron: schedule.cron,
    ready,
    nextRun: () => (stopping ? null : task.getNextRun()),
    runNow: () => request('schedule'),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
