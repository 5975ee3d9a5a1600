import { createHash } from 'node:crypto';
import { basename, dirname, join, relative } from 'node:path';
import fs from 'fs-extra';
import { classifyError, errorInfo } from '../db/mysql/classify.js';
import { adoptionClaimDir, hasForeignClaims, recoverClaims, recoverForeignClaims, removeStaleTemps, uncertainMarkerName, type Recovery } from './recovery.js';
import type { Driver, Session } from '../db/driver.js';
import { adoptDropIns } from './adoption.js';
import { QueryBatchError, isQueryBatchError } from '../errors.js';
import type { DatasourceSummary, ResolvedConfig, RunOptions, RunSummary } from '../interfaces.js';
import { readSpoolId, type Layout } from '../spool/layout.js';
import { countJobs, removeIfEmpty } from '../spool/listing.js';
import { drainOrder, dropStaleMarker } from '../spool/priority.js';
import type { FailureEntry } from '../ops/log-format.js';
import type { Logs } from '../ops/logs.js';
import { moveToFailed } from '../spool/failed-dir.js';
import { readJobText } from '../spool/read-job.js';
import { compareNames, idOfFileName, jobFileName, parseJobFileName, spoolPathFor } from '../spool/shards.js';
import { decodeParams, decodeRecord, decodeSegment, describeParams, encodeRecord, type LastError, type SpoolRecord } from '../spool/record.js';
import type { SpoolWriter } from '../spool/writer.js';
import type { Outcome } from '../ops/outcomes.js';
import { makeDirDurable, tempPathFor, writeFileAtomic, writeTemp, type DirSyncer } from '../spool/durable.js';
import { oldestLiveId } from './ledger-prune.js';
import { inspectStatement, runsOnceWithLedger } from '../db/mysql/statement.js';
import { withTimeout } from './timeout.js';
import { ResultWriter } from '../ops/results.js';


/** Per-statement mode (`ledger.batch: 1`) claims this many jobs at a time, then commits them one by one. */
const PER_STATEMENT_BURST = 32;
/** What a run needs, handed in (the runner opens nothing by itself). */
export interface RunnerDeps {
  readonly layout: Layout;
  readonly config: ResolvedConfig;
  readonly writer: SpoolWriter;
  /** Directory fsyncs for the runner's own moves (always on: they are few next to the statements). */
  readonly syncer: DirSyncer;
  readonly logs: Logs;
  readonly name: string;
  driver(datasource: string): Driver;
  /** Told of every job that finished (succeeded, or moved to failed/), before its file is removed. */
  onOutcome?(outcome: Outcome, record: SpoolRecord | null): void;
}

function emptyDatasourceSummary(): DatasourceSummary {
  return { success: 0, sqlFailed: 0, connectionFailed: 0, invalid: 0, deferred: 0, sqlMs: 0, settled: 0, uncertain: 0 };
}

function lastErrorOf(cls: LastError['class'], error: unknown, at: Date): LastError {
  const info = isQueryBatchError(error) ? { code: error.code, message: error.message } : errorInfo(error);
  return {
    class: cls,
    code: info.code,
    message: info.message,
    ...('errno' in info && info.errno !== undefined && { errno: info.errno }),
    ...('sqlState' in info && info.sqlState !== undefined && { sqlState: info.sqlState }),
    at: at.toISOString(),
  };
}

/**
 * One run: give back dead runners' claims, adopt drop-ins, then drain every datasource
 * (concurrently with each other, each serially in FIFO order on one connection), and
 * write the summary line.
 */
