import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { newId } from '../spool/id.js';
import type { ResolvedConfig } from '../interfaces.js';
import type { Layout } from '../spool/layout.js';
import { countJobs, listSorted, walkTree } from '../spool/listing.js';

/**
 * The ledger (exactly-once): a table per database, `querybatch_ledger(id, spool, done_at)`,
 * that holds the id of every job whose statement committed, written in the same transaction
 * as the statement (the driver's session: db/mysql/session.ts). A row is needed only while a file of its job exists
 * somewhere: a claim not yet removed, a claim given back to the spool by recovery, a
 * failed/connection-… file written after a connection lost during COMMIT, or such a file
 * copied back into spool/. Older rows are pruned.
 */

const ID_IN_NAME = /[0-7][0-9A-HJKMNP-TV-Z]{25}/;

function idIn(name: string): string | null {
  return ID_IN_NAME.exec(name)?.[0] ?? null;
}

async function names(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/**
 * The oldest job id that may still have a file (and so may need its ledger row), or the id
 * of "now" when there is none. Looked at in the order files move (failed/ → spool/ →
 * claims → shards), so a file moving while this runs is seen at least once.
 *
 * With `counting`, that datasource's tree is walked whole (countJobs, leaf-index aware)
 * instead of up to its first job, and its pending count comes back too: a run that stopped
 * early needs that count, and one walk then serves both.
 */
export async function oldestLiveId(layout: Layout, config: ResolvedConfig, counting?: string): Promise<{ oldest: string; count: number | null }> {
  let oldest = newId();
  let count: number | null = null;
  const see = (id: string | null) => {
    if (id !== null && id < oldest) oldest = id;
  };
  for (const name of await names(layout.failedDir)) if (name.startsWith('connection-')) see(idIn(name));
  for (const e of await listSorted(layout.spoolDir)) if (!e.isDirectory()) see(idIn(e.name));
  for (const runner of await names(layout.activeDir)) {
    for (const sub of await names(join(layout.activeDir, runner))) {
      for (const name of await names(join(layout.activeDir, runner, sub))) see(idIn(name));
    }
  }
  for (const ds of Object.keys(config.datasources)) {
    if (ds === counting) {
      const jobs = await countJobs(join(layout.spoolDir, ds));
      count = jobs.count;
      if (jobs.oldest !== null) see(idIn(jobs.oldest));
      continue;
    }
    for await (const entry of walkTree(join(layout.spoolDir, ds))) {
      if (entry.kind === 'leaf' && entry.oldest !== null) {
        see(idIn(entry.oldest));
        break;
      }
    }
  }
  return { oldest, count };
}
