import { join } from 'node:path';
import fs from 'node:fs';
import type { FailureClass } from '../spool/failure.js';
import { isId } from '../spool/id.js';

/**
 * What became of finished jobs, kept for status(id) for `retentionMs` and then forgotten.
 *
 *   logs/outcomes/<id[0..7]>.jsonl     one JSON line per outcome
 *
 * The file is named from the job's id (its first 7 characters: 2^15 ms ≈ 33 s of enqueue
 * time), so a lookup reads one small file, never the whole record, and the runner, which
 * drains in id order, appends to one file at a time. A file is removed once it has not been
 * written for `retentionMs`; a line older than that is ignored even before its file goes.
 * Outcomes are advisory (no fsync): the spool and the ledger, not this record, carry the
 * guarantees.
 */
export interface Outcome {
  readonly id: string;
  readonly status: 'succeeded' | 'failed';
  readonly datasource: string;
  readonly finishedAt: string;
  /** Milliseconds the statement took on the server (0 when it never ran). */
  readonly durationMs: number;
  /** succeeded: rows the statement changed. */
  readonly affectedRows?: number;
  /** failed: sql, connection, invalid, timeout, or uncertain (cut short outside the ledger: may have run). */
  readonly class?: FailureClass;
  readonly code?: string;
  readonly message?: string;
  /** failed: the file's name in failed/. */
  readonly file?: string;
}

/** A job removed from the spool before it ran (ops/cancel.ts): kept with the outcomes, for status(id). */
export interface Cancellation {
  readonly id: string;
  readonly status: 'cancelled';
  readonly datasource: string;
  /** When it was cancelled. */
  readonly finishedAt: string;
}

/** What the record holds of a job. */
export type Recorded = Outcome | Cancellation;

export const OUTCOME_FILE_CHARS = 7;
const FILE_PATTERN = /^([0-7][0-9A-HJKMNP-TV-Z]{6})\.jsonl$/;

/** Outcomes wait at most this long, or until this many are pending, before they are written. */
const FLUSH_MS = 100;
const FLUSH_LINES = 1024;

function fileOf(dir: string, id: string): string {
  return join(dir, id.slice(0, OUTCOME_FILE_CHARS) + '.jsonl');
}

export class OutcomeLog {
  readonly #dir: string;
  readonly #retentionMs: number;
  /** Lines waiting to be appended, by file. */
  #pending = new Map<string, string[]>();
  #pendingCount = 0;
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #dirReady = false;
  #lastPrune = 0;
  /** The file of the last outcome recorded, and its id's first characters. */
  #lastKey = '';
  #lastFile = '';
  /** The last error writing the record (it never fails a run). */
  lastError: Error | null = null;

  constructor(dir: string, retentionMs: number) {
    this.#dir = dir;
    this.#retentionMs = retentionMs;
  }

  /**
   * Queues an outcome; it is appended within FLUSH_MS, many per write. Not at once: a
   * file write in flight during the runner's next COMMIT slows that COMMIT
   * (docs/decisions.md, "A job's file is removed between round trips").
   */
  record(outcome: Recorded): void {
    // Consecutive outcomes mostly share a file (ids in drain order): its path is made once.
    const key = outcome.id.slice(0, OUTCOME_FILE_CHARS);
    if (key !== this.#lastKey) {
      this.#lastKey = key;
      this.#lastFile = fileOf(this.#dir, outcome.id);
    }
    const file = this.#lastFile;
    let lines = this.#pending.get(file);
    if (!lines) this.#pending.set(file, (lines = []));
    lines.push(JSON.stringify(outcome) + '\n');
    if (++this.#pendingCount >= FLUSH_LINES) this.#kick();
    else this.#timer ??= setTimeout(() => this.#kick(), FLUSH_MS);
  }

  /** Resolves once every outcome recorded so far is in its file. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.#pendingCount > 0) this.#kick();
      if (this.#flushing === null) return;
      await this.#flushing;
    }
  }

  /** Starts a write of what is pending (after the one in progress). */
  #kick(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#flushing ??= this.#write();
  }

  async #write(): Promise<void> {
    const batch = this.#pending;
    this.#pending = new Map();
    this.#pendingCount = 0;
    try {
      if (!this.#dirReady) {
        await fs.promises.mkdir(this.#dir, { recursive: true, mode: 0o750 });
        this.#dirReady = true;
      }
      for (const [file, lines] of batch) await fs.promises.appendFile(file, lines.join(''), { mode: 0o640 });
    } catch (error) {
      this.lastError = error as Error;
    } finally {
      this.#flushing = this.#pendingCount >= FLUSH_LINES ? this.#write() : null;
      if (this.#flushing === null && this.#pendingCount > 0) this.#timer ??= setTimeout(() => this.#kick(), FLUSH_MS);
    }
    if (Date.now() - this.#lastPrune > 60_000) await this.prune().catch(() => {});
  }

  /** Removes files not written for `retentionMs`. Returns how many it removed. */
  async prune(now = Date.now()): Promise<number> {
    this.#lastPrune = now;
    let removed = 0;
    let names: string[];
    try {
      names = await fs.promises.readdir(this.#dir);
    } catch {
      return 0;
    }
    for (const name of names) {
      if (!FILE_PATTERN.test(name)) continue;
      const path = join(this.#dir, name);
      try {
        const { mtimeMs } = await fs.promises.stat(path);
        if (now - mtimeMs > this.#retentionMs) {
          await fs.promises.unlink(path);
          removed++;
        }
      } catch {
        // gone already (another process pruned it)
      }
    }
    return removed;
  }

  /** The newest outcome of a job still within retention, or null. */
  async find(id: string, now = Date.now()): Promise<Recorded | null> {
    if (!isId(id)) return null;
    await this.flush();
    let text: string;
    try {
      text = await fs.promises.readFile(fileOf(this.#dir, id), 'utf8');
    } catch {
      return null;
    }
    const prefix = `{"id":${JSON.stringify(id)},`;
    const lines = text.split('\n').filter((line) => line.startsWith(prefix));
    for (const line of lines.reverse()) {
      let outcome: Recorded;
      try {
        outcome = JSON.parse(line) as Recorded;
      } catch {
        continue; // a line cut short by a crash
      }
      return now - Date.parse(outcome.finishedAt) > this.#retentionMs ? null : outcome;
    }
    return null;
  }
}
