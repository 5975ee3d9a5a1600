import { describe, expect, it } from 'vitest';
import type { RunReason, RunSummary } from '../../src/interfaces.js';
import { ContinuousPacer } from '../../src/daemon/continuous-pacer.js';
import { dueDelay } from '../../src/daemon/due-timer.js';
import { RunQueue } from '../../src/daemon/run-queue.js';

/** A run summary as far as the pacer reads it: which datasources stopped on a connection failure. */
function summary(connectionFailed: boolean): RunSummary {
  return { datasources: { main: connectionFailed ? { connectionError: 'ECONNREFUSED' } : {} } } as unknown as RunSummary;
}

describe('the schedule\'s pieces (daemon/): decisions, no timers', () => {
  it('dueDelay: past the due time by 5 ms, never negative, at most setTimeout\'s longest wait', () => {
    expect(dueDelay(10_000, 9_000)).toBe(1_005);
    expect(dueDelay(9_000, 10_000)).toBe(5);
    expect(dueDelay(2 ** 40, 0)).toBe(2 ** 31 - 1);
  });

  it('RunQueue: one run at a time; requests during it make one more run (a real run beats an adoption pass); withdraw() drops it', async () => {
    const ran: RunReason[] = [];
    let queue: RunQueue;
    const asks: RunReason[][] = [['adopt', 'drop', 'schedule'], ['continuous'], []];
    queue = new RunQueue(async (reason) => {
      await Promise.resolve(); // as a real run: asked for again once it is under way
      ran.push(reason);
      const more = asks.shift() ?? [];
      for (const r of more) void queue.request(r);
      if (more[0] === 'continuous') expect(queue.withdraw('schedule')).toBe(false);
      await Promise.resolve();
    }, new AbortController().signal);
    await queue.request('start');
    expect(ran).toEqual(['start', 'drop', 'continuous']);

    const controller = new AbortController();
    ran.length = 0;
    queue = new RunQueue(async (reason) => {
      await Promise.resolve();
      ran.push(reason);
      void queue.request('continuous');
      expect(queue.withdraw('continuous')).toBe(true);
      controller.abort();
      void queue.request('schedule');
      await Promise.resolve();
    }, controller.signal);
    await queue.request('start');
    await queue.settled();
    expect(ran).toEqual(['start']);
  });

  it('ContinuousPacer: after a connection failure jobs wake nothing until a run without one, which wakes one run; a wake-up asked for meanwhile waits', () => {
    let wakes = 0;
    let pending = false;
    const pacer = new ContinuousPacer({ keepLockMs: 0, wake: () => void wakes++, withdrawWake: () => {
        const was = pending;
        pending = false;
        return was;
      },
    });
    pacer.onJob();
    expect(wakes).toBe(1);
    pending = true;
    pacer.afterRun(summary(true));
    expect(pending).toBe(false);
    pacer.afterRun(summary(true));
    pacer.onJob();
    expect(wakes).toBe(1);
    pacer.afterRun(summary(false));
    expect(wakes).toBe(2);
    pacer.afterRun(summary(false));
    pacer.onJob();
    expect(wakes).toBe(3);
  });

  it('ContinuousPacer.runOptions: a continuous run skips the upkeep and keeps the locks until UPKEEP_EVERY_MS passed without one; other runs do it', () => {
    const signal = new AbortController().signal;
    const pacer = new ContinuousPacer({ keepLockMs: 1_000, wake: () => {}, withdrawWake: () => false });
    expect(pacer.runOptions('continuous', signal)).toEqual({ signal });
    expect(pacer.runOptions('continuous', signal)).toEqual({ signal, upkeep: false, keepLockMs: 1_000 });
    expect(pacer.runOptions('schedule', signal)).toEqual({ signal });
    expect(new ContinuousPacer({ keepLockMs: 0, wake: () => {}, withdrawWake: () => false }).runOptions('due', signal)).toEqual({ signal });
    const noKeep = new ContinuousPacer({ keepLockMs: 0, wake: () => {}, withdrawWake: () => false });
    noKeep.runOptions('start', signal);
    expect(noKeep.runOptions('continuous', signal)).toEqual({ signal, upkeep: false });
  });
});
