import { join } from 'node:path';
import type { LastRunLine } from '../interfaces.js';
import type { FailedClass } from '../spool/failed-dir.js';
import { idTime } from '../spool/id.js';
import { walkTree } from '../spool/listing.js';
import { idOfFileName } from '../spool/shards.js';
import type { SpoolSnapshot } from './metrics.js';

/**
 * What the overview page shows, as data (the page and /api/overview both use it): per
 * datasource pending, oldest age, an age histogram in the manner of Postfix's qshape,
 * failed files by class and paused; the last run summaries.
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
}

export interface Overview {
  readonly at: string;
  readonly datasources: readonly DatasourceOverview[];
  /** The last run summaries, newest first. */
  readonly runs: readonly LastRunLine[];
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
export async function readOverview(spoolDir: string, snapshot: SpoolSnapshot, runs: readonly LastRunLine[], now = Date.now()): Promise<Overview> {
  const datasources: DatasourceOverview[] = [];
  for (const [name, p] of snapshot.pending) {
    datasources.push({
      name,
      pending: p.count,
      oldestAgeSeconds: p.oldestAgeSeconds,
      ages: p.count === 0 ? AGE_BUCKETS.map(() => 0) : await ageHistogram(join(spoolDir, name), now),
      failed: snapshot.failed.get(name) ?? NO_FAILED,
      paused: snapshot.paused.get(name) ?? false,
    });
  }
  const unknown = snapshot.failed.get('unknown');
  if (unknown !== undefined && !snapshot.pending.has('unknown') && Object.values(unknown).some((n) => n > 0)) {
    datasources.push({ name: 'unknown', pending: 0, oldestAgeSeconds: 0, ages: AGE_BUCKETS.map(() => 0), failed: unknown, paused: false });
  }
  return { at: new Date(now).toISOString(), datasources, runs: [...runs].reverse() };
}