export async function runBatch(deps: RunnerDeps, options: RunOptions = {}): Promise<RunSummary> {
  const { layout, config, logs } = deps;
  const names = options.datasource !== undefined ? [options.datasource] : Object.keys(config.datasources);
  for (const name of names) {
    if (!Object.hasOwn(config.datasources, name)) {
      throw new QueryBatchError('UNKNOWN_DATASOURCE', `Expected a configured datasource (${Object.keys(config.datasources).join(', ') || 'none are configured'}); got ${JSON.stringify(name)}`);
    }
  }
  const started = new Date();
  const t0 = performance.now();
  const home = (path: string) => relative(layout.home, path);

  const logFailure = (entry: FailureEntry) => logs.failure(new Date(), entry);

  /** Moves a file that could not be read or placed into failed/ and logs why; never throws. */
  const failInvalid = async (path: string, name: string, error: unknown, record?: Partial<SpoolRecord>, shownAs = path): Promise<void> => {
    const reason = lastErrorOf('invalid', error, new Date());
    let moved = home(path);
    let message = reason.message;
    try {
      moved = home(await moveToFailed(layout, path, 'failed-', name, deps.syncer));
    } catch (moveError) {
      // Left where it was: nothing is lost, and the next run tries again.
      message += ` (could not move it to failed/: ${(moveError as Error).message}; left in place)`;
    }
    if (record?.id && moved.startsWith('failed')) {
      deps.onOutcome?.(failedOutcome(record.id, record.datasource ?? '', reason, 0, moved), null);
    }
    logFailure({
      class: 'invalid',
      id: record?.id ?? null,
      file: home(shownAs),
      datasource: record?.datasource ?? null,
      code: reason.code,
      moved,
      message,
      ...(record?.sql !== undefined && { sql: record.sql }),
    });
  };

  /** A drop-in that is fine but could not be placed (disk full, permissions): it stays for the next run. */
  const leaveForLater = (path: string, error: unknown, record?: Partial<SpoolRecord>): void => {
    const reason = lastErrorOf('invalid', error, new Date());
    logFailure({
      class: 'invalid',
      id: record?.id ?? null,
      file: home(path),
      datasource: record?.datasource ?? null,
      code: reason.code,
      moved: home(path),
      message: `Could not queue this file (${reason.message}); left in place for the next run`,
    });
  };

  const tmpRemoved = await removeStaleTemps(layout, config.tmpMaxAgeMs);
  const recovery = await recoverClaims(layout, deps.name, config.defaultDatasource, deps.syncer);
  logUncertain(deps, recovery);
  const adoption = await adoptDropIns({
    layout,
    config,
    writer: deps.writer,
    syncer: deps.syncer,
    claimDir: adoptionClaimDir(layout, deps.name),
    fail: failInvalid,
    leave: leaveForLater,
  });
  await removeIfEmpty(adoptionClaimDir(layout, deps.name));

  const spoolId = await readSpoolId(layout);
  const drainOptions = await withProgress(layout, names, options);
  const perDatasource: Record<string, DatasourceSummary> = {};
  // Every drain finishes before the run does, even when one fails: a run that returned
  // while another drain still held claims would let the next run take them back.
  const drains = await Promise.allSettled(names.map(async (name) => {
    perDatasource[name] = await drainDatasource(deps, name, drainOptions, failInvalid, logFailure, lockNameFor(spoolId, name));
  }));
  drains.forEach((drain, i) => {
    if (drain.status === 'fulfilled') return;
    const error = drain.reason as NodeJS.ErrnoException;
    if (isQueryBatchError(error)) throw error;
    throw new QueryBatchError(
      'RUN_IO_FAILED',
      `Datasource "${names[i]}" stopped: ${error.code ? `${error.code}: ` : ''}${error.message}. Its claimed job is given back to the spool by the next run.`,
      { cause: error },
    );
  });

  const totals = Object.values(perDatasource).reduce((a, s) => ({
    success: a.success + s.success,
    sqlFailed: a.sqlFailed + s.sqlFailed,
    connectionFailed: a.connectionFailed + s.connectionFailed,
    invalid: a.invalid + s.invalid,
    deferred: a.deferred + s.deferred,
    sqlMs: a.sqlMs + s.sqlMs,
    settled: a.settled + s.settled,
    uncertain: a.uncertain + s.uncertain,
  }), emptyDatasourceSummary());
  const executed = totals.success + totals.sqlFailed - totals.invalid;
  const finished = new Date();
  const summary: RunSummary = {
    runner: deps.name,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    success: totals.success,
    sqlFailed: totals.sqlFailed + adoption.invalid,
    connectionFailed: totals.connectionFailed,
    invalid: totals.invalid + adoption.invalid,
    deferred: totals.deferred + adoption.settling,
    adopted: adoption.adopted,
    recovered: recovery.recovered + Object.values(perDatasource).reduce((n, s) => n + (s.recovered ?? 0), 0),
    settled: totals.settled,
    uncertain: totals.uncertain + recovery.uncertain.length,
    tmpRemoved,
    totalMs: Math.round(totals.sqlMs * 1000) / 1000,
    avgMs: executed > 0 ? Math.round((totals.sqlMs / executed) * 1000) / 1000 : 0,
    wallMs: Math.round(performance.now() - t0),
    datasources: perDatasource,
  };
  if (summary.success + summary.sqlFailed + summary.connectionFailed > 0) logs.summary(finished, summary);
  return summary;
}

