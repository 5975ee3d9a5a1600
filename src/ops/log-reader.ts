import { createReadStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import fs from 'node:fs';
import { QueryBatchError } from '../errors.js';
import type { LastRunLine } from '../interfaces.js';
import type { Layout } from '../spool/layout.js';
import { parseErrorLine, parseSummaryLine, type FailureEntry } from './log-format.js';

/**
 * Reading the logs back: both files and their rotated predecessors, oldest first, parsed
 * with ops/log-format.ts, filtered; and following them as they grow.
 */
export interface RunLogRecord extends LastRunLine {
  readonly log: 'run';
}

/** An error-log line read back: the failure entry it was written from, with its time. */
export interface ErrorLogRecord extends FailureEntry {
  readonly log: 'error';
  readonly time: string;
}

export type LogRecord = RunLogRecord | ErrorLogRecord;

export interface LogEntry {
  readonly record: LogRecord;
  /** The line as written (already safe to print: free text in it is JSON-quoted). */
  readonly line: string;
}

export interface LogFilter {
  /** Only the error log (default: both, in time order). */
  readonly errors?: boolean;
  readonly since?: Date;
  readonly until?: Date;
  /** Only error lines of this datasource (run summaries have none, so they are left out). */
  readonly datasource?: string;
  /** Only the last N entries. */
  readonly tail?: number;
}

/** A line of either log as a typed record; null for anything else. Pure. */
export function parseLogLine(line: string): LogRecord | null {
  const run = parseSummaryLine(line);
  if (run) return { log: 'run', ...run };
  const e = parseErrorLine(line);
  if (!e) return null;
  const orNull = (v: string | undefined) => (v === undefined || v === '-' ? null : v);
  return {
    log: 'error',
    time: e.time,
    class: e.class!,
    id: orNull(e.id),
    file: e.file ?? '',
    datasource: orNull(e.datasource),
    code: e.code ?? '',
    ...(e.errno !== undefined && { errno: Number(e.errno) }),
    ...(e.attempts !== undefined && { attempts: Number(e.attempts) }),
    moved: e.moved ?? '',
    message: e.message ?? '',
    ...(e.sql !== undefined && { sql: e.sql }),
    ...(e.sqlBytes !== undefined && { sqlBytes: Number(e.sqlBytes) }),
    ...(e.params !== undefined && { params: e.params }),
  };
}

/** Does a record pass the filter (all but tail)? Pure. */
export function matches(record: LogRecord, filter: LogFilter): boolean {
  if (filter.errors && record.log !== 'error') return false;
  if (filter.datasource !== undefined && (record.log !== 'error' || record.datasource !== filter.datasource)) return false;
  const t = Date.parse(record.time);
  if (filter.since && !(t >= filter.since.getTime())) return false;
  if (filter.until && !(t <= filter.until.getTime())) return false;
  return true;
}

/**
 * A time given on the command line: an ISO 8601 date or time (`2026-11-23`,
 * `2026-11-23T10:00:00Z`), or an age like `90s`, `15m`, `2h`, `7d` (that long before `now`).
 * Throws CONFIG_INVALID. Pure.
 */
export function parseTime(value: string, what: string, now = Date.now()): Date {
  const age = /^(\d+)\s*(s|m|h|d)$/.exec(value.trim());
  if (age) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now - Number(age[1]) * unit);
  }
  if (/^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$/.test(value.trim())) {
    const t = Date.parse(value.trim());
    if (Number.isFinite(t)) return new Date(t);
  }
  throw new QueryBatchError('CONFIG_INVALID', `Expected ${what} to be an ISO time like 2026-11-23T10:00:00Z or an age like 15m, 2h, 7d; got ${JSON.stringify(value)}`);
}

/** The files of one log, oldest first: querybatchN.log … querybatch1.log, then querybatch.log. */
export async function logFiles(current: string): Promise<string[]> {
  const dir = dirname(current);
  const stem = basename(current, '.log');
  const pattern = new RegExp(`^${stem.replace(/[-.]/g, '\\$&')}(\\d*)\\.log$`);
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  return names
    .map((name) => ({ name, m: pattern.exec(name) }))
    .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
    .sort((a, b) => Number(b.m[1] || 0) - Number(a.m[1] || 0))
    .map((x) => join(dir, x.name));
}

