import { join } from 'node:path';
import fs from 'fs-extra';
import { BUCKET_PATTERN, LEAF_PATTERN, belongsInLeaf, compareNames, isHidden } from './shards.js';

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

/** Job file names in a leaf, in FIFO order (entries that don't belong there are left to adoption). */
export async function jobsInLeaf(leaf: Leaf): Promise<string[]> {
  const out: string[] = [];
  for (const e of await listSorted(leaf.path)) {
    if (e.isFile() && belongsInLeaf(e.name, leaf.bucket, leaf.leaf)) out.push(e.name);
  }
  return out;
}

/** Pending jobs of one datasource, and the oldest one's name. Streams: memory stays bounded. */
export async function countJobs(dsDir: string): Promise<{ count: number; oldest: string | null }> {
  let count = 0;
  let oldest: string | null = null;
  for await (const leaf of leavesOf(dsDir)) {
    const names = await jobsInLeaf(leaf);
    oldest ??= names[0] ?? null;
    count += names.length;
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
