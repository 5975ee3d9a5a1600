import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { CHILD_SOURCE } from './child-source.js';
import { PROCESS_LOST, SqliteError } from './codes.js';

/**
 * A SQLite connection in a child process of its own (child-source.ts says why a process):
 * requests go one at a time over the IPC channel; kill() stops whatever it runs at once.
 * The event loop of the process that owns it never waits on SQLite.
 */

const MODULE = createRequire(import.meta.url).resolve('better-sqlite3');

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  /** A stream's handlers. */
  readonly onColumns?: (columns: string[]) => void;
  readonly onRows?: (rows: unknown[][]) => Promise<void>;
}

type Answer =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: string; message: string } }
  | { id: number; columns: string[] }
  | { id: number; rows: unknown[][] };

/** Rows per message of a stream. */
const STREAM_BATCH = 256;

export class SqliteProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #next = 1;
  /** Why the child is gone (null while it runs). */
  #gone: SqliteError | null = null;
  /** Resolves when the child has exited. */
  readonly exited: Promise<void>;

  constructor() {
    this.#child = spawn(process.execPath, ['-e', CHILD_SOURCE], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, QUERYBATCH_SQLITE_MODULE: MODULE },
    });
    this.exited = new Promise((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.on('message', (answer: Answer) => this.#answer(answer));
    this.#child.on('error', (error) => this.#fail(new SqliteError(PROCESS_LOST, `The SQLite session's process failed: ${error.message}`)));
    this.#child.once('exit', (code, signal) => this.#fail(new SqliteError(PROCESS_LOST, `The SQLite session's process exited (${signal ?? `code ${code}`})`)));
    this.#idle();
  }

  /** Is the child still there to take requests? */
  get alive(): boolean {
    return this.#gone === null;
  }

  /** Sends a request; resolves with the child's answer, rejects with its error. */
  request<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    return this.#send(op, args, {}) as Promise<T>;
  }

  /** Runs a statement and hands its rows over in batches, the next asked for only after `onRows` resolves. */
  stream(args: Record<string, unknown>, onColumns: (columns: string[]) => void, onRows: (rows: unknown[][]) => Promise<void>): Promise<{ rows: number; affectedRows: number }> {
    return this.#send('stream', { ...args, batch: STREAM_BATCH }, { onColumns, onRows }) as Promise<{ rows: number; affectedRows: number }>;
  }

  #send(op: string, args: Record<string, unknown>, handlers: Pick<Pending, 'onColumns' | 'onRows'>): Promise<unknown> {
    if (this.#gone !== null) return Promise.reject(this.#gone);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, ...handlers });
      this.#busy();
      this.#post({ ...args, id, op });
    });
  }

  /** Sends a message; a channel that is gone fails every request in flight as a lost process. */
  #post(message: Record<string, unknown>): void {
    const lost = (error: Error) => this.#fail(new SqliteError(PROCESS_LOST, `Could not send to the SQLite session's process: ${error.message}`));
    if (this.#gone !== null) return;
    try {
      this.#child.send(message, (error) => {
        if (error) lost(error);
      });
    } catch (error) {
      lost(error as Error);
    }
  }

  #answer(answer: Answer): void {
    const pending = this.#pending.get(answer.id);
    if (pending === undefined) return;
    if ('columns' in answer) {
      pending.onColumns?.(answer.columns);
      return;
    }
    if ('rows' in answer) {
      const rows = answer.rows.map((row) => row.map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v)));
      void (pending.onRows?.(rows) ?? Promise.resolve()).then(
        () => this.#post({ id: answer.id, op: 'more' }),
        (error: unknown) => {
          // The rows can't be taken: the child stops reading; the stream fails with this error.
          this.#pending.delete(answer.id);
          this.#post({ id: answer.id, op: 'more', stop: true });
          this.#settled();
          pending.reject(error as Error);
        },
      );
      return;
    }
    this.#pending.delete(answer.id);
    this.#settled();
    if (answer.ok) pending.resolve(answer.value);
    else pending.reject(new SqliteError(answer.error.code, answer.error.message));
  }

  /** Rejects every request in flight with `error`; the child takes no more. */
  #fail(error: SqliteError): void {
    this.#gone ??= error;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(this.#gone);
    }
    this.#idle();
  }

  /**
   * Stops the child at once (SIGKILL), whatever it runs: its requests in flight reject with
   * `error`. Resolves when it has exited (its file locks are gone then).
   */
  kill(error: SqliteError): Promise<void> {
    this.#fail(error);
    // Waited for: the child keeps Node running until it has exited (an await on nothing would end the process).
    this.#child.ref();
    this.#child.kill('SIGKILL');
    return this.exited;
  }

  /** Closes the database and ends the child; kills it if it does not answer. */
  async close(): Promise<void> {
    if (this.#gone !== null) {
      this.#child.kill('SIGKILL');
      return;
    }
    try {
      await this.request('close');
    } catch {
      // gone already
    }
    await this.kill(new SqliteError(PROCESS_LOST, 'The SQLite session was closed'));
  }

  #settled(): void {
    if (this.#pending.size === 0) this.#idle();
  }

  /** While nothing is asked of it, the child does not keep the owner's process alive. */
  #idle(): void {
    this.#child.unref();
    (this.#child.channel as { unref?: () => void } | undefined)?.unref?.();
  }

  #busy(): void {
    this.#child.ref();
    (this.#child.channel as { ref?: () => void } | undefined)?.ref?.();
  }
}
