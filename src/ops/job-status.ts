import { basename, dirname, join } from 'node:path';
import fs from 'node:fs';
import { pathExists } from '../spool/durable.js';
import { FAILED_PREFIXES } from '../spool/failed-dir.js';
import { requireJobId } from '../spool/id.js';
import type { JobStatus, ResolvedConfig } from '../interfaces.js';
import type { Layout } from '../spool/layout.js';
import { jobsInLeaf, listSorted, treeNames, walkTree } from '../spool/listing.js';
import { isRunnerAlive, uncertainMarkerName } from '../run/recovery.js';
import { readJobRecords, type ReadLimits } from '../spool/read-job.js';
import type { ScriptFile } from '../spool/script-file.js';
import type { OutcomeLog } from './outcomes.js';
import { immediateIds } from '../spool/priority.js';
import { findDelayed } from '../spool/delayed.js';
import { compareNames, jobCountOf, parseJobFileName, shardOf, spoolPathFor } from '../spool/shards.js';
import { SPOOL_EXTENSION, decodeSegment, type SpoolRecord } from '../spool/record.js';

/** Datasources that may hold the job: the configured ones and any other tree under spool/. */
export async function datasourceNames(layout: Layout, config: ResolvedConfig): Promise<string[]> {
  return [...new Set([...Object.keys(config.datasources), ...(await treeNames(layout.spoolDir))])];
}

/**
 * Jobs ahead of `id` in its datasource: the walk stops at its leaf, and a leaf before it
 * that the leaf index trusts is not listed. `found` is where it was found, and its place
 * in that file.
 */
async function jobsAhead(layout: Layout, datasource: string, id: string, found: Found): Promise<number> {
  const [bucket, leaf] = shardOf(id);
  const self = basename(found.path);
  let ahead = found.index;
  for await (const entry of walkTree(join(layout.spoolDir, datasource))) {
    if (entry.kind !== 'leaf') continue;
    const order = compareNames(entry.leaf.bucket + entry.leaf.leaf, bucket + leaf);
    if (order > 0) break;
    if (order < 0) {
      ahead += entry.count;
      continue;
    }
    for (const name of await jobsInLeaf(entry.leaf)) if (compareNames(name, self) < 0) ahead += jobCountOf(name);
    break;
  }
  return ahead;
}

/** Where a job's file is, its record (null when it could not be read), and its place in the file (0 but in a segment). */
export interface Found {
  readonly path: string;
  readonly record: SpoolRecord | null;
  readonly index: number;
  /** A script's parts (its progress). */
  readonly script?: ScriptFile | null;
}

/**
 * Finds job `id` in directory `dir` (a leaf, or a runner's claims): its own file
 * `<id>.batchsql`, or a segment `<first>.<n>.batchsql` that holds it (spool/writer.ts keeps
 * a segment's jobs in its first one's leaf). Segments are read nearest first.
 */
export async function findJob(dir: string, id: string, limits: ReadLimits): Promise<Found | null> {
  // Its own file; in a runner's claims, also under its uncertain marker (a statement that commits by itself in flight).
  for (const own of [join(dir, id + SPOOL_EXTENSION), join(dir, uncertainMarkerName(id))]) {
    if (!(await pathExists(own))) continue;
    let record: SpoolRecord | null = null;
    let script: ScriptFile | null = null;
    try {
      ({ records: [record = null], script } = await readJobRecords(own, limits));
    } catch {
      // claimed or damaged since we looked: where it was still says enough
    }
    return { path: own, record, index: 0, script };
  }
  const candidates = (await listSorted(dir)).map((e) => ({ name: e.name, job: parseJobFileName(e.name) }))
    .filter(({ job }) => job !== undefined && job.count > 1 && job.id <= id).reverse();
  for (const { name, job } of candidates) {
    try {
      const records = decodeSegment(await fs.promises.readFile(join(dir, name), 'utf8'), job!.count);
      const index = records.findIndex((r) => r.id === id);
      if (index >= 0) return { path: join(dir, name), record: records[index]!, index };
    } catch {
      // claimed or damaged since we looked
    }
  }
  return null;
}

/**
 * What became of a job: queued (with its position), running, succeeded, failed or unknown.
 * Looks where the job can be, derived from its id; never scans the whole spool (only the
 * leaves ahead of a queued job, to count its position).
 */
