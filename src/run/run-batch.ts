import { join, relative } from 'node:path';
import { QueryBatchError, isQueryBatchError, withCode } from '../errors.js';
import type { DatasourceSummary, ResolvedConfig, RunOptions, RunSummary } from '../interfaces.js';
import { readSpoolId, type Layout } from '../spool/layout.js';
import { countJobs, removeIfEmpty } from '../spool/listing.js';
import type { SpoolRecord } from '../spool/record.js';
import { adoptDropIns, type AdoptResult } from './adoption.js';
import type { DrainOptions, RunnerDeps } from './context.js';
import { Drain } from './drain.js';
import { failureOf } from './failure.js';
import { adoptionClaimDir, recoverClaims, removeStaleTemps, type Recovery } from './recovery.js';
import { emptyDatasourceSummary, summarize } from './tally.js';
import { pausedDatasources } from '../spool/paused.js';
import { promoteDue } from '../spool/delayed.js';
import { invalidFile, logUncertainClaims, settleFailure, type SettleContext } from './settle.js';

export type { RunnerDeps } from './context.js';

/**
 * One run: give back dead runners' claims, adopt drop-ins, then drain every datasource
 * (concurrently with each other, each serially in FIFO order on one connection: drain.ts),
 * and write the summary line.
 */
export async function runBatch(deps: RunnerDeps, options: RunOptions = {}): Promise<RunSummary> {
  const { layout, config, logs } = deps;
  const names = datasourcesOf(config, options);
  const started = new Date();
  const t0 = performance.now();
  const settling: SettleContext = {
    home: layout.home,
    logs,
    logParams: config.logs.logParams,
    maxConnectionAttempts: config.maxConnectionAttempts,
    onOutcome: (outcome, record) => deps.onOutcome?.(outcome, record),
  };
  const { tmpRemoved, recovery, adoption } = await prepare(deps, settling, options.upkeep !== false);
  const waiting = await promoteDelayed(deps, names);
  const spoolId = await readSpoolId(layout);
  // A paused datasource is not drained (nor connected to): its jobs wait for resume.
  const paused = await pausedDatasources(layout);
  const active = names.filter((name) => !paused.has(name));
  // A paused datasource's lock, kept since a continuous run, goes: another runner may take it over.
  for (const name of paused) if (names.includes(name)) await deps.kept?.release(name);
  const drainOptions = await withProgress(layout, active, options);
  const perDatasource = await drainAll(deps, active, drainOptions, settling, spoolId);
  for (const name of names) if (paused.has(name)) perDatasource[name] = { ...emptyDatasourceSummary(), paused: true };
  const finished = new Date();
  const summary = { ...summarize(deps.name, perDatasource, { started, finished, wallMs: performance.now() - t0, tmpRemoved, recovery, adoption }), ...waiting };
  if (summary.success + summary.sqlFailed + summary.connectionFailed > 0) logs.summary(finished, summary);
  return summary;
}

/**
 * Moves the delayed jobs that are due into their shards, before the drains (spool/delayed.ts),
 * and says how many still wait and when the first is due.
 */
async function promoteDelayed(deps: RunnerDeps, names: readonly string[]): Promise<{ delayed: number; nextDueAt: string | null }> {
  const syncer = deps.config.durability === 'fsync' ? deps.syncer : null;
  let delayed = 0;
  let next: number | null = null;
  for (const name of names) {
    const { waiting, nextDueMs, failed } = await promoteDue(deps.layout, name, syncer);
    if (failed) logLeftInPlace(deps, failed.path, failed.error, { id: failed.id, datasource: name });
    delayed += waiting;
    if (nextDueMs !== null && (next === null || nextDueMs < next)) next = nextDueMs;
  }
  return { delayed, nextDueAt: next === null ? null : new Date(next).toISOString() };
}

/** The datasources a run drains: the one asked for, else every configured one. Throws UNKNOWN_DATASOURCE. */
function datasourcesOf(config: ResolvedConfig, options: RunOptions): string[] {
  const names = options.datasource !== undefined ? [options.datasource] : Object.keys(config.datasources);
  for (const name of names) {
    if (!Object.hasOwn(config.datasources, name)) {
      throw new QueryBatchError('UNKNOWN_DATASOURCE', `Expected a configured datasource (${Object.keys(config.datasources).join(', ') || 'none are configured'}); got ${JSON.stringify(name)}`);
    }
  }
  return names;
}

