/**
 * A timer that fires once, `delayMs` after the first arm() since it last fired. An arm() while
 * it is pending changes nothing: not reset by later events, so a steady stream of them can't put
 * it off forever. Nothing is armed once `signal` is aborted; stop() clears a pending one.
 * The schedule's drop-in pass and the delayed jobs' wake-up (spool/.delayed/.wake) use it.
 */
export class Debounce {
  readonly #fire: () => void;
  readonly #signal: AbortSignal;
  #timer: NodeJS.Timeout | null = null;

  constructor(fire: () => void, signal: AbortSignal) {
    this.#fire = fire;
    this.#signal = signal;
  }

  arm(delayMs: number): void {
    if (this.#timer !== null || this.#signal.aborted) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#fire();
    }, delayMs);
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
