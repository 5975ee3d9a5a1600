import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { resolveConfig } from './config.js';
import type { Driver, Session } from './db/driver.js';
import { DirSyncer } from './spool/durable.js';
import { QueryBatchError, withCode } from './errors.js';
import type { JobStatus, QueryBatchOptions, ResolvedConfig, RunOptions, RunSummary, SpoolOptions, StatusReport } from './interfaces.js';
import { ensureMarkerDirs } from './spool/priority.js';
import { ensureDelayedDir, nextDue } from './spool/delayed.js';
import { KEY_GRACE_MS, pruneKeys } from './spool/keys.js';
import { isId } from './spool/id.js';
import { pauseDatasource, resumeDatasource } from './spool/paused.js';
import type { CancelResult } from './ops/cancel.js';
import type { ResultManifest, ResultPage } from './ops/results.js';
import { OutcomeLog, type Outcome } from './ops/outcomes.js';
import { WebhookNotifier, type DeliveryFailure } from './ops/webhooks.js';
import { ensureLayout, layoutOf, type Layout } from './spool/layout.js';
import { Logs } from './ops/logs.js';
import { loadDriverFactory, type DriverFactory } from './db/registry.js';
import { runnerName } from './run/recovery.js';
import { KeptHolds } from './run/kept-holds.js';
import type { Params, SpoolRecord } from './spool/record.js';
import { SpoolWriter } from './spool/writer.js';
import { spoolStatus } from './ops/status.js';
import type { DeleteFailedResult, FailedFile, FailedFileDetail, RespoolResult, RespoolSelection } from './ops/failed-files.js';
import type { LogEntry, LogFilter } from './ops/log-reader.js';
import type { ScheduleHandle, ScheduleHooks } from './daemon/schedule.js';
import type { ScheduleOptions } from './interfaces.js';
import { checkCron, checkTimezone } from './config.js';
import type { DashboardHandle, ServeDashboardOptions } from './http/server.js';

// A run, failed/, the logs, captured results, cancel, the schedule and the dashboard are
// imported by the methods that use them (`await import()`): `querybatch status` or `spool`
// loads none of them, nor the database clients (db/lazy-driver.ts).

/** How long to wait before asking again for a job whose outcome may not be written yet (outcomes are flushed within 100 ms). */
const OUTCOME_SETTLE_MS = 300;

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

/** The events a QueryBatch emits, with their arguments. */
export interface QueryBatchEvents {
  /** A run began. */
  'run:start': [{ readonly runner: string; readonly startedAt: string }];
  /** A run ended (also when it had failures). */
  'run:end': [RunSummary];
  /** A job's statement committed (its file is removed right after). */
  succeeded: [Outcome];
  /** A job moved to failed/ (SQL error, last connection attempt, or not a valid file). */
  failed: [Outcome];
  /** A webhook delivery was given up on after its last try. */
  'webhook:failed': [DeliveryFailure];
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
export class QueryBatch extends EventEmitter<QueryBatchEvents> {
  readonly config: ResolvedConfig;
  readonly layout: Layout;
  /** This process's runner name, host.pid.starttime (its claims live in spool/.active/<name>/). */
  readonly runnerName = runnerName();
  readonly #syncer = new DirSyncer();
  readonly #writer: SpoolWriter;
  readonly #logs: Logs;
  readonly #drivers = new Map<string, Driver>();
  /** Each datasource's DriverFactory, loaded by #loadDriverFactories() before a run. */
  readonly #factories = new Map<string, DriverFactory>();
  readonly #outcomes: OutcomeLog;
  readonly #webhooks: WebhookNotifier;
  /** Datasource locks kept between continuous runs (RunOptions.keepLockMs; run/kept-holds.ts). */
  readonly #kept = new KeptHolds();
  #ready: Promise<void> | null = null;
  #running: Promise<RunSummary> | null = null;
  /** The run in flight was started without options (so a call without options can join it). */
  #runningPlain = false;
  /** The run that calls without options, made while a run with options was in flight, wait for. */
  #queuedPlain: Promise<RunSummary> | null = null;
  #closing: Promise<void> | null = null;
  #schedule: ScheduleHandle | null = null;