/**
 * Before the drains: stale temp files removed, dead runners' claims given back, drop-ins
 * adopted into their shards (not without `upkeep`: the watcher or the next run adopts them).
 */
async function prepare(deps: RunnerDeps, settling: SettleContext, upkeep: boolean): Promise<{ tmpRemoved: number; recovery: Recovery; adoption: AdoptResult }> {
  const { layout, config, syncer } = deps;
  const tmpRemoved = await removeStaleTemps(layout, config.tmpMaxAgeMs);
  const recovery = await recoverClaims(layout, deps.name, config.defaultDatasource, syncer);
  logUncertainClaims(settling, recovery);
  if (!upkeep) return { tmpRemoved, recovery, adoption: { adopted: 0, invalid: 0, settling: 0 } };
  const adoption = await adoptDropIns({
    layout,
    config,
    writer: deps.writer,
    syncer,
    claimDir: adoptionClaimDir(layout, deps.name),
    fail: async (path, name, error, record, foundAt) => {
      await settleFailure(settling, invalidFile(layout, syncer, path, name, record, foundAt), failureOf('invalid', error));
    },
    leave: (path, error, record) => logLeftInPlace(deps, path, error, record),
  });
  await removeIfEmpty(adoptionClaimDir(layout, deps.name));
  return { tmpRemoved, recovery, adoption };
}

/** A drop-in that is fine, or a due delayed job, that could not be placed (disk full, permissions): it stays for the next run, and the log says why. */
function logLeftInPlace(deps: RunnerDeps, path: string, error: unknown, record?: Partial<SpoolRecord>): void {
  const failure = failureOf('invalid', error);
  const shown = relative(deps.layout.home, path);
  deps.logs.failure(new Date(), {
    class: 'invalid',
    id: record?.id ?? null,
    file: shown,
    datasource: record?.datasource ?? null,
    code: failure.code,
    moved: shown,
    message: `Could not queue this file (${failure.message}); left in place for the next run`,
  });
}

/**
 * Drains the datasources concurrently. Every drain finishes before the run does, even when
 * one fails: a run that returned while another drain still held claims would let the next
 * run take them back.
 */
async function drainAll(deps: RunnerDeps, names: readonly string[], options: DrainOptions, settling: SettleContext, spoolId: string): Promise<Record<string, DatasourceSummary>> {
  const perDatasource: Record<string, DatasourceSummary> = {};
  const drains = await Promise.allSettled(names.map(async (name) => {
    perDatasource[name] = await new Drain(deps, name, options, settling, spoolId).run();
  }));
  const errors: Error[] = [];
  for (const [i, drain] of drains.entries()) {
    if (drain.status === 'fulfilled') continue;
    const error = drain.reason as NodeJS.ErrnoException;
    if (isQueryBatchError(error)) {
      errors.push(error);
      continue;
    }
    const failed = new QueryBatchError('RUN_IO_FAILED', `Datasource "${names[i]}" stopped: ${withCode(error)}. Its claimed job is given back to the spool by the next run.`, { cause: error });
    deps.logs.runFailure(new Date(), { datasource: names[i]!, code: failed.code, message: failed.message });
    errors.push(failed);
  }
  const [first] = errors;
  if (first) throw first;
  return perDatasource;
}

/** With an onProgress hook: counts what is pending (streaming the shard listings) and makes the step counter. */
async function withProgress(layout: Layout, names: readonly string[], options: RunOptions): Promise<DrainOptions> {
  const onProgress = options.onProgress;
  if (!onProgress) return options;
  let total = 0;
  for (const name of names) total += (await countJobs(join(layout.spoolDir, name))).count;
  let done = 0;
  onProgress({ done, total });
  return {
    ...options,
    step: () => onProgress({ done: ++done, total: Math.max(total, done) }),
    scriptStep: (id, statement, statements) => onProgress({ done, total: Math.max(total, done), ...(statement < statements && { script: { id, statement, statements } }) }),
  };
}
