import { createRequire } from 'node:module';
import type winston from 'winston';
import type { ResolvedConfig } from '../interfaces.js';
import type { Layout } from '../spool/layout.js';
import { formatErrorLine, formatRunErrorLine, formatSummaryLine, type FailureEntry, type RunFailureEntry, type SummaryCounts } from './log-format.js';

/**
 * winston, loaded (synchronously: a log line is written from sync code) when the first log
 * file is opened: a command that writes no log (`querybatch status`, `spool`) does not load it.
 */
let winstonModule: typeof winston | undefined;
function loadWinston(): typeof winston {
  winstonModule ??= createRequire(import.meta.url)('winston') as typeof winston;
  return winstonModule;
}

/** How long close() waits for a log file to flush before giving up on it. */
const FLUSH_TIMEOUT_MS = 5_000;

interface OpenLog {
  readonly logger: winston.Logger;
  /** Set when the file could not be written (disk full, permissions): it will never flush. */
  failed: boolean;
}

/**
 * The run log and the error log, written through winston file transports that rotate by
 * size (querybatch.log → querybatch1.log → …, newest always in querybatch.log). Lines are
 * built by ops/log-format.ts; winston only writes them. A log that can't be written (disk full)
 * never blocks or fails a run: the next line opens the file again, and `lastError` says
 * what went wrong.
 */
export class Logs {
  readonly #layout: Layout;
  readonly #config: ResolvedConfig;
  #run: OpenLog | null = null;
  #errors: OpenLog | null = null;
  #closing: OpenLog[] = [];
  /** The last error writing a log file, if any. */
  lastError: Error | null = null;

  constructor(layout: Layout, config: ResolvedConfig) {
    this.#layout = layout;
    this.#config = config;
  }

  #open(filename: string): OpenLog {
    const winston = loadWinston();
    const transport = new winston.transports.File({
      filename,
      maxsize: this.#config.logs.maxSize,
      maxFiles: this.#config.logs.maxFiles,
      tailable: true,
      options: { flags: 'a', mode: 0o640 }, // the error log holds SQL
    });
    const log: OpenLog = {
      logger: winston.createLogger({ level: 'info', format: winston.format.printf((info) => String(info.message)), transports: [transport] }),
      failed: false,
    };
    const onError = (error: Error) => {
      this.lastError = error;
      if (log.failed) return;
      log.failed = true;
      // Open afresh for the next line; this one is closed and forgotten.
      if (this.#run === log) this.#run = null;
      if (this.#errors === log) this.#errors = null;
      this.#closing.push(log);
    };
    transport.on('error', onError);
    log.logger.on('error', onError);
    // winston's File transport only debug-logs errors of the file stream it writes to (disk
    // full, EIO): listen on that stream itself, or a failed log would hang close() and be
    // silently lost.
    transport.on('open', () => {
      (transport as unknown as { _dest?: NodeJS.EventEmitter })._dest?.on('error', onError);
    });
    return log;
  }

  summary(time: Date, counts: SummaryCounts): void {
    this.#run ??= this.#open(this.#layout.runLog);
    this.#run.logger.info(formatSummaryLine(time, counts));
  }

  failure(time: Date, entry: FailureEntry): void {
    this.#errors ??= this.#open(this.#layout.errorLog);
    this.#errors.logger.info(formatErrorLine(time, entry));
  }

  /** A run that stopped on file I/O, in the error log. */
  runFailure(time: Date, entry: RunFailureEntry): void {
    this.#errors ??= this.#open(this.#layout.errorLog);
    this.#errors.logger.info(formatRunErrorLine(time, entry));
  }

  /** Flushes and closes both files; resolves once every line is on disk (or the file failed). */
  async close(): Promise<void> {
    const logs = [this.#run, this.#errors, ...this.#closing].filter((l): l is OpenLog => l !== null);
    this.#run = null;
    this.#errors = null;
    this.#closing = [];
    await Promise.all(logs.map(closeLog));
  }
}

/** winston's logger 'finish' fires before its file transports have flushed: wait for theirs. */
function closeLog(log: OpenLog): Promise<void> {
  const flushed = log.failed
    ? Promise.resolve()
    : Promise.all(log.logger.transports.map((t) => new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      t.once('finish', done);
      t.once('error', done);
      t.once('close', done);
    })));
  log.logger.end();
  return flushed.then(() => undefined);
}
