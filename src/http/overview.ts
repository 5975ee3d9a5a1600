import { join } from 'node:path';
import type { LastRunLine } from '../interfaces.js';
import { isDatasourceName } from '../spool/record.js';
import type { FailedClass } from '../spool/failed-dir.js';
import { idTime } from '../spool/id.js';
import { listSorted, walkTree } from '../spool/listing.js';
import { idOfFileName, parseJobFileName } from '../spool/shards.js';
import type { SpoolSnapshot } from './metrics.js';

/**
 * What the overview page shows, as data (the page and /api/overview both use it): per
 * datasource pending, oldest age, an age histogram in the manner of Postfix's qshape,
 * failed files by class, paused, in flight (claimed by a runner now) and blocked (strictOrder);
 * the last run summaries.
 */

/** The histogram's buckets: upper bounds in seconds (the last is open). */
export const AGE_BUCKETS: readonly { readonly label: string; readonly upToSeconds: number }[] = [
  { label: '0–5m', upToSeconds: 5 * 60 },
  { label: '5–30m', upToSeconds: 30 * 60 },
  { label: '30m–2h', upToSeconds: 2 * 3600 },
  { label: '2h–1d', upToSeconds: 86_400 },
  { label: '>1d', upToSeconds: Infinity },
];

/** Which bucket an age in seconds falls in. Pure. */
export function ageBucketOf(ageSeconds: number): number {
  const i = AGE_BUCKETS.findIndex((b) => ageSeconds < b.upToSeconds);
  return i === -1 ? AGE_BUCKETS.length - 1 : i;
}

export interface DatasourceOverview {
  readonly name: string;
  readonly pending: number;
  readonly oldestAgeSeconds: number;
  /** Pending jobs per AGE_BUCKETS entry. */
  readonly ages: readonly number[];
  readonly failed: Readonly<Record<FailedClass, number>>;
  readonly paused: boolean;
  /** Jobs claimed by a runner now (files under spool/.active/<runner>/<datasource>/), and the first of them. */
  readonly inFlight: InFlight;
  /** strictOrder: the name in failed/ of the file that blocks it; null when not blocked or not strictOrder. */
  readonly blocked: string | null;
}

export interface InFlight {
  readonly jobs: number;
  /** The oldest claimed job's id (the one a runner executes now or next), or null. */
  readonly first: string | null;
  readonly runner: string | null;
}

export interface Overview {
  readonly at: string;
  readonly datasources: readonly DatasourceOverview[];
  /** The last run summaries, newest first. */
  readonly runs: readonly LastRunLine[];
}

/** What readOverview takes besides the spool's snapshot. */
export interface OverviewExtras {
  readonly inFlight: ReadonlyMap<string, InFlight>;
  readonly blocked: ReadonlyMap<string, string>;
}

const NOT_IN_FLIGHT: InFlight = { jobs: 0, first: null, runner: null };

/**
 * The claims under spool/.active/<runner>/<datasource>/ per datasource: what runners hold
 * now (status(id) calls such a job `running`). Two directory levels and one listing per
 * datasource a runner holds; a claim's job count comes from its name (a segment's `.<n>`).
 */
export async function readInFlight(activeDir: string): Promise<Map<string, InFlight>> {
  const out = new Map<string, InFlight>();
  for (const runner of await listSorted(activeDir)) {
    if (!runner.isDirectory()) continue;
    for (const ds of await listSorted(join(activeDir, runner.name))) {
      if (!ds.isDirectory() || !isDatasourceName(ds.name)) continue;
      let jobs = 0;
      let first: string | null = null;
      for (const file of await listSorted(join(activeDir, runner.name, ds.name))) {
        const job = parseJobFileName(file.name);
        if (job === undefined) continue;
        jobs += job.count;
        if (first === null || job.id < first) first = job.id;
      }
      if (jobs === 0) continue;
      const seen = out.get(ds.name) ?? NOT_IN_FLIGHT;
      const keepSeen = seen.first !== null && first !== null && seen.first < first;
      out.set(ds.name, { jobs: seen.jobs + jobs, first: keepSeen ? seen.first : first, runner: keepSeen ? seen.runner : runner.name });
    }
  }
  return out;
}

/**
 * Pending jobs of one datasource by age. A leaf of the spool holds what was spooled in one
 * second, so each leaf's jobs are counted at its oldest job's age: exact to the second, at
 * the cost of a walk with the leaf index (a stat per unchanged large leaf).
 */
export async function ageHistogram(dsDir: string, now: number): Promise<number[]> {
  const ages = AGE_BUCKETS.map(() => 0);
  for await (const entry of walkTree(dsDir)) {
    if (entry.kind !== 'leaf' || entry.oldest === null) continue;
    const id = idOfFileName(entry.oldest);
    if (id === undefined) continue;
    ages[ageBucketOf(Math.max(0, now - idTime(id)) / 1000)]! += entry.count;
  }
  return ages;
}

const NO_FAILED: Readonly<Record<FailedClass, number>> = { failed: 0, connection: 0, uncertain: 0, other: 0 };

/** The overview from a metrics snapshot, the spool's trees and the run log's last lines. */
export async function readOverview(spoolDir: string, snapshot: SpoolSnapshot, runs: readonly LastRunLine[], extras: OverviewExtras, now = Date.now()): Promise<Overview> {
  const datasources: DatasourceOverview[] = [];
  for (const [name, p] of snapshot.pending) {
    datasources.push({
      name,
      pending: p.count,
      oldestAgeSeconds: p.oldestAgeSeconds,
      ages: p.count === 0 ? AGE_BUCKETS.map(() => 0) : await ageHistogram(join(spoolDir, name), now),
      failed: snapshot.failed.get(name) ?? NO_FAILED,
      paused: snapshot.paused.get(name) ?? false,
      inFlight: extras.inFlight.get(name) ?? NOT_IN_FLIGHT,
      blocked: extras.blocked.get(name) ?? null,
    });
  }
  const unknown = snapshot.failed.get('unknown');
  if (unknown !== undefined && !snapshot.pending.has('unknown') && Object.values(unknown).some((n) => n > 0)) {
    datasources.push({ name: 'unknown', pending: 0, oldestAgeSeconds: 0, ages: AGE_BUCKETS.map(() => 0), failed: unknown, paused: false, inFlight: NOT_IN_FLIGHT, blocked: null });
  }
  return { at: new Date(now).toISOString(), datasources, runs: [...runs].reverse() };
}
