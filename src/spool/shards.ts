import { join } from 'node:path';
import { ID_PATTERN } from './id.js';
import { SPOOL_EXTENSION } from './record.js';

/**
 * Where a job lives in the spool. Pure.
 *
 *   spool/<datasource>/<id[0..6]>/<id[6..8]><id[10]>/<id>.batchsql        (one job)
 *   spool/<datasource>/<id[0..6]>/<id[6..8]><id[10]>/<id>.<n>.batchsql    (a segment: n jobs of that leaf, <id> the first)
 *
 * The first six characters of a ULID change every 2^20 ms (about 17.5 minutes), the next
 * two every 2^10 ms (about one second). The 11th, the first random one, is the leaf's
 * generation within that second (spool/id.ts): a producer moves to the next generation
 * after LEAF_JOBS ids, so leaves are cut by count as well as by time and a leaf holds at
 * most LEAF_JOBS jobs of each producer, however fast the spool is filled. Sorting the
 * shard names and then the file names at each level gives creation order (one producer's
 * generations only go up within a second, and a writer never goes below the generation it
 * finds on disk), so draining leaf by leaf is FIFO per datasource and only one leaf's
 * listing is held in memory at a time.
 */
export const BUCKET_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{5}$/;
export const LEAF_PATTERN = /^[0-9A-HJKMNP-TV-Z]{3}$/;
/** `<id>.batchsql` (one job) or `<id>.<n>.batchsql` (a segment of n >= 2 jobs, the first with id <id>). */
const FILE_PATTERN = new RegExp(`^(${ID_PATTERN.source.slice(1, -1)})(?:\\.([2-9]|[1-9][0-9]{1,3}))?\\${SPOOL_EXTENSION}$`);

/**
 * The most jobs a segment file holds. spool() calls of a datasource that wait while the
 * writer is busy share one file (spool/writer.ts); the cap bounds what a bad line loses
 * to failed/ and what a claim holds.
 */
export const MAX_SEGMENT_JOBS = 256;

export function shardOf(id: string): [bucket: string, leaf: string] {
  return [id.slice(0, 6), leafOf(id)];
}

/** The leaf (within its bucket) of an id: its 7th and 8th characters (its second) and its 11th (the generation). */
export function leafOf(id: string): string {
  return id.slice(6, 8) + id.charAt(10);
}

/** Whether two ids' jobs belong in the same leaf (a segment's jobs must). */
export function sameLeaf(a: string, b: string): boolean {
  return a.startsWith(b.slice(0, 8)) && a.charAt(10) === b.charAt(10);
}

/** A leaf's name from the id's first 8 characters (bucket and second) and a generation's character. */
export function leafName(prefix: string, generation: string): string {
  return prefix.slice(6, 8) + generation;
}

/** The name of a job file: `<id>.batchsql` for one job, `<id>.<count>.batchsql` for a segment. */
export function jobFileName(id: string, count = 1): string {
  return count === 1 ? id + SPOOL_EXTENSION : `${id}.${count}${SPOOL_EXTENSION}`;
}

export function spoolPathFor(spoolDir: string, datasource: string, id: string, count = 1): string {
  const [bucket, leaf] = shardOf(id);
  return join(spoolDir, datasource, bucket, leaf, jobFileName(id, count));
}

/** What a job file's name says: its (first) job's id and how many jobs it holds; undefined for other names. */
export function parseJobFileName(name: string): { id: string; count: number } | undefined {
  const m = FILE_PATTERN.exec(name);
  return m ? { id: m[1]!, count: m[2] === undefined ? 1 : Number(m[2]) } : undefined;
}

/** The id a job file's name carries (a segment's first), or undefined when it is not a job file name. */
export function idOfFileName(name: string): string | undefined {
  return FILE_PATTERN.exec(name)?.[1];
}

/** How many jobs a job file holds, from its name (0 for other names). */
export function jobCountOf(name: string): number {
  if (name.length === FILE_NAME_LENGTH) return 1;
  return parseJobFileName(name)?.count ?? 0;
}

const FILE_NAME_LENGTH = 26 + SPOOL_EXTENSION.length;

/** True when `name` is a job file that belongs in the leaf `bucket/leaf` (cheap checks first: it runs once per pending file). */
export function belongsInLeaf(name: string, bucket: string, leaf: string): boolean {
  return name.length >= FILE_NAME_LENGTH && name.startsWith(bucket) && name.charCodeAt(6) === leaf.charCodeAt(0) &&
    name.charCodeAt(7) === leaf.charCodeAt(1) && name.charCodeAt(10) === leaf.charCodeAt(2) && leaf.length === 3 &&
    name.endsWith(SPOOL_EXTENSION) && FILE_PATTERN.test(name);
}

/** Names starting with "." under spool/ (.tmp, .active, editors' swap files) are never work. */
export function isHidden(name: string): boolean {
  return name.startsWith('.');
}

/** Byte-wise comparison: the order ids sort in (localeCompare would not be). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
