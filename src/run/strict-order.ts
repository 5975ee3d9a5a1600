import { join } from 'node:path';
import fs from 'node:fs';
import type { ResolvedConfig } from '../interfaces.js';
import { FAILED_PREFIX_OF, type Failure } from '../spool/failure.js';
import { readFailedReason } from '../spool/failed-dir.js';
import type { Layout } from '../spool/layout.js';
import { listSorted } from '../spool/listing.js';
import { readJobRecords, type ReadLimits } from '../spool/read-job.js';

/**
 * `datasources.<name>.strictOrder`: a datasource drains nothing while failed/ holds a file
 * that blocks it: a `failed-…` or `uncertain-…` file that reads as a job of that datasource.
 * A file set aside as not a valid job (its reason kept beside it: spool/failed-dir.ts), or
 * one that can't be read as a job, blocks nothing: the database never refused it and its
 * datasource can't be told. `connection-…` files block nothing either.
 */

const BLOCKING_PREFIXES: readonly string[] = ['failed-', 'uncertain-'];

/** A failure whose job goes to a failed/ file that blocks its strictOrder datasource (sql, timeout, uncertain): its prefix blocks, and it is not a file set aside as invalid. */
export function blocks(failure: Failure): boolean {
  return failure.class !== 'invalid' && BLOCKING_PREFIXES.includes(FAILED_PREFIX_OF[failure.class]);
}

/** The datasource and id of the job a failed/ file holds, when the file blocks it; else null. */
async function blockingJob(path: string, limits: ReadLimits): Promise<{ datasource: string; id: string } | null> {
  try {
    const stat = await fs.promises.lstat(path);
    if (!stat.isFile() || (await readFailedReason(path, stat.ino)) !== null) return null;
    const [record] = (await readJobRecords(path, limits)).records;
    return record ? { datasource: record.datasource, id: record.id } : null;
  } catch {
    return null;
  }
}

/**
 * The files that block each of `datasources` (one listing of failed/): per datasource, the
 * name of its blocking file with the oldest job (the head of its order). A datasource that
 * is not blocked is absent.
 */
export async function blockingFiles(layout: Layout, config: ResolvedConfig, datasources: readonly string[]): Promise<Map<string, string>> {
  const wanted = new Set(datasources);
  const found = new Map<string, { name: string; id: string }>();
  if (wanted.size === 0) return new Map();
  for (const entry of await listSorted(layout.failedDir)) {
    if (!BLOCKING_PREFIXES.some((p) => entry.name.startsWith(p))) continue;
    const job = await blockingJob(join(layout.failedDir, entry.name), config.limits);
    if (job === null || !wanted.has(job.datasource)) continue;
    const seen = found.get(job.datasource);
    if (seen === undefined || job.id < seen.id) found.set(job.datasource, { name: entry.name, id: job.id });
  }
  return new Map([...found].map(([ds, { name }]) => [ds, name]));
}

/** The file that blocks `datasource`, if any. */
export async function blockingFile(layout: Layout, config: ResolvedConfig, datasource: string): Promise<string | undefined> {
  return (await blockingFiles(layout, config, [datasource])).get(datasource);
}

/** The strictOrder datasources of the config. */
export function strictDatasources(config: ResolvedConfig): string[] {
  return Object.entries(config.datasources).filter(([, d]) => d.strictOrder).map(([name]) => name);
}
