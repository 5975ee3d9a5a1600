import { basename, dirname, join } from 'node:path';
import fs from 'node:fs';
import { LeafIndex, type LeafFacts } from './leaf-index.js';
import { isDatasourceName } from './record.js';
import { BUCKET_PATTERN, LEAF_PATTERN, belongsInLeaf, compareNames, isHidden, jobCountOf } from './shards.js';

/**
 * Reading the spool tree (docs/spool-format.md, Layout on disk). One walker, walkSpool and
 * walkTree, gives each leaf with its facts and everything that is not a job in its own
 * shard; status, adoption, ledger prune, job status and countJobs all go through it, and
 * the drain's leavesOf shares its loop over the shard directories.
 */

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

/**
 * Something under spool/ that is not a job in its own shard: a file or directory beside the
 * datasources' trees, beside a tree's buckets or a bucket's leaves (a name that is not a
 * shard's), or in a leaf (a name that is not one of that leaf's jobs). Adoption takes it in
 * (run/adoption.ts); a directory is looked into there.
 */
export interface Stray {
  readonly kind: 'stray';
  readonly path: string;
  readonly entry: fs.Dirent;
}

/** A leaf as a walk found it: its jobs' count and oldest name (from the leaf index when it trusts the leaf). */
export interface WalkedLeaf extends LeafFacts {
  readonly kind: 'leaf';
  readonly datasource: string;
  readonly leaf: Leaf;
}

export type TreeEntry = WalkedLeaf | Stray;

/** A datasource's tree: a directory of spool/ with a datasource's name (configured or not). */
function isTree(entry: fs.Dirent): boolean {
  return entry.isDirectory() && isDatasourceName(entry.name);
}

/** The names of the datasource trees under spool/, sorted. */
export async function treeNames(spoolDir: string): Promise<string[]> {
  return (await listSorted(spoolDir)).filter(isTree).map((e) => e.name);
}

/** A leaf directory, not yet looked into, or a stray beside the shard directories. */
type Shard = { readonly kind: 'leaf'; readonly leaf: Leaf } | Stray;

/**
 * The one loop over a datasource's shard directories: each leaf, and each stray beside the
 * buckets or the leaves, in name order (so leaves come oldest first). Holds one bucket's
 * listing at a time; looks into no leaf.
 */
async function* shardsOf(dsDir: string): AsyncGenerator<Shard> {
  for (const b of await listSorted(dsDir)) {
    const bucketPath = join(dsDir, b.name);
    if (!b.isDirectory() || !BUCKET_PATTERN.test(b.name)) {
      yield { kind: 'stray', path: bucketPath, entry: b };
      continue;
    }
    for (const l of await listSorted(bucketPath)) {
      const path = join(bucketPath, l.name);
      if (l.isDirectory() && LEAF_PATTERN.test(l.name)) yield { kind: 'leaf', leaf: { bucket: b.name, leaf: l.name, path } };
      else yield { kind: 'stray', path, entry: l };
    }
  }
}

/** The shard leaves of one datasource's tree, oldest first, unread (the drain lists each as it reaches it). */
export async function* leavesOf(dsDir: string): AsyncGenerator<Leaf> {
  for await (const shard of shardsOf(dsDir)) if (shard.kind === 'leaf') yield shard.leaf;
}

/**
 * Walks one datasource's tree in FIFO order: each leaf with its facts, each stray where it
 * sits (a leaf's own strays right after it, sorted). A leaf the datasource's leaf index
 * trusts costs a stat and has no strays (the index records only stray-free leaves); any
 * other leaf is listed. Memory stays bounded: one bucket's listing and one leaf's strays.
 * A walk that reaches the end saves the index; one stopped early does not (the index keeps
 * the leaves a walk saw, and a partial walk did not see them all).
 */
export async function* walkTree(dsDir: string): AsyncGenerator<TreeEntry> {
  const datasource = basename(dsDir);
  const index = await LeafIndex.load(dirname(dsDir), datasource);
  for await (const shard of shardsOf(dsDir)) {
    if (shard.kind === 'stray') {
      yield shard;
      continue;
    }
    const { count, oldest, strays } = await scanLeaf(shard.leaf, index);
    yield { kind: 'leaf', datasource, leaf: shard.leaf, count, oldest };
    for (const entry of strays) yield { kind: 'stray', path: join(shard.leaf.path, entry.name), entry };
  }
  await index.save();
}

/** Walks all of spool/ in name order: each entry beside the datasources' trees is a stray, and each tree is walked (walkTree). */
export async function* walkSpool(spoolDir: string): AsyncGenerator<TreeEntry> {
  for (const top of await listSorted(spoolDir)) {
    const path = join(spoolDir, top.name);
    if (isTree(top)) yield* walkTree(path);
    else yield { kind: 'stray', path, entry: top };
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
      // Synchronous: a walk stats every leaf (hundreds at 100,000 pending, leaves being cut by
      // count), and a stat of a directory is microseconds, against a trip through the thread
      // pool each (docs/benchmarks.md, "Leaves cut by count, and one producer's spool()").
      mtime = fs.statSync(leaf.path, { bigint: true }).mtimeNs;
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

/** Pending jobs of one datasource, and the oldest one's name (a walk of its tree: walkTree). */
export async function countJobs(dsDir: string): Promise<LeafFacts> {
  let count = 0;
  let oldest: string | null = null;
  for await (const entry of walkTree(dsDir)) {
    if (entry.kind !== 'leaf') continue;
    count += entry.count;
    oldest ??= entry.oldest;
  }
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
