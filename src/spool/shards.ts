import { join } from 'node:path';
import { ID_PATTERN } from './id.js';
import { SPOOL_EXTENSION } from './record.js';

/**
 * Where a job lives in the spool. Pure.
 *
 *   spool/<datasource>/<id[0..6]>/<id[6..8]>/<id>.batchsql        (one job)
 *   spool/<datasource>/<id[0..6]>/<id[6..8]>/<id>.<n>.batchsql    (a segment: n jobs of that leaf, <id> the first)
 *
 * The first six characters of a ULID change every 2^20 ms (about 17.5 minutes), the next
 * two every 2^10 ms (about one second). Sorting the shard names and then the file names
 * at each level gives creation order, so draining leaf by leaf is FIFO per datasource,
 * only one leaf's listing is held in memory at a time, a bucket directory holds at most
 * 1,024 leaves, and a leaf holds what was spooled in one second.
 */
export const BUCKET_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{5}$/;
export const LEAF_PATTERN = /^[0-9A-HJKMNP-TV-Z]{2}$/;
/** `<id>.batchsql` (one job) or `<id>.<n>.batchsql` (a segment of n >= 2 jobs, the first with id <id>). */
const FILE_PATTERN = new RegExp(`^(${ID_PATTERN.source.slice(1, -1)})(?:\\.([2-9]|[1-9][0-9]{1,3}))?\\${SPOOL_EXTENSION}$`);

/**
 * The most jobs a segment file holds. spool() calls of a datasource that wait while the
 * writer is busy share one file (spool/writer.ts); the cap bounds what a bad line loses
 * to failed/ and what a claim holds.
 */
export const MAX_SEGMENT_JOBS = 256;

export function shardOf(id: string): [bucket: string, leaf: string] {
  return [id.slice(0, 6), id.slice(6, 8)];
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
  return name.length >= FILE_NAME_LENGTH && name.startsWith(bucket) && name.startsWith(leaf, bucket.length) &&
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
