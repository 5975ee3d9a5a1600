import type { DatabaseHold } from './hold.js';

/**
 * The datasource locks a continuous daemon keeps between its runs (docs/decisions.md,
 * "Continuous mode keeps the drain's lock between runs"): a drain that ends with the spool
 * drained hands its hold here instead of unlocking, and the next drain of that datasource in
 * this process takes it back and skips connecting and locking. A kept hold goes (unlocked,
 * its session given back) after the time it was kept for (schedule.keepLockMs) without a run, on release() (a run with the upkeep,
 * a paused datasource, stop, close), and when its session no longer holds the lock (a
 * connection KILLed or lost while idle): the drain then connects afresh.
 */
export class KeptHolds {
  readonly #holds = new Map<string, { readonly hold: DatabaseHold; readonly timer: NodeJS.Timeout }>();
  /** Releases under way: a take() waits for them, so that this process never finds its own lock busy. */
  #releasing: Promise<void> = Promise.resolve();

  /**
   * Takes the hold kept for `datasource` out (the caller owns it now), once it is known to
   * still hold the lock; undefined when none is kept or it lost the lock (then it is dropped).
   */
  async take(datasource: string): Promise<DatabaseHold | undefined> {
    await this.#releasing;
    const kept = this.#holds.get(datasource);
    if (kept === undefined) return undefined;
    this.#holds.delete(datasource);
    clearTimeout(kept.timer);
    if (await kept.hold.stillHeld()) return kept.hold;
    kept.hold.lose();
    return undefined;
  }

  /** Keeps `hold` (open, its lock held) for the next drain of `datasource`; released after `idleMs` unless taken before. */
  keep(datasource: string, hold: DatabaseHold, idleMs: number): void {
    void this.release(datasource);
    const timer = setTimeout(() => void this.release(datasource), idleMs);
    timer.unref();
    this.#holds.set(datasource, { hold, timer });
  }

  /** Unlocks and gives back the hold of `datasource`, or every hold; resolves once done. Never rejects. */
  release(datasource?: string): Promise<void> {
    const names = datasource === undefined ? [...this.#holds.keys()] : [datasource];
    const holds: DatabaseHold[] = [];
    for (const name of names) {
      const kept = this.#holds.get(name);
      if (kept === undefined) continue;
      this.#holds.delete(name);
      clearTimeout(kept.timer);
      holds.push(kept.hold);
    }
    if (holds.length === 0) return this.#releasing;
    const previous = this.#releasing;
    this.#releasing = (async () => {
      await previous;
      await Promise.all(holds.map((hold) => hold.release(() => Promise.resolve()).catch(() => {})));
    })();
    return this.#releasing;
  }
}