async function drainDatasource(
  deps: RunnerDeps,
  ds: string,
  options: DrainOptions,
  failInvalid: (path: string, name: string, error: unknown, record?: Partial<SpoolRecord>, shownAs?: string) => Promise<void>,
  logFailure: (entry: FailureEntry) => void,
  lockName: string,
): Promise<DatasourceSummary> {
  const { layout, config } = deps;
  const summary = emptyDatasourceSummary();
  /** Exactly-once: the job id goes into the ledger in the statement's transaction (null: at-least-once). */
  const ledger = config.datasources[ds]?.ledger ?? null;
  const dsDir = join(layout.spoolDir, ds);
  const claimDir = join(layout.activeDir, deps.name, ds);
  const home = (path: string) => relative(layout.home, path);
  let claimDirReady = false;
  let session = null as Session | null;
  /** Why connecting failed; the next job read carries it. */
  let connectError: unknown = null;
  let locked = false;
  let stopped = false;
  let taken = 0;
  /** Jobs left pending when the drain stopped early, if the ledger prune counted them (one walk for both). */
  let left: number | null = null;
  /** Set once the lock is ours and other hosts' dead claims were given back: the listing starts over. */
  let again = false;

  /** Connects and takes the datasource's lock; false when another runner holds it. Gives back other hosts' claims once the lock is ours. */
  const openSession = async (): Promise<boolean> => {
    try {
      session = await deps.driver(ds).connect();
      if (!(await session.tryLock(lockName))) {
        summary.busy = true;
        return false;
      }
      locked = true;
    } catch (error) {
      session?.destroy();
      session = null;
      connectError = error;
      return true;
    }
    const foreign = await recoverForeignClaims(layout, ds, deps.syncer);
    logUncertain(deps, foreign);
    summary.recovered = (summary.recovered ?? 0) + foreign.recovered;
    summary.uncertain += foreign.uncertain.length;
    again = foreign.recovered > 0;
    return true;
  };

  /** A statement outside the ledger transaction lost its connection: it may have run. A person decides. */
  const uncertainFailure = async (record: SpoolRecord, path: string, error: unknown): Promise<void> => {
    const lastError = lastErrorOf('connection', error, new Date());
    const moved = await moveToFailed(layout, path, 'uncertain-', idFileName(record), deps.syncer);
    deps.onOutcome?.(failedOutcome(record.id, ds, { ...lastError, class: 'uncertain' }, 0, home(moved)), record);
    summary.uncertain++;
    logFailure({
      ...entryFor(record, home(spoolPathFor(layout.spoolDir, ds, record.id)), 'connection', lastError, record.attempts + 1, home(moved), config.logs.logParams),
      class: 'uncertain',
      message: `The connection was lost while a statement that commits implicitly (${inspectStatement(record.sql).keyword || 'unknown'}) ran outside the ledger: it may or may not have run, so it is not run again (${lastError.code}: ${lastError.message})`,
    });
  };

  /** Moves a claimed file (of `count` jobs, the first `id`) back to its place in the spool (durably); returns that place. */
  const putBack = async (claimed: string, id: string, count = 1): Promise<string> => {
    const back = spoolPathFor(layout.spoolDir, ds, id, count);
    await makeDirDurable(dirname(back), deps.syncer);
    await fs.promises.rename(claimed, back);
    await deps.syncer.sync(dirname(back));
    return back;
  };

  /**
   * A connection failure: the job goes back to its place with one more attempt, or to
   * failed/connection-…; a segment's other unfinished jobs go back with it.
   */
  const connectionFailure = async (job: Job, error: unknown): Promise<void> => {
    const { record, segment } = job;
    const lastError = lastErrorOf('connection', error, new Date());
    const updated: SpoolRecord = { ...record, attempts: record.attempts + 1, lastError };
    const failed = updated.attempts >= config.maxConnectionAttempts;
    let moved: string;
    if (segment !== undefined) {
      if (failed) {
        moved = home(await failAlone(updated, 'connection-'));
        const last = settle(job);
        if (last !== null) remove(last);
        else await writeBack(segment);
      } else {
        moved = home(await writeBack(segment, updated));
      }
    } else {
      // Rewrite the claim, then move it in one rename: a crash leaves one copy, never two.
      await writeFileAtomic(layout.tmpDir, job.path, encodeRecord(updated), deps.syncer);
      moved = home(failed ? await moveToFailed(layout, job.path, 'connection-', idFileName(record), deps.syncer) : await putBack(job.path, record.id));
    }
    if (failed) deps.onOutcome?.(failedOutcome(record.id, ds, lastError, 0, moved), record);
    summary.connectionFailed++;
    summary.connectionError = `${lastError.code}: ${lastError.message}`;
    logFailure(entryFor(record, home(job.src), 'connection', lastError, updated.attempts, moved, config.logs.logParams));
  };

  /** A claimed job, read and checked, ready to run. */
  interface Job {
    readonly record: SpoolRecord;
    readonly params: ReturnType<typeof decodeParams>;
    /** Its claim (a segment's jobs: the segment's claim when it was read). */
    readonly path: string;
    readonly src: string;
    /** Runs in a ledger transaction, exactly once (the ledger is on and runsOnceWithLedger). */
    readonly once: boolean;
    /** Set for a job of a segment file: the jobs that share its claim. */
    readonly segment?: Segment;
  }
  /**
   * A claimed segment (`<id>.<n>.batchsql`, spool/writer.ts): its jobs run and settle one
   * by one, and the claim goes when the last has. Only jobs the ledger runs exactly once
   * are kept in a segment, so a crash that gives the claim back whole repeats nothing.
   */
  interface Segment {
    /** The claim: rewritten, under a new name, when one of its jobs leaves for failed/. */
    path: string;
    readonly jobs: Job[];
    /** Jobs finished: committed, settled by the ledger, or moved to failed/. */
    readonly done: Set<Job>;
  }
  /** Claimed segments not yet finished nor given back. */
  const segments = new Set<Segment>();
  /** Claimed jobs waiting to run in one ledger transaction (group commit). */
  let batch: Job[] = [];

  /** A job finished; returns the file that can now be removed (a segment's claim once its last job has), or null. */
  const settle = (job: Job): string | null => {
    const segment = job.segment;
    if (segment === undefined) return job.path;
    segment.done.add(job);
    if (segment.done.size < segment.jobs.length) return null;
    segments.delete(segment);
    return segment.path;
  };
  const settleAll = (jobs: readonly Job[]): string[] => jobs.map(settle).filter((path) => path !== null);

  /** A segment's records not yet finished, in order, `updated` in place of its job's. */
  const openRecords = (segment: Segment, updated?: SpoolRecord): SpoolRecord[] =>
    segment.jobs.filter((j) => !segment.done.has(j)).map((j) => (j.record.id === updated?.id ? updated : j.record));

  /** A segment file's text: a record a line. */
  const segmentText = (records: readonly SpoolRecord[]): string => records.map((r) => encodeRecord(r)).join('');

  /** Writes one job of a segment to failed/ as a file of its own; returns where. */
  const failAlone = async (record: SpoolRecord, prefix: 'failed-' | 'connection-'): Promise<string> => {
    const tmp = tempPathFor(layout.tmpDir, idFileName(record));
    await writeTemp(tmp, encodeRecord(record), true);
    return moveToFailed(layout, tmp, prefix, idFileName(record), deps.syncer);
  };

  /**
   * A segment's unfinished jobs go back to the spool (with `updated` in place of its job's
   * record): untouched, the claim is moved back; else they are written as a new file, and
   * the claim goes once that is durable (a crash between leaves both, and the ledger
   * settles what repeats). Returns the place.
   */
  const writeBack = async (segment: Segment, updated?: SpoolRecord): Promise<string> => {
    segments.delete(segment);
    const open = openRecords(segment, updated); // never empty: a segment with no open job has left `segments`
    if (updated === undefined && open.length === segment.jobs.length) return putBack(segment.path, open[0]!.id, open.length);
    const back = spoolPathFor(layout.spoolDir, ds, open[0]!.id, open.length);
    await writeFileAtomic(layout.tmpDir, back, segmentText(open), deps.syncer);
    remove(segment.path);
    return back;
  };

  /** After one of its jobs left for failed/: the segment's claim keeps only the jobs still open, so a crash does not run that one again. */
  const shrinkClaim = async (segment: Segment): Promise<void> => {
    const open = openRecords(segment);
    const path = join(claimDir, jobFileName(open[0]!.id, open.length));
    await writeFileAtomic(layout.tmpDir, path, segmentText(open), deps.syncer);
    if (path !== segment.path) remove(segment.path);
    segment.path = path;
  };

  /**
   * Removes executed jobs' files, synchronously, between round trips: an unlink in the
   * thread pool while the next COMMIT is in flight slows that COMMIT more than the unlink
   * costs here (measured on a busy machine; docs/decisions.md).
   */
  const remove = (...paths: string[]): void => {
    for (const path of paths) fs.unlinkSync(path);
  };

  /** Claimed jobs that did not run go back to their places, untouched (with the rest of their segment). */
  const giveBack = async (jobs: readonly Job[]): Promise<void> => {
    for (const job of jobs) {
      if (job.segment === undefined) await putBack(job.path, job.record.id);
      else if (segments.has(job.segment)) await writeBack(job.segment);
    }
  };

  /** Streams a captured statement's rows into result pages; resolves with its affected rows (0 for a SELECT). */
  const capture = async (live: Session, record: SpoolRecord, params: Job['params']): Promise<number> => {
    const writer = new ResultWriter(layout.resultsDir, record.id, ds);
    try {
      const { affectedRows } = await live.stream(record.sql, params, (columns) => (writer.columns = columns), (row) => writer.add(row as never[]));
      await writer.finish();
      return affectedRows;
    } catch (error) {
      await writer.abort();
      throw error;
    }
  };

  /** A job's time limit: its own timeoutMs, else the configured default (0: none). */
  const limitFor = (record: SpoolRecord): number | null => record.timeoutMs ?? (config.timeoutMs > 0 ? config.timeoutMs : null);

  /** A job committed: told to onOutcome (status by id, events, webhooks) and counted for progress. */
  const succeeded = (record: SpoolRecord, ms: number, affectedRows: number): void => {
    deps.onOutcome?.({ id: record.id, status: 'succeeded', datasource: ds, finishedAt: new Date().toISOString(), durationMs: round(ms), affectedRows }, record);
    options.step?.();
  };

  /**
   * Runs one job. With the ledger, a statement that can share its transaction runs exactly
   * once; one that commits implicitly runs on its own, its claim renamed to <id>.uncertain
   * first so that a crash mid-statement sends it to failed/uncertain-… instead of running it
   * again. Resolves false when the datasource must stop (connection lost).
   */
  const runJob = async (job: Job, settled?: string[]): Promise<boolean> => {
    const { record, params, src, once } = job;
    let path = job.path;
    if (ledger !== null && !once && !record.captureResult) {
      path = join(claimDir, uncertainMarkerName(record.id));
      await fs.promises.rename(job.path, path);
      await deps.syncer.sync(claimDir);
    }
    const t = performance.now();
    let ran = false;
    try {
      let affectedRows = 0;
      const live = session!;
      const limit = limitFor(record);
      const cancel = () => deps.driver(ds).cancel(live);
      if (record.captureResult) {
        // A background SELECT: its rows are streamed into pages (ops/results.ts). Outside the
        // ledger: reading twice after a crash does no harm, and the pages are rewritten.
        affectedRows = await withTimeout(limit, () => capture(live, record, params), cancel);
        summary.success++;
      } else if (once) {
        const result = await withTimeout(limit, () => live.executeOnce(record.id, record.sql, params), cancel);
        if (result.status === 'done-before') summary.settled++;
        else {
          summary.success++;
          affectedRows = result.affectedRows;
        }
      } else {
        affectedRows = (await withTimeout(limit, () => live.execute(record.sql, params), cancel)).affectedRows;
        summary.success++;
      }
      const ms = performance.now() - t;
      summary.sqlMs += ms;
      ran = true;
      succeeded(record, ms, affectedRows);
    } catch (error) {
      // A timeout whose cancel had to drop the connection is a lost connection too.
      if (classifyError(causeOf(error), 'execute') === 'connection') {
        session!.destroy();
        session = null;
        if (once && (await committedAfterAll(deps, ds, record.id))) {
          // Lost during COMMIT, but the ledger has it: it ran, once.
          summary.success++;
          summary.connectionError = `${errorInfo(error).code}: ${errorInfo(error).message}`;
          succeeded(record, performance.now() - t, 0);
          remove(...settleAll([job]));
        } else if (ledger !== null && !once && !record.captureResult) {
          await uncertainFailure(record, path, error);
        } else {
          await connectionFailure(job, error);
        }
        return false;
      }
      const ms = performance.now() - t;
      summary.sqlMs += ms;
      // A statement stopped for its time limit fails like an SQL error, with its own class.
      const lastError = lastErrorOf(isQueryBatchError(error, 'STATEMENT_TIMEOUT') ? 'timeout' : 'sql', error, new Date());
      const updated: SpoolRecord = { ...record, attempts: record.attempts + 1, lastError };
      let moved: string;
      if (job.segment === undefined) {
        await writeFileAtomic(layout.tmpDir, path, encodeRecord(updated), deps.syncer);
        moved = await moveToFailed(layout, path, 'failed-', idFileName(record), deps.syncer);
      } else {
        moved = await failAlone(updated, 'failed-');
        const last = settle(job);
        if (last !== null) remove(last);
        else await shrinkClaim(job.segment);
      }
      deps.onOutcome?.(failedOutcome(record.id, ds, lastError, ms, home(moved)), record);
      options.step?.();
      summary.sqlFailed++;
      logFailure(entryFor(record, home(src), lastError.class, lastError, updated.attempts, home(moved), config.logs.logParams));
    }
    // Removed before the next job starts (without the ledger a crash repeats at most the
    // one statement in flight), or with the rest of its burst (ledger: a leftover is settled).
    if (ran) {
      // (A claim renamed <id>.uncertain is never a segment's: segments hold only ledger jobs.)
      const done = job.segment === undefined ? path : settle(job);
      if (done !== null) {
        if (settled) settled.push(done);
        else remove(done);
      }
    }
    return true;
  };

  /**
   * Runs the batched jobs in one ledger transaction and one round trip. On an SQL error
   * (all rolled back) they run again one by one, so the failing one goes to failed/ alone.
   * Resolves false when the datasource must stop; the jobs that did not run are given back.
   */
  const flush = async (): Promise<boolean> => {
    const jobs = batch;
    batch = [];
    if (jobs.length === 0) return true;
    if (session === null) {
      await giveBack(jobs);
      return false;
    }
    let sent: readonly number[] | null = null;
    const t = performance.now();
    if (jobs.length > 1 && ledger!.batch > 1) {
      try {
        const live = session;
        // The batch as a whole gets the default limit; on a timeout it runs again one by one,
        // each job under its own limit, so only the slow one fails.
        sent = await withTimeout(
          config.timeoutMs > 0 ? config.timeoutMs : null,
          () => live.executeBatch(jobs.map((j) => ({ id: j.record.id, sql: j.record.sql, params: j.params }))),
          () => deps.driver(ds).cancel(live),
        );
      } catch (error) {
        if (classifyError(causeOf(error), 'execute') === 'connection') {
          session.destroy();
          session = null;
          summary.connectionError = `${errorInfo(error).code}: ${errorInfo(error).message}`;
          if (await committedAfterAll(deps, ds, jobs[0]!.record.id)) {
            // Lost during COMMIT, but the ledger has the batch (all or none): it ran, once.
            summary.success += jobs.length;
            for (const job of jobs) succeeded(job.record, (performance.now() - t) / jobs.length, 0);
            remove(...settleAll(jobs));
          } else {
            await connectionFailure(jobs[0]!, error);
            await giveBack(jobs.slice(1));
          }
          return false;
        }
        // An SQL error somewhere in the batch (a duplicate ledger id included): one by one.
      }
    }
    if (sent !== null) {
      const ms = performance.now() - t;
      summary.sqlMs += ms;
      summary.success += jobs.length;
      jobs.forEach((job, k) => succeeded(job.record, ms / jobs.length, sent[k] ?? 0));
      remove(...settleAll(jobs));
      return true;
    }
    // One by one (per-statement mode, or after a batch's SQL error); the files of the jobs
    // that ran are removed together at the end (docs/decisions.md).
    const ran: string[] = [];
    try {
      for (let k = 0; k < jobs.length; k++) {
        if (k > 0 && options.signal?.aborted) {
          await giveBack(jobs.slice(k));
          return false;
        }
        if (!(await runJob(jobs[k]!, ran))) {
          await giveBack(jobs.slice(k + 1));
          return false;
        }
      }
      return true;
    } finally {
      remove(...ran);
    }
  };

  try {
    if (await hasForeignClaims(layout, ds)) {
      // Another host's runner died holding claims: with the lock ours they go back first, in their places.
      if (!(await openSession())) {
        stopped = true;
      }
    }
    do {
    again = false;
    // Immediate jobs first (FIFO among themselves), then every leaf oldest first (spool/priority.ts).
    outer: for await (const { leaf, names, marker } of drainOrder(layout, ds)) {
      if (stopped) break;
      for (let i = 0; i < names.length; i++) {
        if (stopped || options.signal?.aborted || (options.limit !== undefined && taken >= options.limit)) {
          stopped = true;
          break outer;
        }
        const name = names[i]!;
        const src = join(leaf.path, name);
        if (!claimDirReady) {
          await fs.promises.mkdir(claimDir, { recursive: true, mode: 0o700 });
          claimDirReady = true;
        }
        const claimed = join(claimDir, name);
        if (session === null && connectError === null) {
          // Connect, and take the datasource's lock, before claiming anything: a runner that
          // finds another draining this datasource touches none of its files.
          if (!(await openSession())) {
            stopped = true;
            break outer;
          }
          if (again) break outer; // other hosts' claims went back: list again from the start
        }
        try {
          // Synchronous: a thread-pool trip costs more than the rename itself (spool/read-job.ts).
          fs.renameSync(src, claimed);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
          // Another runner took it; or, for a marker, its job is gone (ran, or moved).
          if (marker !== undefined) await dropStaleMarker(marker);
          continue;
        }
        // Taken: the marker has done its work (a crash before this keeps the job first in line).
        if (marker !== undefined) await fs.promises.unlink(marker).catch(() => {});
        taken++;

        const count = parseJobFileName(name)?.count ?? 1;
        let jobs: Job[];
        try {
          const text = await readJobText(claimed, config.limits.maxFileBytes);
          const records = count === 1 ? [decodeRecord(text)] : decodeSegment(text, count);
          jobs = records.map((record) => ({ record, params: decodeParams(record.params), path: claimed, src, once: ledger !== null && runsOnceWithLedger(record) }));
        } catch (error) {
          summary.invalid++;
          summary.sqlFailed++;
          await failInvalid(claimed, name, error, { id: idOfFileName(name) ?? '', datasource: ds }, src);
          continue;
        }
        const record = jobs[0]!.record;
        if (record.datasource !== ds || record.id !== idOfFileName(name)) {
          // Copied into another datasource's tree, or renamed: send it to its own place.
          const target = spoolPathFor(layout.spoolDir, record.datasource, record.id, count);
          if (Object.hasOwn(config.datasources, record.datasource) && !(await fs.pathExists(target))) {
            await makeDirDurable(dirname(target), deps.syncer);
            await fs.promises.rename(claimed, target);
            taken--;
          } else {
            summary.invalid++;
            summary.sqlFailed++;
            await failInvalid(claimed, name, new QueryBatchError('INVALID_SPOOL_FILE', `Expected job ${record.id} of datasource "${record.datasource}" at ${home(target)}; found it at ${home(src)} and could not move it there`), record, src);
          }
          continue;
        }

        if (jobs.length > 1) {
          if (jobs.some((j) => !j.once)) {
            // A segment whose jobs the ledger can't settle one by one (the ledger was turned
            // off since, or a file made by hand): its jobs become files of their own, which
            // join the rest of this leaf's listing in order.
            for (const j of jobs) await writeFileAtomic(layout.tmpDir, spoolPathFor(layout.spoolDir, ds, j.record.id), encodeRecord(j.record), deps.syncer);
            remove(claimed);
            taken--;
            names.push(...[...names.splice(i + 1), ...jobs.map((j) => jobFileName(j.record.id))].sort(compareNames));
            continue;
          }
          const segment: Segment = { path: claimed, jobs: [], done: new Set() };
          jobs = jobs.map((j) => ({ ...j, segment }));
          segment.jobs.push(...jobs);
          segments.add(segment);
        }

        if (connectError !== null || session === null) {
          // The first job carries the failure: its attempt count grows, the rest stay untouched.
          await connectionFailure(jobs[0]!, connectError);
          stopped = true;
          break outer;
        }

        for (const [k, job] of jobs.entries()) {
          if (k > 0) {
            // A segment's later jobs count like files of their own; those not reached go back at the end.
            if (options.signal?.aborted || (options.limit !== undefined && taken >= options.limit)) {
              stopped = true;
              break outer;
            }
            taken++;
          }
          const { record } = job;
          if (job.once && ledger !== null && record.attempts === 0 && record.timeoutMs === undefined) {
            // Group commit: jobs wait (claimed) to go in one ledger transaction together. A job
            // that failed to connect before runs alone, so a failure is pinned on the right job;
            // so does one with a time limit of its own. Per-statement mode (batch 1) claims a
            // burst the same way and commits its jobs one by one: file work in bursts between
            // COMMITs slows them less than a claim and a removal around each (docs/benchmarks.md).
            batch.push(job);
            if (batch.length < (ledger.batch > 1 ? ledger.batch : PER_STATEMENT_BURST)) continue;
            if (!(await flush())) {
              stopped = true;
              break outer;
            }
            continue;
          }
          // FIFO: what is batched runs before this job.
          if (!(await flush())) {
            await giveBack([job]);
            stopped = true;
            break outer;
          }
          if (!(await runJob(job))) {
            stopped = true;
            break outer;
          }
        }
      }
      if (await removeIfEmpty(leaf.path)) await removeIfEmpty(dirname(leaf.path));
    }
    } while (again && !stopped);
    // Jobs batched when the listing ended or the run stopped.
    if (!(await flush())) stopped = true;
    // A segment's jobs not reached (a limit, a stop) go back to the spool.
    for (const segment of [...segments]) await writeBack(segment);
  } finally {
    // Released however the drain ends: a leaked connection would make a later run wait forever.
    const held = session as Session | null;
    if (held !== null) {
      if (ledger !== null && locked && summary.success + summary.settled > 0) {
        // Bounded ledger: rows of jobs whose files are all gone are deleted (under the lock).
        try {
          const live = await oldestLiveId(layout, config, stopped ? ds : undefined);
          left = live.count;
          summary.pruned = await held.pruneLedger(live.oldest);
        } catch {
          // the next run prunes
        }
      }
      try {
        if (locked) await held.unlock(lockName);
        held.release();
      } catch {
        held.destroy(); // the server frees the lock with the session
      }
    }
    await removeIfEmpty(claimDir);
    await removeIfEmpty(dirname(claimDir));
  }
  if (stopped) summary.deferred = left ?? (await countJobs(dsDir)).count;
  return summary;
}

