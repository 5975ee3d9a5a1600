import cron, { type ScheduledTask } from 'node-cron';
import type { ResolvedSchedule, RunOptions, RunSummary } from '../interfaces.js';
import { watchSpool, type SpoolWatcher } from './watcher.js';
import { watchShards, type ShardWatcher } from './shard-watcher.js';

/**
 * Why a run started. `adopt`: the watcher took drop-ins into the spool and ran nothing.
 * `immediate`: an immediate-priority job was spooled. `continuous`: a job was spooled (schedule.continuous).
 * `due`: a delayed job came due.
 */
export type RunReason = 'start' | 'schedule' | 'drop' | 'adopt' | 'immediate' | 'continuous' | 'due';

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

/** A run for a due job starts this long after its due time (so that it is due by every clock reading). */
const DUE_MARGIN_MS = 5;
/** setTimeout's longest wait; a later due time is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Wake-ups (a delayed job written) within this long are looked at together. */
const WAKE_DEBOUNCE_MS = 50;
/** A continuous run does the upkeep (RunOptions.upkeep) when no run did for this long, whatever the cron. */
export const UPKEEP_EVERY_MS = 60_000;

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
  /** The timer for the earliest delayed job, and the due time it is armed for. */
  let dueTimer: NodeJS.Timeout | null = null;
  let dueAt: number | null = null;
  let wakeTimer: NodeJS.Timeout | null = null;
  /** When the last run with the upkeep started (Date.now()). */
  let lastUpkeep = 0;

  /** Arms the timer for the earliest delayed job (read from spool/.delayed/, whoever spooled it). */
  const armDue = async (): Promise<void> => {
    let next: number | null;
    try {
      next = await deps.nextDue();
    } catch (error) {
      onError(error);
      return;
    }
    if (controller.signal.aborted || (dueTimer !== null && dueAt === next)) return;
    if (dueTimer !== null) clearTimeout(dueTimer);
    dueTimer = null;
    dueAt = next;
    if (next === null) return;
    dueTimer = setTimeout(() => {
      dueTimer = null;
      if (Date.now() < next) void armDue(); // a far due time, waited for in steps
      else void request('due');
    }, Math.min(Math.max(0, next - Date.now()) + DUE_MARGIN_MS, MAX_TIMER_MS));
  };

  const onWake = (): void => {
    if (wakeTimer !== null || controller.signal.aborted) return;
    wakeTimer = setTimeout(() => {
      wakeTimer = null;
      void armDue();
    }, WAKE_DEBOUNCE_MS);
  };

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
      // A continuous run only drains: the upkeep (drop-ins, prunes) comes with the other runs,
      // or with a continuous one once UPKEEP_EVERY_MS passed without it (a yearly cron).
      const upkeep = reason !== 'continuous' || Date.now() - lastUpkeep >= UPKEEP_EVERY_MS;
      if (upkeep && reason !== 'adopt') lastUpkeep = Date.now();
      // It also keeps the datasources' locks for the next one (RunOptions.keepLockMs); a run with the upkeep gives them back.
      const light = { upkeep: false, ...(schedule.keepLockMs > 0 && { keepLockMs: schedule.keepLockMs }) };
      const summary = reason === 'adopt' ? await deps.adopt(controller.signal) : await deps.run({ signal: controller.signal, ...(!upkeep && light) });
      hooks.onRun?.(summary, reason);
      if (reason !== 'adopt') holdAfter(summary);
      void armDue();
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
    watcher = watchSpool(deps.spoolDir, () => afterDrop(deps.settleMs + schedule.dropDebounceMs), onError, () => void request('immediate'), onWake);
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

  // The due timer is armed from what is in spool/.delayed/ once the watchers see what comes next.
  const ready = Promise.all([watcher?.ready, shards?.ready]).then(() => armDue());

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      controller.abort();
      clearTimeout(firstRun);
      if (dropTimer !== null) clearTimeout(dropTimer);
      if (dueTimer !== null) clearTimeout(dueTimer);
      if (wakeTimer !== null) clearTimeout(wakeTimer);
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