  /** Resolves the options (reading `<home>/querybatch.config.json`); throws a QueryBatchError when they are not usable. */
  constructor(options: QueryBatchOptions = {}) {
    super();
    this.config = resolveConfig(options);
    this.layout = layoutOf(this.config.home);
    this.#logs = new Logs(this.layout, this.config);
    this.#outcomes = new OutcomeLog(this.layout.outcomesDir, this.config.retentionMs);
    this.#writer = new SpoolWriter(this.layout, this.config, this.#syncer, (id, ageMs, datasource) => this.#keyHeld(id, ageMs, datasource));
    this.#webhooks = new WebhookNotifier(this.config.webhooks, (failure) => this.#emitSafely('webhook:failed', failure));
  }

  /**
   * Whether the job a key's marker names still holds the key (spool/keys.ts): while it is
   * delayed, queued, running or in failed/, and for keyRetentionMs after it succeeded. A
   * cancelled job, or a failed one whose file left failed/, gives its key back. A job that
   * can't be found holds it while the marker is young (it may be being written); after that
   * it is asked again once the runner's outcomes have surely been written (they are flushed
   * within about 100 ms); then, with the ledger, the ledger says (#keyInLedger: a runner
   * killed between a job's COMMIT and its outcome record, or an outcome pruned before
   * keyRetentionMs), and without it the key is released.
   */
  async #keyHeld(id: string, markerAgeMs: number, datasource: string): Promise<boolean> {
    if (!isId(id)) return false;
    const { jobStatus } = await import('./ops/job-status.js');
    for (let look = 0; ; look++) {
      const status = await jobStatus(this.layout, this.config, this.#outcomes, id);
      switch (status.state) {
        case 'delayed':
        case 'queued':
        case 'running':
          return true;
        case 'failed':
          return status.file !== null;
        case 'succeeded':
          return Date.now() - Date.parse(status.finishedAt) < this.config.keyRetentionMs;
        case 'cancelled':
          return false;
        case 'unknown':
          if (markerAgeMs < KEY_GRACE_MS) return true;
          if (look > 0) return this.#keyInLedger(id, datasource);
          await new Promise((resolve) => setTimeout(resolve, OUTCOME_SETTLE_MS));
      }
    }
  }

  /**
   * Whether the ledger of `datasource` remembers that keyed job `id` committed less than
   * keyRetentionMs ago (its key row, db/driver.ts keyLedgerId): one round trip, the driver
   * loaded only now. False for a datasource without the ledger. Rejects with KEY_UNVERIFIED
   * when the database can't be asked: a key is never given away on a guess (the job may have
   * run), and holding it on a guess would return the id of a job that may never run.
   */
  async #keyInLedger(id: string, datasource: string): Promise<boolean> {
    const ds = Object.hasOwn(this.config.datasources, datasource) ? this.config.datasources[datasource]! : null;
    if (ds === null || ds.ledger === null) return false;
    let session: Session | null = null;
    try {
      // This datasource's driver only (another's client may not even be installed).
      if (!this.#factories.has(datasource)) this.#factories.set(datasource, await loadDriverFactory(ds.url, datasource));
      session = await this.#driver(datasource).connect();
      const held = await session.keyRemembered(id, this.config.keyRetentionMs);
      session.release();
      return held;
    } catch (error) {
      session?.destroy();
      throw new QueryBatchError('KEY_UNVERIFIED', `Expected to ask the ledger of datasource "${datasource}" whether job ${id}, which took this key, committed (its outcome is no longer known); the database could not be asked (${withCode(error)}): nothing was spooled, try again once it is reachable`, { cause: error });
    }
  }