export async function jobStatus(layout: Layout, config: ResolvedConfig, outcomes: OutcomeLog, id: string, now = Date.now()): Promise<JobStatus> {
  requireJobId(id);
  // Checked in the order a job moves (delayed → spool → claim → failed/ or done), so a job
  // that moves while we look is still found one step on.
  const datasources = await datasourceNames(layout, config);
  for (const datasource of datasources) {
    const delayed = await findDelayed(layout, datasource, id);
    if (delayed === null) continue;
    let attempts = 0;
    try {
      attempts = (await readJobRecords(delayed.path, config.limits)).records[0]?.attempts ?? 0;
    } catch {
      // promoted since we looked: it is found in its shard below
    }
    if (await pathExists(delayed.path)) return { id, state: 'delayed', datasource, runAt: new Date(delayed.dueMs).toISOString(), attempts };
  }
  for (const datasource of datasources) {
    const found = await findJob(dirname(spoolPathFor(layout.spoolDir, datasource, id)), id, config.limits);
    if (found !== null) {
      // Marked jobs run first, in id order (spool/priority.ts).
      const marked = await immediateIds(layout, datasource);
      const position = marked.includes(id)
        ? marked.indexOf(id) + 1
        : (await jobsAhead(layout, datasource, id, found)) + marked.filter((m) => compareNames(m, id) > 0).length + 1;
      return { id, state: 'queued', datasource, position, attempts: found.record?.attempts ?? 0, priority: found.record?.priority ?? 'normal' };
    }
  }
  for (const runner of await listSorted(layout.activeDir)) {
    if (!runner.isDirectory()) continue;
    for (const ds of await listSorted(join(layout.activeDir, runner.name))) {
      const found = await findJob(join(layout.activeDir, runner.name, ds.name), id, config.limits);
      if (found) {
        const script = found.script ? { done: found.script.done, statements: found.script.record.script.statements } : undefined;
        return { id, state: 'running', datasource: ds.name, runner: runner.name, ...(!isRunnerAlive(runner.name) && { runnerDead: true as const }), ...(script && { script }) };
      }
    }
  }
  for (const prefix of FAILED_PREFIXES) {
    const file = `${prefix}${id}${SPOOL_EXTENSION}`;
    if (!(await pathExists(join(layout.failedDir, file)))) continue;
    const found = await outcomes.find(id, now);
    const outcome = found?.status === 'cancelled' ? null : found;
    let record: SpoolRecord | null;
    try {
      [record = null] = (await readJobRecords(join(layout.failedDir, file), config.limits)).records;
    } catch {
      record = null;
    }
    return {
      id,
      state: 'failed',
      datasource: record?.datasource ?? outcome?.datasource ?? null,
      class: prefix === 'uncertain-' ? 'uncertain' : record?.lastError?.class ?? outcome?.class ?? (prefix === 'connection-' ? 'connection' : 'sql'),
      code: record?.lastError?.code ?? outcome?.code ?? null,
      message: record?.lastError?.message ?? outcome?.message ?? null,
      file,
      ...(outcome?.claimedAt !== undefined && { claimedAt: outcome.claimedAt }),
      finishedAt: record?.lastError?.at ?? outcome?.finishedAt ?? null,
      attempts: record?.attempts ?? null,
    };
  }
  const outcome = await outcomes.find(id, now);
  if (outcome?.status === 'succeeded') {
    return {
      id,
      state: 'succeeded',
      datasource: outcome.datasource,
      ...(outcome.claimedAt !== undefined && { claimedAt: outcome.claimedAt }),
      finishedAt: outcome.finishedAt,
      durationMs: outcome.durationMs,
      affectedRows: outcome.affectedRows ?? 0,
    };
  }
  if (outcome?.status === 'cancelled') {
    return { id, state: 'cancelled', datasource: outcome.datasource, cancelledAt: outcome.finishedAt };
  }
  if (outcome?.status === 'failed') {
    // Failed, and its file has left failed/ since (respooled and run, or removed by a person).
    return {
      id,
      state: 'failed',
      datasource: outcome.datasource,
      class: outcome.class ?? 'sql',
      code: outcome.code ?? null,
      message: outcome.message ?? null,
      file: null,
      ...(outcome.claimedAt !== undefined && { claimedAt: outcome.claimedAt }),
      finishedAt: outcome.finishedAt,
      attempts: null,
    };
  }
  return { id, state: 'unknown' };
}
