import { join } from 'node:path';
import fs from 'node:fs';
import { failedClassOf } from '../spool/failed-dir.js';
import { idTime } from '../spool/id.js';
import type { ResolvedConfig, StatusReport } from '../interfaces.js';
import type { Layout } from '../spool/layout.js';
import { listSorted, walkSpool } from '../spool/listing.js';
import { parseSummaryLine } from './log-format.js';
import { idOfFileName } from '../spool/shards.js';
import { isRunnerAlive } from '../run/recovery.js';
import { pausedDatasources } from '../spool/paused.js';
import { delayedOf } from '../spool/delayed.js';
import { blockingFiles, strictDatasources } from '../run/strict-order.js';

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

/** Claims of live runners (or of other hosts', which this host can't judge), and claims left by runners of this host that died. */
async function claimCounts(layout: Layout): Promise<{ active: number; abandoned: number }> {
  let active = 0;
  let abandoned = 0;
  for (const owner of await listSorted(layout.activeDir)) {
    if (!owner.isDirectory()) {
      active++;
      continue;
    }
    const n = await countFiles(join(layout.activeDir, owner.name));
    if (isRunnerAlive(owner.name)) active += n;
    else abandoned += n;
  }
  return { active, abandoned };
}

/** Delayed jobs per datasource that has any (names listed, no file read). */
async function delayedCounts(layout: Layout, config: ResolvedConfig): Promise<Record<string, { count: number; nextRunAt: string }>> {
  const out: Record<string, { count: number; nextRunAt: string }> = {};
  const names = new Set([...Object.keys(config.datasources), ...(await listSorted(layout.delayedDir)).filter((e) => e.isDirectory()).map((e) => e.name)]);
  for (const name of names) {
    const delayed = await delayedOf(layout, name);
    if (delayed.length > 0) out[name] = { count: delayed.length, nextRunAt: new Date(delayed[0]!.dueMs).toISOString() };
  }
  return out;
}

/** Pending jobs and their oldest name per datasource. */
interface Tally {
  count: number;
  oldest: string | null;
}

/**
 * Counts of the spool, from one walk of it (spool/listing.ts walkSpool): pending jobs per
 * datasource (configured ones always, others when they hold jobs) and drop-ins, the strays
 * the walk reports (a directory counted by its files). A leaf the leaf index trusts holds
 * no stray, so it is not listed. For each strictOrder datasource, the failed/ file that
 * blocks it (run/strict-order.ts).
 */
export async function spoolStatus(layout: Layout, config: ResolvedConfig, now = Date.now()): Promise<StatusReport> {
  const tallies = new Map<string, Tally>(Object.keys(config.datasources).map((name) => [name, { count: 0, oldest: null }]));
  let dropIns = 0;
  for await (const entry of walkSpool(layout.spoolDir)) {
    if (entry.kind === 'stray') {
      dropIns += entry.entry.isDirectory() ? await countFiles(entry.path) : 1;
      continue;
    }
    if (entry.count === 0) continue;
    let tally = tallies.get(entry.datasource);
    if (tally === undefined) tallies.set(entry.datasource, (tally = { count: 0, oldest: null }));
    tally.count += entry.count;
    tally.oldest ??= entry.oldest;
  }
  const pending: Record<string, { count: number; oldestId: string | null; oldestAgeMs: number | null }> = {};
  for (const [name, { count, oldest }] of tallies) {
    const id = oldest ? idOfFileName(oldest)! : null;
    pending[name] = { count, oldestId: id, oldestAgeMs: id ? Math.max(0, now - idTime(id)) : null };
  }
  const failed = { connection: 0, failed: 0, uncertain: 0, other: 0 };
  for (const e of await listSorted(layout.failedDir)) failed[failedClassOf(e.name)]++;
  const strict = strictDatasources(config);
  const blocking = await blockingFiles(layout, config, strict);
  return {
    home: layout.home,
    pending,
    pendingTotal: Object.values(pending).reduce((n, p) => n + p.count, 0),
    dropIns,
    ...await claimCounts(layout),
    failed,
    blocked: Object.fromEntries(strict.map((name) => [name, blocking.get(name) ?? null])),
    paused: [...await pausedDatasources(layout)].sort(),
    delayed: await delayedCounts(layout, config),
    lastRun: await lastRunLine(layout.runLog),
  };
}
