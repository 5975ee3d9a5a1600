import { randomBytes } from 'node:crypto';
import { basename, dirname, join, relative } from 'node:path';
import fs from 'fs-extra';
import { QueryBatchError } from '../errors.js';
import type { JobStatus, ResolvedConfig } from '../interfaces.js';
import { adoptionClaimDir } from '../run/recovery.js';
import { makeDirDurable, writeFileAtomic, type DirSyncer } from '../spool/durable.js';
import { requireJobId } from '../spool/id.js';
import type { Layout } from '../spool/layout.js';
import { markerPath } from '../spool/priority.js';
import { findDelayed } from '../spool/delayed.js';
import { decodeSegment, describeParams, encodeRecord, type SpoolRecord } from '../spool/record.js';
import { readJobRecords } from '../spool/read-job.js';
import { parseJobFileName, spoolPathFor } from '../spool/shards.js';
import { datasourceNames, findJob, jobStatus } from './job-status.js';
import { loggedSql } from './log-format.js';
import type { Logs } from './logs.js';
import type { OutcomeLog } from './outcomes.js';

export interface CancelDeps {
  readonly layout: Layout;
  readonly config: ResolvedConfig;
  readonly syncer: DirSyncer;
  readonly outcomes: OutcomeLog;
  readonly logs: Logs;
  /** This process's runner name: the file is taken into its claims while it is cancelled. */
  readonly runner: string;
}

/** A cancelled job: where it was (relative to the home) and its datasource. */
export interface CancelResult {
  readonly id: string;
  readonly datasource: string;
  readonly file: string;
}

/** How often a job that moved while we took it (a segment rewritten, given back) is looked for again. */
const TRIES = 3;

/**
 * Removes a queued or delayed job from the spool: `status(id)` then says `cancelled`, and the error
 * log has a `cancelled` line. The job's file (its own, or the segment that holds it) is
 * taken by one rename into this process's claims, as a runner claims it, so of a cancel
 * and a runner exactly one wins; a segment's other jobs go back to the spool as a new
 * segment (written durably before the claim is removed). A crash while the file is held
 * gives it back to the spool (recovery), so the job is then not cancelled; a crash between
 * the new segment and the removal of the claim leaves its other jobs twice, and the ledger
 * settles what repeats (as for a runner's segment: run/claims.ts). Throws
 * JOB_NOT_CANCELLABLE when the job is not queued (running, finished, failed, unknown).
 */
export async function cancelJob(deps: CancelDeps, id: string): Promise<CancelResult> {
  const { layout, config } = deps;
  requireJobId(id);
  for (const datasource of await datasourceNames(layout, config)) {
    // A delayed job (not due yet) is taken from spool/.delayed/ the same way.
    for (let i = 0; i < TRIES; i++) {
      const delayed = await findDelayed(layout, datasource, id);
      if (!delayed) break;
      const result = await takeOut(deps, datasource, id, delayed.path, 1);
      if (result) return result;
    }
    const dir = dirname(spoolPathFor(layout.spoolDir, datasource, id));
    for (let i = 0; i < TRIES; i++) {
      const found = await whileDirectoriesMove(() => findJob(dir, id, config.limits));
      const job = found && parseJobFileName(basename(found.path));
      if (!found || !job) break;
      const result = await takeOut(deps, datasource, id, found.path, job.count);
      if (result) return result;
    }
  }
  throw notCancellable(await whileDirectoriesMove(() => jobStatus(layout, config, deps.outcomes, id)));
}

/**
 * Looks again when a directory vanished while it was being read (ENOENT): a run removes
 * drained leaves and empty claim directories as it goes, and a job moves between them.
 */
async function whileDirectoriesMove<T>(look: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await look();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || i >= TRIES) throw error;
    }
  }
}

/** Takes the file at `path` and removes job `id` from it; null when the file was gone (claimed) or no longer holds it. */
async function takeOut(deps: CancelDeps, datasource: string, id: string, path: string, count: number): Promise<CancelResult | null> {
  const { layout, syncer } = deps;
  const claimDir = adoptionClaimDir(layout, deps.runner);
  const claimed = join(claimDir, `${randomBytes(4).toString('hex')}-cancel-${basename(path)}`);
  for (;;) {
    await fs.promises.mkdir(claimDir, { recursive: true, mode: 0o700 });
    try {
      await fs.promises.rename(path, claimed);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // A runner took it first; or a run removed the empty claim directory meanwhile (run/run-batch.ts): again.
      if (!(await fs.pathExists(path))) return null;
    }
  }
  let record: SpoolRecord;
  try {
    const records = count === 1 ? (await readJobRecords(claimed, deps.config.limits)).records : decodeSegment(await fs.promises.readFile(claimed, 'utf8'), count);
    const index = records.findIndex((r) => r.id === id);
    if (index < 0) throw new Error('moved');
    record = records[index]!;
    const rest = records.filter((_, i) => i !== index);
    if (rest.length > 0) {
      const back = spoolPathFor(layout.spoolDir, datasource, rest[0]!.id, rest.length);
      await writeFileAtomic(layout.tmpDir, back, rest.map((r) => encodeRecord(r)).join(''), syncer);
    }
  } catch (error) {
    // Not ours to cancel after all (or unreadable): back where it was, untouched (a run may have removed its emptied leaf).
    await makeDirDurable(dirname(path), syncer);
    await fs.promises.rename(claimed, path);
    await syncer.sync(dirname(path));
    if ((error as Error).message === 'moved') return null;
    throw error;
  }
  await fs.promises.unlink(claimed);
  // A run of this process may remove the emptied claim directory meanwhile: then there is nothing to make durable.
  await syncer.sync(claimDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  await fs.promises.rm(markerPath(layout, datasource, id), { force: true });
  const now = new Date();
  const file = relative(layout.home, path);
  deps.outcomes.record({ id, status: 'cancelled', datasource, finishedAt: now.toISOString() });
  await deps.outcomes.flush();
  deps.logs.failure(now, {
    class: 'cancelled',
    id,
    file,
    datasource,
    code: 'CANCELLED',
    moved: '-',
    message: 'Cancelled while queued (querybatch cancel): removed from the spool, it will not run',
    ...(record.script === undefined && loggedSql(record.sql)),
    params: describeParams(record.params),
  });
  return { id, datasource, file };
}

/** Why a job that is not queued can't be cancelled. */
function notCancellable(status: JobStatus): QueryBatchError {
  const why = ((): string => {
    switch (status.state) {
      case 'running':
        return status.runnerDead
          ? `it is claimed by runner ${status.runner}, which has died; the next run gives it back to the spool, then cancel it`
          : `it is running on ${status.datasource} (runner ${status.runner})`;
      case 'succeeded':
        return `it has run already (succeeded at ${status.finishedAt})`;
      case 'failed':
        return `it has run already and failed${status.file ? ` (failed/${status.file}: \`querybatch failed delete ${status.file}\` removes it)` : ''}`;
      case 'cancelled':
        return `it was cancelled already (at ${status.cancelledAt})`;
      case 'unknown':
        return 'no such job here (never spooled here, or finished longer ago than retentionMs)';
      case 'queued':
      case 'delayed':
        return 'it moved while it was being taken; try again';
    }
  })();
  return new QueryBatchError('JOB_NOT_CANCELLABLE', `Expected a queued job to cancel; job ${status.id} is not queued: ${why}`);
}