async function* linesOf(path: string): AsyncGenerator<string> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of lines) yield line;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  } finally {
    lines.close();
    stream.destroy();
  }
}

/** The logs a filter reads: the error log alone with `errors`, else both. */
function logsOf(layout: Layout, filter: LogFilter): string[] {
  return filter.errors ? [layout.errorLog] : [layout.runLog, layout.errorLog];
}

/** A log line as an entry, or null when it is not a log line or does not pass the filter. */
function entryOf(line: string, filter: LogFilter): LogEntry | null {
  const record = parseLogLine(line);
  return record && matches(record, filter) ? { record, line } : null;
}

/**
 * The entries of the logs that pass the filter, in time order (both logs merged unless
 * `errors`). With `tail`, only the last N are kept in memory.
 */
export async function readLogs(layout: Layout, filter: LogFilter = {}): Promise<LogEntry[]> {
  const logs = logsOf(layout, filter);
  let out: LogEntry[] = [];
  for (const log of logs) {
    const kept: LogEntry[] = [];
    for (const file of await logFiles(log)) {
      for await (const line of linesOf(file)) {
        const entry = entryOf(line, filter);
        if (!entry) continue;
        kept.push(entry);
        if (filter.tail !== undefined && kept.length > filter.tail) kept.shift();
      }
    }
    out = out.concat(kept);
  }
  if (logs.length > 1) out.sort((a, b) => Date.parse(a.record.time) - Date.parse(b.record.time)); // stable: each log stays in its order
  return filter.tail !== undefined ? out.slice(Math.max(0, out.length - filter.tail)) : out;
}

/** How often followLogs looks at the files. */
const FOLLOW_INTERVAL_MS = 200;

/** Time order; at the same time an error line before a summary (a run's summary is written after its failures). */
function byTime(a: LogEntry, b: LogEntry): number {
  return Date.parse(a.record.time) - Date.parse(b.record.time) || (a.record.log === 'run' ? 1 : 0) - (b.record.log === 'run' ? 1 : 0);
}

/**
 * The entries of both logs in time order as they are followed. The two files are written
 * by separate streams, so a run's error line may reach its file after the run's summary
 * reached the other: a summary waits one poll, with whatever is not older than it, so the
 * error lines of its run are read first. Pure (no timers: `take` is called once per poll).
 */
export class FollowMerge {
  #held: LogEntry[] = [];

