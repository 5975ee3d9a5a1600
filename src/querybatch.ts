import { resolveConfig } from './config.js';
import type { Driver } from './driver.js';
import { DirSyncer } from './durable.js';
import { QueryBatchError } from './errors.js';
import type { QueryBatchOptions, ResolvedConfig, RunOptions, RunSummary, SpoolOptions, StatusReport } from './interfaces.js';
import { ensureLayout, layoutOf, type Layout } from './layout.js';
import { Logs } from './logs.js';
import { MysqlDriver } from './mysql-driver.js';
import { runBatch } from './runner.js';
import { runnerName } from './claims.js';
import type { Params } from './spool-file.js';
import { SpoolWriter } from './spool-writer.js';
import { spoolStatus } from './status.js';

/**
 * The in-process guard: runs on one home never overlap within a process, even from two
 * QueryBatch instances (they share this process's runner name, so their claims would mix).
 */
const runsByHome = new Map<string, Promise<unknown>>();

async function oneRunAtATime<T>(home: string, run: () => Promise<T>): Promise<T> {
  const previous = runsByHome.get(home);
  const mine = (async () => {
    await previous?.catch(() => {});
    return run();
  })();
  runsByHome.set(home, mine);
  try {
    return await mine;
  } finally {
    if (runsByHome.get(home) === mine) runsByHome.delete(home);
  }
}

/**
 * The library's entry point: spool() writes a job durably and returns its id; run()
 * executes everything waiting; status() tells what is pending, failed and last run.
 *
 * ```ts
 * const qb = new QueryBatch({ home, datasources: { main: { url: 'mysql://root@127.0.0.1:3306/test' } } });
 * const id = await qb.spool('INSERT INTO t (a, b) VALUES (?, ?)', [1, 'x']);
 * const summary = await qb.run();
 * await qb.close();
 * ```
 */
export class QueryBatch {
  readonly config: ResolvedConfig;
  readonly layout: Layout;
  /** This process's runner name, host.pid.starttime (its claims live in spool/.active/<name>/). */
  readonly runnerName = runnerName();
  readonly #syncer = new DirSyncer();
  readonly #writer: SpoolWriter;
  readonly #logs: Logs;
  readonly #drivers = new Map<string, Driver>();
  #ready: Promise<void> | null = null;
  #running: Promise<RunSummary> | null = null;
  #closing: Promise<void> | null = null;

  /** Resolves the options (reading `<home>/querybatch.config.json`); throws a QueryBatchError when they are not usable. */
  constructor(options: QueryBatchOptions = {}) {
    this.config = resolveConfig(options);
    this.layout = layoutOf(this.config.home);
    this.#writer = new SpoolWriter(this.layout, this.config, this.#syncer);
    this.#logs = new Logs(this.layout, this.config);
  }

  #open(): Promise<void> {
    if (this.#closing) return Promise.reject(new QueryBatchError('CLOSED', 'Expected an open QueryBatch; this one was closed'));
    this.#ready ??= ensureLayout(this.layout).catch((error: unknown) => {
      this.#ready = null;
      throw error;
    });
    return this.#ready;
  }

  /**
   * Writes a statement to the spool and resolves with its id once it is on disk (fsynced,
   * unless `durability: 'none'`). Rejects with a QueryBatchError (EMPTY_SQL,
   * UNKNOWN_DATASOURCE, UNSERIALIZABLE_PARAM, SQL_TOO_LARGE, PARAMS_TOO_LARGE,
   * SPOOL_WRITE_FAILED) and then nothing was written.
   */
  async spool(sql: string, params?: Params, options?: SpoolOptions): Promise<string> {
    await this.#open();
    return this.#writer.spool(sql, params, options);
  }

  /**
   * Executes everything waiting, serially and in FIFO order per datasource. A call while
   * this instance has a run in flight joins that run; a run of another instance on the
   * same home in this process waits for that one to finish.
   */
  run(options: RunOptions = {}): Promise<RunSummary> {
    this.#running ??= (async () => {
      try {
        await this.#open();
        return await oneRunAtATime(this.layout.home, () => runBatch({
          layout: this.layout,
          config: this.config,
          writer: this.#writer,
          syncer: this.#syncer,
          logs: this.#logs,
          name: this.runnerName,
          driver: (name) => this.#driver(name),
        }, options));
      } finally {
        this.#running = null;
      }
    })();
    return this.#running;
  }

  /** Pending jobs per datasource, failed files, the last run's summary. */
  async status(): Promise<StatusReport> {
    await this.#open();
    return spoolStatus(this.layout, this.config);
  }

  #driver(name: string): Driver {
    let driver = this.#drivers.get(name);
    if (!driver) {
      const ds = Object.hasOwn(this.config.datasources, name) ? this.config.datasources[name] : undefined;
      if (!ds) throw new QueryBatchError('UNKNOWN_DATASOURCE', `Expected a configured datasource; got ${JSON.stringify(name)}`);
      driver = new MysqlDriver(ds.url, ds.options);
      this.#drivers.set(name, driver);
    }
    return driver;
  }

  /** Waits for a run in flight, closes the connection pools and flushes the logs. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#running?.catch(() => {});
      await Promise.all([...this.#drivers.values()].map((d) => d.close().catch(() => {})));
      this.#drivers.clear();
      await this.#logs.close();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
