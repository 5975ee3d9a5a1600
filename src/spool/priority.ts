import { basename, dirname, join } from 'node:path';
import fs from 'node:fs';
import { makeDirDurable, type DirSyncer } from './durable.js';
import { isId } from './id.js';
import type { Layout } from './layout.js';
import { jobsInLeaf, leavesOf, listSorted, type Leaf } from './listing.js';
import { BUCKET_PATTERN, LEAF_PATTERN, shardOf, spoolPathFor } from './shards.js';

/**
 * Immediate priority. An immediate job lives in its shard like any other (so claims,
 * recovery, respooling and status by id work unchanged); beside it, an empty marker
 * `spool/.immediate/<datasource>/<id>` says "run me first". A drain takes the marked jobs
 * first, in id order (FIFO among themselves), then walks the shards as usual, where those
 * jobs are gone already. The marker is written just after its job (so a run it triggers
 * finds the job there) and removed once the job is claimed. A crash can cost a job its
 * marker (it then runs in its normal place) or leave a marker without a job (skipped, and
 * removed once a minute old); it never loses a job or runs one twice.
 */
export function markerPath(layout: Layout, datasource: string, id: string): string {
  return join(layout.immediateDir, datasource, id);
}

/** Writes a job's marker (durably when `syncer` is given), once the job is in its shard. */
export async function markImmediate(layout: Layout, datasource: string, id: string, syncer: DirSyncer | null): Promise<void> {
  const path = markerPath(layout, datasource, id);
  await makeDirDurable(dirname(path), syncer);
  await fs.promises.writeFile(path, '', { mode: 0o600 });
  if (syncer) await syncer.sync(dirname(path));
}

/** Makes the marker directories of these datasources (before the watcher starts: daemon/watcher.ts). */
export async function ensureMarkerDirs(layout: Layout, datasources: readonly string[]): Promise<void> {
  for (const datasource of datasources) await fs.promises.mkdir(join(layout.immediateDir, datasource), { recursive: true, mode: 0o700 });
}

/** Ids of a datasource's marked jobs, oldest first (markers are few: only jobs not yet taken). */
export async function immediateIds(layout: Layout, datasource: string): Promise<string[]> {
  return (await listSorted(join(layout.immediateDir, datasource))).filter((e) => e.isFile() && isId(e.name)).map((e) => e.name);
}

/** What a drain takes next: the names of jobs in one leaf; `marker` is set for an immediate job. */
export interface DrainGroup {
  readonly leaf: Leaf;
  /** A fresh array, the drain's own: it adds names to it (run/run-batch.ts, a segment split into files of their own). */
  readonly names: string[];
  readonly marker?: string;
}

/** The drain's order: immediate jobs first (one group each), then every leaf, oldest first. */
export async function* drainOrder(layout: Layout, datasource: string): AsyncGenerator<DrainGroup> {
  for (const id of await immediateIds(layout, datasource)) {
    const path = spoolPathFor(layout.spoolDir, datasource, id);
    const [bucket, leaf] = shardOf(id);
    if (!BUCKET_PATTERN.test(bucket) || !LEAF_PATTERN.test(leaf)) continue;
    yield { leaf: { bucket, leaf, path: dirname(path) }, names: [basename(path)], marker: markerPath(layout, datasource, id) };
  }
  for await (const leaf of leavesOf(join(layout.spoolDir, datasource))) {
    yield { leaf, names: await jobsInLeaf(leaf) };
  }
}

/** How long a marker without its job is kept (the job may be being claimed or given back) before it is taken as stale. */
export const MARKER_GRACE_MS = 60_000;

/** Removes a marker whose job is not in its shard, unless it is young enough that the job may still come back. */
export async function dropStaleMarker(marker: string, now = Date.now()): Promise<void> {
  try {
    const { mtimeMs } = await fs.promises.stat(marker);
    if (now - mtimeMs > MARKER_GRACE_MS) await fs.promises.unlink(marker);
  } catch {
    // gone already
  }
}
