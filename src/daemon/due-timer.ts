import { Debounce } from './debounce.js';

/** A run for a due job starts this long after its due time (so that it is due by every clock reading). */
const DUE_MARGIN_MS = 5;
/** setTimeout's longest wait; a later due time is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Wake-ups (a delayed job written) within this long are looked at together. */
const WAKE_DEBOUNCE_MS = 50;

export interface DueTimerDeps {
  /** When the earliest delayed job is due (ms since the epoch), or null when none waits (spool/delayed.ts). */
  nextDue(): Promise<number | null>;
  /** The earliest delayed job came due. */
  onDue(): void;
  onError(error: unknown): void;
  /** Aborted when the schedule stops: nothing is armed after that. */
  readonly signal: AbortSignal;
}

/** How long to wait for a job due at `dueAt` from `now`: past it by DUE_MARGIN_MS, at most setTimeout's longest wait. Pure. */
export function dueDelay(dueAt: number, now: number): number {
  return Math.min(Math.max(0, dueAt - now) + DUE_MARGIN_MS, MAX_TIMER_MS);
}

/**
 * The delayed jobs' timer: armed for the earliest due time in spool/.delayed/ (whoever spooled
 * the job), it calls onDue once that time has passed. arm() reads the earliest due time again
 * (the schedule calls it once its watchers are ready, then after every run); wake() does so
 * WAKE_DEBOUNCE_MS after spool/.delayed/.wake changed (a delayed job was written).
 */
export class DueTimer {
  readonly #deps: DueTimerDeps;
  readonly #wake: Debounce;
  #timer: NodeJS.Timeout | null = null;
  /** The due time the timer is armed for. */
  #dueAt: number | null = null;

  constructor(deps: DueTimerDeps) {
    this.#deps = deps;
    this.#wake = new Debounce(() => void this.arm(), deps.signal);
  }

  /** Arms the timer for the earliest delayed job (left alone when it is armed for that time already). */
  async arm(): Promise<void> {
    let next: number | null;
    try {
      next = await this.#deps.nextDue();
    } catch (error) {
      this.#deps.onError(error);
      return;
    }
    if (this.#deps.signal.aborted || (this.#timer !== null && this.#dueAt === next)) return;
    this.#clear();
    this.#dueAt = next;
    if (next === null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (Date.now() < next) void this.arm(); // a far due time, waited for in steps
      else this.#deps.onDue();
    }, dueDelay(next, Date.now()));
  }

  /** A delayed job was written (spool/.delayed/.wake): arm() again shortly. */
  wake(): void {
    this.#wake.arm(WAKE_DEBOUNCE_MS);
  }

  stop(): void {
    this.#clear();
    this.#wake.stop();
  }

  #clear(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