  /** This poll's new entries in; what can be handed out now, in time order. */
  take(fresh: readonly LogEntry[]): LogEntry[] {
    const pool = [...this.#held, ...fresh].sort(byTime);
    const summaries = fresh.filter((e) => e.record.log === 'run').map((e) => Date.parse(e.record.time));
    const cutoff = summaries.length > 0 ? Math.min(...summaries) : Infinity;
    const ready = pool.filter((e) => Date.parse(e.record.time) < cutoff);
    this.#held = pool.filter((e) => !(Date.parse(e.record.time) < cutoff));
    return ready;
  }

  /** Everything still held, in time order. */
  flush(): LogEntry[] {
    const held = this.#held;
    this.#held = [];
    return held;
  }
}

/**
 * Calls `onEntry` for every new line that passes the filter, written to the logs after the
 * call, until `signal` aborts; both logs merged in time order (FollowMerge: a run's error
 * lines before its summary). Each file is followed through an open descriptor, as
 * `tail -F` does: when the name points to a new file (rotation), the rest of the old one is
 * read first, so no line written just before a rotation is missed.
 */
export async function followLogs(layout: Layout, filter: LogFilter, onEntry: (entry: LogEntry) => void, signal: AbortSignal): Promise<void> {
  const files = logsOf(layout, filter);
  interface Followed { handle: fs.promises.FileHandle | null; ino: number; offset: number; rest: string; decoder: StringDecoder }
  const state = new Map<string, Followed>();
  const merge = new FollowMerge();
  let fresh: LogEntry[] = [];
  const emit = (line: string): void => {
    const entry = entryOf(line, filter);
    if (entry) fresh.push(entry);
  };

  /** Reads what the open file has past `offset` and hands out its complete lines. */
  const drain = async (f: Followed): Promise<void> => {
    if (!f.handle) return;
    const { size } = await f.handle.stat();
    if (size < f.offset) {
      f.offset = 0; // truncated in place
      f.rest = '';
      f.decoder = new StringDecoder('utf8');
    }
    if (size === f.offset) return;
    const buffer = Buffer.alloc(size - f.offset);
    const { bytesRead } = await f.handle.read(buffer, 0, buffer.length, f.offset);
    f.offset += bytesRead;
    const lines = (f.rest + f.decoder.write(buffer.subarray(0, bytesRead))).split('\n');
    f.rest = lines.pop() ?? '';
    for (const line of lines) emit(line);
  };

  /** Opens the file now at `path` (null when there is none); `atEnd`: skip what it holds. */
  const open = async (path: string, atEnd: boolean): Promise<Followed> => {
    const handle = await fs.promises.open(path, 'r').catch(() => null);
    const st = handle ? await handle.stat() : null;
    return { handle, ino: st?.ino ?? -1, offset: atEnd ? (st?.size ?? 0) : 0, rest: '', decoder: new StringDecoder('utf8') };
  };

  for (const file of files) state.set(file, await open(file, true));

  const poll = async (): Promise<void> => {
    for (const file of files) {
      let f = state.get(file)!;
      const ino = (await fs.promises.stat(file).catch(() => null))?.ino ?? -1;
      if (ino !== f.ino) {
        // Rotated (or created): finish the old file, then follow the new one from its start.
        await drain(f);
        if (f.rest !== '') emit(f.rest);
        await f.handle?.close();
        f = await open(file, false);
        state.set(file, f);
      }
      await drain(f);
    }
    const ready = merge.take(fresh);
    fresh = [];
    for (const entry of ready) onEntry(entry);
  };

  try {
    while (!signal.aborted) {
      await poll();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, FOLLOW_INTERVAL_MS);
        signal.addEventListener('abort', done, { once: true });
        function done(): void {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
      });
    }
    for (const entry of merge.flush()) onEntry(entry);
  } finally {
    for (const f of state.values()) await f.handle?.close().catch(() => {});
  }
}

/** How much tailEntries reads at a time, from the end back. */
const TAIL_CHUNK = 64 * 1024;

/**
 * The last `n` entries of one log file that pass the filter, read from its end backwards a
 * chunk at a time: a long log costs what its last lines cost, not the whole file (readLogs
 * reads every line, rotated files too). Only the current file, not its rotated
 * predecessors: right after a rotation it may hold fewer than `n`.
 */
export async function tailEntries(path: string, n: number, filter: LogFilter = {}): Promise<LogEntry[]> {
  const handle = await fs.promises.open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (handle === null || n <= 0) {
    await handle?.close();
    return [];
  }
  try {
    let end = (await handle.stat()).size;
    let carry = Buffer.alloc(0);
    const found: LogEntry[] = [];
    while (end > 0 && found.length < n) {
      const start = Math.max(0, end - TAIL_CHUNK);
      const chunk = Buffer.alloc(end - start);
      await handle.read(chunk, 0, chunk.length, start);
      let text = Buffer.concat([chunk, carry]);
      // The first line of a chunk may be cut: carry it to the next (earlier) read, unless at the start of the file.
      const nl = start > 0 ? text.indexOf(0x0a) : -1;
      carry = nl >= 0 ? text.subarray(0, nl) : start > 0 ? text : Buffer.alloc(0);
      text = nl >= 0 ? text.subarray(nl + 1) : start > 0 ? Buffer.alloc(0) : text;
      const lines = text.toString('utf8').split('\n');
      for (let i = lines.length - 1; i >= 0 && found.length < n; i--) {
        const entry = entryOf(lines[i]!, filter);
        if (entry) found.push(entry);
      }
      end = start;
    }
    return found.reverse();
  } finally {
    await handle.close();
  }
}
