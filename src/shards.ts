import { join } from 'node:path';
import { ID_PATTERN } from './id.js';
import { SPOOL_EXTENSION } from './spool-file.js';

/**
 * Where a job lives in the spool. Pure.
 *
 *   spool/<datasource>/<id[0..6]>/<id[6..8]>/<id>.batchsql
 *
 * The first six characters of a ULID change every 2^20 ms (about 17.5 minutes), the next
 * two every 2^10 ms (about one second). Sorting the shard names and then the file names
 * at each level gives creation order, so draining leaf by leaf is FIFO per datasource,
 * only one leaf's listing is held in memory at a time, a bucket directory holds at most
 * 1,024 leaves, and a leaf holds what was spooled in one second.
 */
export const BUCKET_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{5}$/;
export const LEAF_PATTERN = /^[0-9A-HJKMNP-TV-Z]{2}$/;
const FILE_PATTERN = new RegExp(`^(${ID_PATTERN.source.slice(1, -1)})\\${SPOOL_EXTENSION}$`);

export function shardOf(id: string): [bucket: string, leaf: string] {
  return [id.slice(0, 6), id.slice(6, 8)];
}

export function spoolPathFor(spoolDir: string, datasource: string, id: string): string {
  const [bucket, leaf] = shardOf(id);
  return join(spoolDir, datasource, bucket, leaf, id + SPOOL_EXTENSION);
}

/** The id a file name in a leaf carries, or undefined when it is not `<id>.batchsql`. */
export function idOfFileName(name: string): string | undefined {
  return FILE_PATTERN.exec(name)?.[1];
}

const FILE_NAME_LENGTH = 26 + SPOOL_EXTENSION.length;

/** True when `name` is a job file that belongs in the leaf `bucket/leaf` (cheap checks first: it runs once per pending file). */
export function belongsInLeaf(name: string, bucket: string, leaf: string): boolean {
  return name.length === FILE_NAME_LENGTH && name.startsWith(bucket) && name.startsWith(leaf, bucket.length) &&
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