/** What a drain is given: the run's options plus `step`, called once per statement executed or refused. */
interface DrainOptions extends RunOptions {
  readonly step?: () => void;
}

/** With an onProgress hook: counts what is pending (streaming the shard listings) and makes the step counter. */
async function withProgress(layout: Layout, names: readonly string[], options: RunOptions): Promise<DrainOptions> {
  const onProgress = options.onProgress;
  if (!onProgress) return options;
  let total = 0;
  for (const name of names) total += (await countJobs(join(layout.spoolDir, name))).count;
  let done = 0;
  onProgress({ done, total });
  return { ...options, step: () => onProgress({ done: ++done, total: Math.max(total, done) }) };
}

/**
 * The database lock that makes one runner at a time drain a datasource of a spool, across
 * processes and hosts (GET_LOCK names are at most 64 characters).
 */
export function lockNameFor(spoolId: string, datasource: string): string {
  return 'querybatch:' + createHash('sha256').update(`${spoolId}:${datasource}`).digest('hex').slice(0, 40);
}

/** The driver's error behind a STATEMENT_TIMEOUT, else the error itself. */
function causeOf(error: unknown): unknown {
  return isQueryBatchError(error, 'STATEMENT_TIMEOUT') ? error.cause : error;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function failedOutcome(id: string, datasource: string, error: Pick<LastError, 'at' | 'code' | 'message'> & { class: Outcome['class'] }, ms: number, moved: string): Outcome {
  return {
    id,
    status: 'failed',
    datasource,
    finishedAt: error.at,
    durationMs: round(ms),
    class: error.class,
    code: error.code,
    message: error.message,
    file: basename(moved),
  };
}

/** After a connection lost mid-transaction: did the job commit? Asked on a new session; false when that fails too. */
async function committedAfterAll(deps: RunnerDeps, ds: string, id: string): Promise<boolean> {
  let probe: Session | null = null;
  try {
    probe = await deps.driver(ds).connect();
    const done = await probe.isDone(id);
    probe.release();
    return done;
  } catch {
    probe?.destroy();
    return false;
  }
}

/** Logs the claims recovery moved to failed/uncertain-…. */
function logUncertain(deps: RunnerDeps, recovery: Recovery): void {
  for (const u of recovery.uncertain) {
    deps.logs.failure(new Date(), {
      class: 'uncertain',
      id: u.id,
      file: relative(deps.layout.home, u.claim),
      datasource: u.datasource,
      code: 'UNCERTAIN',
      moved: relative(deps.layout.home, u.moved),
      message: 'A runner died while this statement, which commits implicitly and so runs outside the ledger, was in flight: it may or may not have run. Check the database, then respool it or delete it.',
    });
  }
}

function idFileName(record: SpoolRecord): string {
  return `${record.id}.batchsql`;
}

function entryFor(record: SpoolRecord, file: string, cls: LastError['class'], error: LastError, attempts: number, moved: string, logParams: boolean): FailureEntry {
  return {
    class: cls,
    id: record.id,
    file,
    datasource: record.datasource,
    code: error.code,
    ...(error.errno !== undefined && { errno: error.errno }),
    attempts,
    moved,
    message: error.message,
    sql: record.sql,
    params: logParams ? JSON.stringify(record.params) : describeParams(record.params),
  };
}