  /** A finished job: remembered for status(id), emitted, and sent to its webhook if it has one. */
  #finished(outcome: Outcome, record: SpoolRecord | null): void {
    this.#outcomes.record(outcome);
    const ds = Object.hasOwn(this.config.datasources, outcome.datasource) ? this.config.datasources[outcome.datasource] : undefined;
    const url = record?.webhook ?? ds?.webhook ?? null;
    if (url !== null) this.#webhooks.send(url, outcome);
    this.#emitSafely(outcome.status, outcome);
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
   * unless `durability: 'none'`). With `key`, while a job holds that key (docs/api.md#idempotency-keys)
   * nothing is written and that job's id is returned. With `runAt`/`delayMs` the job waits
   * in spool/.delayed/ until it is due (docs/api.md#delayed-jobs). Rejects with a QueryBatchError (EMPTY_SQL,
   * UNKNOWN_DATASOURCE, UNSERIALIZABLE_PARAM, SQL_TOO_LARGE, PARAMS_TOO_LARGE,
   * SPOOL_WRITE_FAILED) and then nothing was written.
   */
  async spool(sql: string, params?: Params, options?: SpoolOptions): Promise<string> {
    await this.#open();
    return this.#writer.spool(sql, params, options);
  }

  /**
   * Writes an SQL script (several statements: a dump, a migration) to the spool as one job
   * and resolves with its id once it is on disk. It is split client-side (quotes, comments,
   * versioned comments, DELIMITER) and its statements run in order on one connection, each
   * exactly once with the ledger, resuming after the last committed one after a crash or a
   * respool (docs/guarantees.md). Rejects with EMPTY_SQL (no statement), SQL_TOO_LARGE
   * (over limits.maxScriptBytes), UNKNOWN_DATASOURCE, CONFIG_INVALID, SPOOL_WRITE_FAILED.
   * `text` may be a readable stream of the script's UTF-8 text (standard input).
   */
  async spoolScript(text: string | NodeJS.ReadableStream, options?: SpoolOptions): Promise<string> {
    await this.#open();
    // A stream (standard input) is copied to a temp file first, then read like a file.
    return typeof text === 'string' ? this.#writer.spoolScript({ text }, options) : this.#writer.spoolScriptStream(text, options);
  }

  /**
   * spoolScript() of a file, streamed (read twice: to hash and count it, then to copy it;
   * never whole in memory), up to limits.maxScriptBytes.
   */
  async spoolScriptFile(path: string, options?: SpoolOptions): Promise<string> {
    await this.#open();
    return this.#writer.spoolScriptFile(path, options);
  }

  /**
   * Executes everything waiting, serially and in FIFO order per datasource. A call without
   * options while this instance has a run without options in flight joins that run; any
   * other call waits for the run in flight, then runs with its own options. A run of another
   * instance on the same home in this process waits for that one to finish.
   */
  run(options: RunOptions = {}): Promise<RunSummary> {
    const plain = options.datasource === undefined && options.limit === undefined && options.signal === undefined && options.onProgress === undefined;
    if (this.#running !== null) {
      if (plain && this.#runningPlain) return this.#running;
      const after = this.#running.catch(() => {});
      if (!plain) return after.then(() => this.run(options));
      // Calls without options waiting for the same run share the next one.
      this.#queuedPlain ??= after.then(() => {
        this.#queuedPlain = null;
        return this.run();
      });
      return this.#queuedPlain;
    }
    this.#runningPlain = plain;
    this.#running = this.#runBatch(options).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** A run; `events: false` for the watcher's queue-only pass (it runs nothing: no run:start/run:end). */
  async #runBatch(options: RunOptions, events = true): Promise<RunSummary> {
    await this.#open();
    const [{ pruneResults }, { runBatch }] = await Promise.all([import('./ops/results.js'), import('./run/run-batch.js'), this.#loadDriverFactories()]);
    // Expired results go with each real run, not with every queue-only pass of the watcher
    // nor with continuous mode's runs (upkeep: false).
    const upkeep = events && options.upkeep !== false;
    if (upkeep) await pruneResults(this.layout.resultsDir, this.config.retentionMs).catch(() => {});
    // Key markers whose keys are free again go too (at most every 10 minutes).
    if (upkeep) await pruneKeys(this.layout, (id, ageMs, datasource) => this.#keyHeld(id, ageMs, datasource), this.config.keyRetentionMs).catch(() => {}); // tried again by a later run
    const summary = await oneRunAtATime(this.layout.home, () => {
      if (events) this.#emitSafely('run:start', { runner: this.runnerName, startedAt: new Date().toISOString() });
      return runBatch({
        layout: this.layout,
        config: this.config,
        writer: this.#writer,
        syncer: this.#syncer,
        logs: this.#logs,
        name: this.runnerName,
        driver: (name) => this.#driver(name),
        kept: this.#kept,
        onOutcome: (outcome, record) => this.#finished(outcome, record),
      }, options);
    });
    if (events) this.#emitSafely('run:end', summary);
    return summary;
  }

  /**
   * Starts the schedule: a run `schedule.startDelayMs` after start and then on the cron
   * expression (default every 5 minutes), never two at once, plus the drop-in watcher.
   * `options` override the configured `schedule`. Resolves with the handle once the
   * watcher is watching; a second call returns the same handle.
   */
  async start(options: ScheduleOptions & ScheduleHooks = {}): Promise<ScheduleHandle> {
    await this.#open();
    // node-cron and chokidar are loaded here, not when querybatch is imported.
    const { startSchedule } = await import('./daemon/schedule.js');
    if (this.#closing) throw new QueryBatchError('CLOSED', 'Expected an open QueryBatch; this one was closed');
    if (!this.#schedule) {
      // The watcher sees markers written into directories that exist when it starts; one that
      // appears later, with its first marker, can be missed by chokidar (daemon/watcher.ts).
      await ensureMarkerDirs(this.layout, Object.keys(this.config.datasources));
      await ensureDelayedDir(this.layout);
      const { onRun, onError, ...overrides } = options;
      const schedule = {
        ...this.config.schedule,
        ...overrides,
        ...(overrides.cron !== undefined && { cron: checkCron(overrides.cron, 'cron') }),
        ...(overrides.timezone !== undefined && { timezone: overrides.timezone === null ? null : checkTimezone(overrides.timezone) }),
      };
      this.#schedule = startSchedule({
        spoolDir: this.layout.spoolDir,
        settleMs: this.config.dropInSettleMs,
        schedule,
        datasources: Object.keys(this.config.datasources),
        run: (runOptions) => this.run(runOptions),
        // Queues drop-ins and runs nothing (limit 0). Not through run(): a run() called
        // meanwhile must not join this pass and come back having executed nothing.
        adopt: (signal) => this.#runBatch({ limit: 0, signal }, false),
        nextDue: () => nextDue(this.layout, Object.keys(this.config.datasources)),
      }, { ...(onRun && { onRun }), ...(onError && { onError }) });
    }
    await this.#schedule.ready;
    return this.#schedule;
  }

  /**
   * Stops the schedule started by start() (the statement in flight finishes, the rest stays in
   * spool) and gives back the datasource locks continuous mode kept. Idempotent.
   */
  async stop(): Promise<void> {
    const schedule = this.#schedule;
    await schedule?.stop();
    if (this.#schedule === schedule) this.#schedule = null;
    await this.#kept.release();
  }

  /** The files in failed/, oldest job first, with class, id, datasource, age, attempts and last error. */
  async failed(): Promise<FailedFile[]> {
    await this.#open();
    const { listFailed } = await import('./ops/failed-files.js');
    return listFailed(this.layout, this.config);
  }

  /** One file of failed/ with its SQL and full error; param values only with `showParams`. Throws FAILED_FILE_NOT_FOUND. */
  async failedFile(name: string, options: { showParams?: boolean } = {}): Promise<FailedFileDetail> {
    await this.#open();
    const { showFailed } = await import('./ops/failed-files.js');
    return showFailed(this.layout, this.config, name, options.showParams ?? false);
  }

  /**
   * Moves failed files back into the spool with their original id and the attempt count
   * reset; they run in their original order. Throws CONFIG_INVALID (nothing moved) for a
   * name outside failed/.
   */
  async respool(selection: RespoolSelection): Promise<RespoolResult> {
    await this.#open();
    const { respoolFailed } = await import('./ops/failed-files.js');
    return oneRunAtATime(this.layout.home, () => respoolFailed({
      layout: this.layout,
      config: this.config,
      writer: this.#writer,
      syncer: this.#syncer,
      runner: this.runnerName,
    }, selection));
  }

  /**
   * Serves the dashboard's pages, /metrics (Prometheus) and /healthz over HTTP (docs/dashboard.md); the run
   * counters are fed by this instance's runs. Binds 127.0.0.1:9464 by default; another host
   * needs a token (DASHBOARD_TOKEN_REQUIRED). Close the handle to stop it (close() does not).
   */
  async serveDashboard(options: ServeDashboardOptions = {}): Promise<DashboardHandle> {
    await this.#open();
    // hono and prom-client are loaded here, not when querybatch is imported.
    const { serveDashboard } = await import('./http/server.js');
    return serveDashboard({ layout: this.layout, config: this.config, events: this, ops: this }, options);
  }

  /**
   * Deletes files in failed/ by name (and the reason kept beside each); reports what it
   * deleted and what it skipped and why. Throws CONFIG_INVALID (nothing deleted) for a name
   * outside failed/.
   */
  async deleteFailed(names: readonly string[]): Promise<DeleteFailedResult> {
    await this.#open();
    const { deleteFailed } = await import('./ops/failed-files.js');
    return deleteFailed(this.layout, this.#syncer, names);
  }

  /**
   * Pauses a datasource, durably (spool/.paused/<name>): runs, the daemon's too, skip it
   * (its summary says `paused: true`) and never connect for it; spool() keeps accepting its
   * jobs. Pausing a paused one is fine. Throws UNKNOWN_DATASOURCE.
   */
  async pause(datasource: string): Promise<void> {
    await this.#open();
    await pauseDatasource(this.layout, this.#configured(datasource), this.#syncer);
  }

  /** Resumes a paused datasource (the next run drains it); resuming one that is not paused is fine. Throws UNKNOWN_DATASOURCE. */
  async resume(datasource: string): Promise<void> {
    await this.#open();
    await resumeDatasource(this.layout, this.#configured(datasource), this.#syncer);
  }

  /**
   * Removes a queued job from the spool; `status(id)` then says `cancelled` and the error log
   * has a `cancelled` line. Throws JOB_NOT_CANCELLABLE when it is running (claimed by a
   * runner), finished, failed or unknown, and INVALID_ID for a non-id.
   */
  async cancel(id: string): Promise<CancelResult> {
    await this.#open();
    const { cancelJob } = await import('./ops/cancel.js');
    return cancelJob({ layout: this.layout, config: this.config, syncer: this.#syncer, outcomes: this.#outcomes, logs: this.#logs, runner: this.runnerName }, id);
  }

  /** `name` when it is a configured datasource; throws UNKNOWN_DATASOURCE. */
  #configured(name: string): string {
    if (typeof name !== 'string' || !Object.hasOwn(this.config.datasources, name)) {
      throw new QueryBatchError('UNKNOWN_DATASOURCE', `Expected a configured datasource (${Object.keys(this.config.datasources).join(', ') || 'none are configured'}); got ${JSON.stringify(name)}`);
    }
    return name;
  }

  /** Entries of the run and error logs (rotated files included), oldest first, filtered. */
  async logs(filter: LogFilter = {}): Promise<LogEntry[]> {
    await this.#open();
    const { readLogs } = await import('./ops/log-reader.js');
    return readLogs(this.layout, filter);
  }

  /** Calls `onEntry` for each new log entry that passes the filter until `signal` aborts. */
  async followLogs(filter: LogFilter, onEntry: (entry: LogEntry) => void, signal: AbortSignal): Promise<void> {
    await this.#open();
    const { followLogs } = await import('./ops/log-reader.js');
    return followLogs(this.layout, filter, onEntry, signal);
  }


  /** Emits to the listeners; one that throws does not stop a run (the job is done either way). */
  #emitSafely<K extends keyof QueryBatchEvents>(event: K, ...args: QueryBatchEvents[K]): void {
    try {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
    } catch {
      // the listener's own error
    }
  }

  /**
   * Without an id: pending jobs per datasource, failed files, the last run's summary.
   * With one: what became of that job (queued with its position, running, succeeded,
   * failed, or unknown once `retentionMs` has passed). Throws INVALID_ID for a non-id.
   */
  status(): Promise<StatusReport>;
  status(id: string): Promise<JobStatus>;
  async status(id?: string): Promise<StatusReport | JobStatus> {
    await this.#open();
    if (id !== undefined) return (await import('./ops/job-status.js')).jobStatus(this.layout, this.config, this.#outcomes, id);
    return spoolStatus(this.layout, this.config);
  }

  /**
   * The captured result of a job spooled with `captureResult: true`: columns, total rows and
   * one entry per page (row range, row count, bytes). Throws INVALID_ID or RESULT_NOT_FOUND.
   */
  async result(id: string): Promise<ResultManifest> {
    await this.#open();
    const { readManifest } = await import('./ops/results.js');
    return readManifest(this.layout.resultsDir, id, this.config.retentionMs);
  }

  /** Page `page` (from 1) of a job's captured result, values decoded (Date, Buffer, bigint). */
  async resultPage(id: string, page: number): Promise<ResultPage> {
    await this.#open();
    const { readPage } = await import('./ops/results.js');
    return readPage(this.layout.resultsDir, id, page, this.config.retentionMs);
  }

  /** Resolves when every webhook delivery queued so far has finished (delivered or given up). */
  webhooksIdle(): Promise<void> {
    return this.#webhooks.idle();
  }

  /** Loads the DriverFactory (dialect, driver module) of each configured datasource, once, before a run needs #driver(). */
  async #loadDriverFactories(): Promise<void> {
    await Promise.all(Object.entries(this.config.datasources).filter(([name]) => !this.#factories.has(name)).map(async ([name, ds]) => {
      this.#factories.set(name, await loadDriverFactory(ds.url, name));
    }));
  }

  #driver(name: string): Driver {
    let driver = this.#drivers.get(name);
    if (!driver) {
      const ds = Object.hasOwn(this.config.datasources, name) ? this.config.datasources[name] : undefined;
      if (!ds) throw new QueryBatchError('UNKNOWN_DATASOURCE', `Expected a configured datasource; got ${JSON.stringify(name)}`);
      // The spool's id scopes its ledger rows (ensureLayout wrote it before any run).
      const ledger = ds.ledger ? { table: ds.ledger.table, spool: readFileSync(this.layout.spoolIdFile, 'utf8').trim() } : null;
      const factory = this.#factories.get(name);
      if (!factory) throw new Error(`Expected the driver factory of datasource "${name}" to be loaded before its driver is made`);
      driver = factory.create({ url: ds.url, home: this.config.home, init: ds.init, options: ds.options, ledger });
      this.#drivers.set(name, driver);
    }
    return driver;
  }

  /**
   * Stops the schedule, waits for a run in flight, closes the connection pools, waits up to
   * `webhooks.closeWaitMs` for webhook deliveries, and flushes the logs. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#schedule?.stop();
      await this.#running?.catch(() => {});
      await this.#kept.release();
      await Promise.all([...this.#drivers.values()].map((d) => d.close().catch(() => {})));
      this.#drivers.clear();
      await Promise.all([this.#webhooks.close(this.config.webhooks.closeWaitMs), this.#outcomes.flush(), this.#logs.close()]);
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
