import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import fs from 'fs-extra';
import { classifyError, errorInfo } from './classify.js';
import { adoptionClaimDir, recoverClaims } from './claims.js';
import type { Driver, Session } from './driver.js';
import { adoptDropIns } from './drop-ins.js';
import { QueryBatchError, isQueryBatchError } from './errors.js';
import type { DatasourceSummary, ResolvedConfig, RunOptions, RunSummary } from './interfaces.js';
import { readSpoolId, type Layout } from './layout.js';
import { countJobs, jobsInLeaf, leavesOf, removeIfEmpty } from './listing.js';
import type { FailureEntry } from './log-format.js';
import type { Logs } from './logs.js';
import { moveToFailed } from './failed.js';
import { readJobText } from './read-job.js';
import { idOfFileName, spoolPathFor } from './shards.js';
import { decodeParams, decodeRecord, describeParams, encodeRecord, type LastError, type SpoolRecord } from './spool-file.js';
import type { SpoolWriter } from './spool-writer.js';
import { makeDirDurable, writeFileAtomic, type DirSyncer } from './durable.js';

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
}

function emptyDatasourceSummary(): DatasourceSummary {
  return { success: 0, sqlFailed: 0, connectionFailed: 0, invalid: 0, deferred: 0, sqlMs: 0 };
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

  const recovered = await recoverClaims(layout, deps.name, config.defaultDatasource, deps.syncer);
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
  const perDatasource: Record<string, DatasourceSummary> = {};
  // Every drain finishes before the run does, even when one fails: a run that returned
  // while another drain still held claims would let the next run take them back.
  const drains = await Promise.allSettled(names.map(async (name) => {
    perDatasource[name] = await drainDatasource(deps, name, options, failInvalid, logFailure, lockNameFor(spoolId, name));
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
    recovered,
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
  options: RunOptions,
  failInvalid: (path: string, name: string, error: unknown, record?: Partial<SpoolRecord>, shownAs?: string) => Promise<void>,
  logFailure: (entry: FailureEntry) => void,
  lockName: string,
): Promise<DatasourceSummary> {
  const { layout, config } = deps;
  const summary = emptyDatasourceSummary();
  const dsDir = join(layout.spoolDir, ds);
  const claimDir = join(layout.activeDir, deps.name, ds);
  const home = (path: string) => relative(layout.home, path);
  let claimDirReady = false;
  let session: Session | null = null;
  /** Why connecting failed; the next job read carries it. */
  let connectError: unknown = null;
  let locked = false;
  let stopped = false;
  let taken = 0;

  /** A connection failure: the job goes back to its place with one more attempt, or to failed/connection-…. */
  const connectionFailure = async (record: SpoolRecord, claimed: string, error: unknown): Promise<void> => {
    const lastError = lastErrorOf('connection', error, new Date());
    const updated: SpoolRecord = { ...record, attempts: record.attempts + 1, lastError };
    // Rewrite the claim, then move it in one rename: a crash leaves one copy, never two.
    await writeFileAtomic(layout.tmpDir, claimed, encodeRecord(updated), deps.syncer);
    let moved: string;
    if (updated.attempts >= config.maxConnectionAttempts) {
      moved = home(await moveToFailed(layout, claimed, 'connection-', idFileName(record), deps.syncer));
    } else {
      const back = spoolPathFor(layout.spoolDir, ds, record.id);
      await makeDirDurable(dirname(back), deps.syncer);
      await fs.promises.rename(claimed, back);
      await deps.syncer.sync(dirname(back));
      moved = home(back);
    }
    summary.connectionFailed++;
    summary.connectionError = `${lastError.code}: ${lastError.message}`;
    logFailure(entryFor(record, home(spoolPathFor(layout.spoolDir, ds, record.id)), 'connection', lastError, updated.attempts, moved, config.logs.logParams));
  };

  try {
    outer: for await (const leaf of leavesOf(dsDir)) {
      const names = await jobsInLeaf(leaf);
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
          try {
            session = await deps.driver(ds).connect();
            if (!(await session.tryLock(lockName))) {
              summary.busy = true;
              stopped = true;
              break outer;
            }
            locked = true;
          } catch (error) {
            session?.destroy();
            session = null;
            connectError = error;
          }
        }
        try {
          await fs.promises.rename(src, claimed);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // another runner took it
          throw error;
        }
        taken++;

        let record: SpoolRecord;
        let params;
        try {
          record = decodeRecord(await readJobText(claimed, config.limits.maxFileBytes));
          params = decodeParams(record.params);
        } catch (error) {
          summary.invalid++;
          summary.sqlFailed++;
          await failInvalid(claimed, name, error, { id: idOfFileName(name) ?? '', datasource: ds }, src);
          continue;
        }
        if (record.datasource !== ds || record.id !== idOfFileName(name)) {
          // Copied into another datasource's tree, or renamed: send it to its own place.
          const target = spoolPathFor(layout.spoolDir, record.datasource, record.id);
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

        if (connectError !== null || session === null) {
          // The first job carries the failure: its attempt count grows, the rest stay untouched.
          await connectionFailure(record, claimed, connectError);
          stopped = true;
          break outer;
        }

        const t = performance.now();
        try {
          await session.execute(record.sql, params);
          summary.sqlMs += performance.now() - t;
          summary.success++;
          await fs.promises.unlink(claimed);
        } catch (error) {
          if (classifyError(error, 'execute') === 'connection') {
            session.destroy();
            session = null;
            await connectionFailure(record, claimed, error);
            stopped = true;
            break outer;
          }
          summary.sqlMs += performance.now() - t;
          const lastError = lastErrorOf('sql', error, new Date());
          const updated: SpoolRecord = { ...record, attempts: record.attempts + 1, lastError };
          await writeFileAtomic(layout.tmpDir, claimed, encodeRecord(updated), deps.syncer);
          const moved = await moveToFailed(layout, claimed, 'failed-', idFileName(record), deps.syncer);
          summary.sqlFailed++;
          logFailure(entryFor(record, home(src), 'sql', lastError, updated.attempts, home(moved), config.logs.logParams));
        }
      }
      if (await removeIfEmpty(leaf.path)) await removeIfEmpty(dirname(leaf.path));
    }
  } finally {
    // Released however the drain ends: a leaked connection would make a later run wait forever.
    const held = session as Session | null;
    if (held !== null) {
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
  if (stopped) summary.deferred = (await countJobs(dsDir)).count;
  return summary;
}

/**
 * The database lock that makes one runner at a time drain a datasource of a spool, across
 * processes and hosts (GET_LOCK names are at most 64 characters).
 */
export function lockNameFor(spoolId: string, datasource: string): string {
  return 'querybatch:' + createHash('sha256').update(`${spoolId}:${datasource}`).digest('hex').slice(0, 40);
}

function idFileName(record: SpoolRecord): string {
  return `${record.id}.batchsql`;
}

function entryFor(record: SpoolRecord, file: string, cls: 'sql' | 'connection', error: LastError, attempts: number, moved: string, logParams: boolean): FailureEntry {
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
