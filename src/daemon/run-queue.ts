import type { RunReason } from '../interfaces.js';

/**
 * The schedule's single run in flight: a request during a run is run once more right after it,
 * however many came (an adoption pass asked for is dropped for a real run). Nothing starts once
 * `signal` is aborted; settled() is what stop() waits for.
 */
export class RunQueue {
  readonly #runOnce: (reason: RunReason) => Promise<void>;
  readonly #signal: AbortSignal;
  #inFlight: Promise<void> | null = null;
  /** The run asked for during the one in flight. */
  #again: RunReason | null = null;

  constructor(runOnce: (reason: RunReason) => Promise<void>, signal: AbortSignal) {
    this.#runOnce = runOnce;
    this.#signal = signal;
  }

  /** Runs now, or once more after the run in flight; resolves when no run is left to do. */
  request(reason: RunReason): Promise<void> {
    if (this.#signal.aborted) return Promise.resolve();
    if (this.#inFlight) {
      if (this.#again === null || this.#again === 'adopt') this.#again = reason;
      return this.#inFlight;
    }
    this.#inFlight = (async () => {
      let next: RunReason | null = reason;
      while (next !== null && !this.#signal.aborted) {
        this.#again = null;
        await this.#runOnce(next);
        next = this.#again;
      }
    })().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  /** Drops the run asked for during the one in flight when it is for `reason`; true when it did. */
  withdraw(reason: RunReason): boolean {
    if (this.#again !== reason) return false;
    this.#again = null;
    return true;
  }

  /** Resolves once no run is in flight. */
  async settled(): Promise<void> {
    await this.#inFlight;
  }
}
