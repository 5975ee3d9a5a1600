import { join } from 'node:path';
import fs from 'fs-extra';
import { failedClassOf } from '../spool/failed-dir.js';
import { idTime } from '../spool/id.js';
import type { ResolvedConfig, StatusReport } from '../interfaces.js';
import type { Layout } from '../spool/layout.js';
import { countJobs, listSorted } from '../spool/listing.js';
import { parseSummaryLine } from './log-format.js';
import { idOfFileName } from '../spool/shards.js';
import { isDatasourceName } from '../spool/record.js';

/** Counts files below a directory (any depth, hidden names skipped). */
async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const e of await listSorted(dir)) {
    n += e.isDirectory() ? await countFiles(join(dir, e.name)) : 1;
  }
  return n;
}

/** The last summary line of the run log, or null. Reads only the file's tail. */
async function lastRunLine(path: string): Promise<StatusReport['lastRun']> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path, 'r');
  } catch {
    return null;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n').reverse();
    for (const line of lines) {
      const parsed = parseSummaryLine(line);
      if (parsed) return parsed;
    }
    return null;
  } finally {
    await handle.close();
  }
}

export async function spoolStatus(layout: Layout, config: ResolvedConfig, now = Date.now()): Promise<StatusReport> {
  const pending: Record<string, { count: number; oldestId: string | null; oldestAgeMs: number | null }> = {};
  let dropIns = 0;
  for (const name of Object.keys(config.datasources)) pending[name] = { count: 0, oldestId: null, oldestAgeMs: null };
  for (const top of await listSorted(layout.spoolDir)) {
    const path = join(layout.spoolDir, top.name);
    if (!top.isDirectory()) {
      dropIns++;
      continue;
    }
    if (!isDatasourceName(top.name)) {
      dropIns += await countFiles(path);
      continue;
    }
    const { count, oldest } = await countJobs(path);
    // Anything in the tree that is not a job in its shard is a drop-in.
    const all = await countFiles(path);
    dropIns += all - count;
    if (count === 0 && !Object.hasOwn(config.datasources, top.name)) continue;
    const id = oldest ? idOfFileName(oldest)! : null;
    pending[top.name] = { count, oldestId: id, oldestAgeMs: id ? Math.max(0, now - idTime(id)) : null };
  }
  const failed = { connection: 0, failed: 0, uncertain: 0, other: 0 };
  for (const e of await listSorted(layout.failedDir)) failed[failedClassOf(e.name)]++;
  return {
    home: layout.home,
    pending,
    pendingTotal: Object.values(pending).reduce((n, p) => n + p.count, 0),
    dropIns,
    active: await countFiles(layout.activeDir),
    failed,
    lastRun: await lastRunLine(layout.runLog),
  };
}
