import { basename, dirname, join } from 'node:path';
import fs from 'fs-extra';
import { LeafIndex, type LeafFacts } from './leaf-index.js';
import { BUCKET_PATTERN, LEAF_PATTERN, belongsInLeaf, compareNames, isHidden, jobCountOf } from './shards.js';

/** Entries of a directory, hidden names skipped, sorted byte-wise; [] when it is gone. */
export async function listSorted(dir: string): Promise<fs.Dirent[]> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
  return entries.filter((e) => !isHidden(e.name)).sort((a, b) => compareNames(a.name, b.name));
}

export interface Leaf {
  readonly bucket: string;
  readonly leaf: string;
  readonly path: string;
}

/** The shard leaves of one datasource's tree, oldest first. Holds one bucket's listing at a time. */
export async function* leavesOf(dsDir: string): AsyncGenerator<Leaf> {
  for (const b of await listSorted(dsDir)) {
    if (!b.isDirectory() || !BUCKET_PATTERN.test(b.name)) continue;
    for (const l of await listSorted(join(dsDir, b.name))) {
      if (!l.isDirectory() || !LEAF_PATTERN.test(l.name)) continue;
      yield { bucket: b.name, leaf: l.name, path: join(dsDir, b.name, l.name) };
    }
  }
}

/** What listing a leaf found: its jobs' count (a segment's jobs each count) and oldest name, and the entries that are not jobs of this leaf. */
export interface LeafScan extends LeafFacts {
  readonly strays: fs.Dirent[];
}

/**
 * Counts a leaf's jobs and finds its strays, without sorting the jobs (only the smallest
 * name matters). With an index, a leaf that has not changed since it was last listed is
 * not listed again (spool/leaf-index.ts).
 */
export async function scanLeaf(leaf: Leaf, index: LeafIndex | null): Promise<LeafScan> {
  const key = `${leaf.bucket}/${leaf.leaf}`;
  let mtime: bigint | null = null;
  if (index !== null) {
    try {
      mtime = (await fs.promises.stat(leaf.path, { bigint: true })).mtimeNs;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { count: 0, oldest: null, strays: [] };
      throw error;
    }
    const known = index.lookup(key, mtime);
    if (known !== undefined) return { ...known, strays: [] };
  }
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(leaf.path, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { count: 0, oldest: null, strays: [] };
    throw error;
  }
  let count = 0;
  let oldest: string | null = null;
  const strays: fs.Dirent[] = [];
  for (const e of entries) {
    if (isHidden(e.name)) continue;
    if (e.isFile() && belongsInLeaf(e.name, leaf.bucket, leaf.leaf)) {
      count += jobCountOf(e.name);
      if (oldest === null || compareNames(e.name, oldest) < 0) oldest = e.name;
    } else {
      strays.push(e);
    }
  }
  strays.sort((a, b) => compareNames(a.name, b.name));
  if (index !== null && mtime !== null) index.record(key, mtime, { count, oldest }, strays.length === 0);
  return { count, oldest, strays };
}

/** Job file names in a leaf, in FIFO order (entries that don't belong there are left to adoption). */
export async function jobsInLeaf(leaf: Leaf): Promise<string[]> {
  const out: string[] = [];
  for (const e of await listSorted(leaf.path)) {
    if (e.isFile() && belongsInLeaf(e.name, leaf.bucket, leaf.leaf)) out.push(e.name);
  }
  return out;
}

/**
 * Pending jobs of one datasource, and the oldest one's name. Memory stays bounded (one
 * leaf's listing at a time), and with the datasource's leaf index only the leaves that
 * changed since the last walk are listed.
 */
export async function countJobs(dsDir: string): Promise<{ count: number; oldest: string | null }> {
  const index = await LeafIndex.load(dirname(dsDir), basename(dsDir));
  let count = 0;
  let oldest: string | null = null;
  for await (const leaf of leavesOf(dsDir)) {
    const scan = await scanLeaf(leaf, index);
    oldest ??= scan.oldest;
    count += scan.count;
  }
  await index.save();
  return { count, oldest };
}

/** Removes a directory if it is empty; says whether it did. */
export async function removeIfEmpty(dir: string): Promise<boolean> {
  try {
    await fs.promises.rmdir(dir);
    return true;
  } catch {
    return false;
  }
}
