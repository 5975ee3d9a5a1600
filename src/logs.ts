import winston from 'winston';
import type { ResolvedConfig } from './interfaces.js';
import type { Layout } from './layout.js';
import { formatErrorLine, formatSummaryLine, type FailureEntry, type SummaryCounts } from './log-format.js';

/**
 * The run log and the error log, written through winston file transports that rotate by
 * size (querybatch.log → querybatch1.log → …, newest always in querybatch.log). Lines are
 * built by log-format.ts; winston only writes them.
 */
export class Logs {
  readonly #layout: Layout;
  readonly #config: ResolvedConfig;
  #run: winston.Logger | null = null;
  #errors: winston.Logger | null = null;

  constructor(layout: Layout, config: ResolvedConfig) {
    this.#layout = layout;
    this.#config = config;
  }

  #open(filename: string): winston.Logger {
    return winston.createLogger({
      level: 'info',
      format: winston.format.printf((info) => String(info.message)),
      transports: [
        new winston.transports.File({
          filename,
          maxsize: this.#config.logs.maxSize,
          maxFiles: this.#config.logs.maxFiles,
          tailable: true,
        }),
      ],
    });
  }

  summary(time: Date, counts: SummaryCounts): void {
    this.#run ??= this.#open(this.#layout.runLog);
    this.#run.info(formatSummaryLine(time, counts));
  }

  failure(time: Date, entry: FailureEntry): void {
    this.#errors ??= this.#open(this.#layout.errorLog);
    this.#errors.info(formatErrorLine(time, entry));
  }

  /** Flushes and closes both files; resolves once every line is on disk. */
  async close(): Promise<void> {
    const loggers = [this.#run, this.#errors].filter((l): l is winston.Logger => l !== null);
    this.#run = null;
    this.#errors = null;
    await Promise.all(loggers.map(closeLogger));
  }
}

/** winston's logger 'finish' fires before its file transports have flushed: wait for theirs. */
function closeLogger(logger: winston.Logger): Promise<void> {
  const transports = logger.transports;
  const done = Promise.all(transports.map((t) => new Promise<void>((resolve) => {
    t.once('finish', () => resolve());
    t.once('error', () => resolve());
  })));
  logger.end();
  return done.then(() => undefined);
}
