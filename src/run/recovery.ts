import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import fs from 'node:fs';
import type { Layout } from '../spool/layout.js';
import { listSorted, removeIfEmpty } from '../spool/listing.js';
import { jobFileName, parseJobFileName, spoolPathFor } from '../spool/shards.js';
import { isId } from '../spool/id.js';
import { SPOOL_EXTENSION, decodeRecord, decodeSegment, encodeRecord, type SpoolRecord } from '../spool/record.js';
import { makeDirDurable, parseTempName, pathExists, tempPathFor, writeTemp, type DirSyncer } from '../spool/durable.js';
import { FAILED_PREFIXES, moveToFailed } from '../spool/failed-dir.js';
import { INDEX_TEMP_NAME } from '../spool/leaf-index.js';

/**
 * Claims: a runner takes a job by renaming it into spool/.active/<runner>/<datasource>/,
 * so exactly one runner wins it. <runner> is host.pid.starttime.
 */
const START = Math.round(performance.timeOrigin);

export function runnerName(): string {
  return `${hostname()}.${process.pid}.${START}`;
}

export function parseRunnerName(name: string): { host: string; pid: number; start: number } | null {
  const m = /^(.+)\.(\d+)\.(\d+)$/.exec(name);
  return m ? { host: m[1]!, pid: Number(m[2]), start: Number(m[3]) } : null;
}

/** When a process started, from /proc (ms since the epoch), or null where /proc can't tell. */
function processStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22 of the whole line
    const boot = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (!boot || !Number.isFinite(ticks)) return null;
    return Number(boot[1]) * 1000 + (ticks / 100) * 1000;
  } catch {
    return null;
  }
}

/**
 * Is the runner that owns a claim directory still running? Only answerable on its own
 * host: a pid that is gone, or reused by a process that started at another time, is dead.
 */
export function isRunnerAlive(name: string): boolean {
  const runner = parseRunnerName(name);
  if (!runner || runner.host !== hostname()) return true; // another host's: not ours to judge
  try {
    process.kill(runner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const started = processStart(runner.pid);
  return started === null || Math.abs(started - runner.start) < 5_000;
}

/** Where a runner holds the drop-ins it is adopting (hidden: never a datasource name). */
export function adoptionClaimDir(layout: Layout, runner: string): string {
  return join(layout.activeDir, runner, '.adopt');
}

/** Moves a recovered file to `target`; false when another runner took it first. */
async function restore(src: string, target: string, syncer: DirSyncer | null): Promise<boolean> {
  try {
    await makeDirDurable(dirname(target), syncer);
    await fs.promises.rename(src, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (syncer) await syncer.sync(dirname(target));
  return true;
}

/** Removes a recovered file whose job is pending already; ENOENT means another runner did. */
async function drop(src: string): Promise<void> {
  await fs.promises.unlink(src).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/**
 * An adoption cut short: if its job is pending already it is dropped, else the file goes
 * back to spool/ as a drop-in (a .sql one named `<id>.sql`, so it keeps the id it was given).
 */
async function recoverAdoption(layout: Layout, src: string, name: string, defaultDatasource: string, syncer: DirSyncer | null): Promise<boolean> {
  let pending: string | null = null;
  const sqlId = name.endsWith('.sql') ? name.slice(0, -'.sql'.length) : '';
  if (isId(sqlId)) {
    pending = spoolPathFor(layout.spoolDir, defaultDatasource, sqlId);
  } else if (name.endsWith(SPOOL_EXTENSION)) {
    try {
      const record = decodeRecord(readFileSync(src, 'utf8'));
      pending = spoolPathFor(layout.spoolDir, record.datasource, record.id);
    } catch {
      // not readable as a job: back it goes, and adoption says why
    }
  }
  if (pending !== null && (await pathExists(pending))) {
    await drop(src);
    return false;
  }
  return restore(src, join(layout.spoolDir, name), syncer);
}

/**
 * A claim renamed `<id>.uncertain` before its statement ran: a statement that commits
 * implicitly (outside the ledger's transaction), so a crash leaves its outcome unknown.
 */
export const UNCERTAIN_SUFFIX = '.uncertain';

export function uncertainMarkerName(id: string): string {
  return id + UNCERTAIN_SUFFIX;
}

/** A claim found with its uncertain marker, moved to failed/uncertain-<id>.batchsql. */
export interface UncertainClaim {
  readonly id: string;
  readonly datasource: string;
  readonly claim: string;
  readonly moved: string;
}

export interface Recovery {
  recovered: number;
  readonly uncertain: UncertainClaim[];
}

/** Whether failed/ holds job `id` (under any of the runner's prefixes, by its own name). */
async function inFailed(layout: Layout, id: string): Promise<boolean> {
  for (const prefix of FAILED_PREFIXES) if (await pathExists(join(layout.failedDir, prefix + jobFileName(id)))) return true;
  return false;
}

/**
 * A dead runner's segment claim may still hold jobs it had written to failed/ already: a
 * crash after that write and before the claim was rewritten without them (run/claims.ts
 * placeFailed, placeRefused). Those jobs are dropped from it, so that none is both in
 * failed/ and back in the spool (and none runs again). Returns what goes back: the claim as
 * it is (`as-is`: its caller moves it), its other jobs written as a new file in the spool
 * (`rewritten`: written durably, then the claim removed; a crash between leaves both, and
 * the file in the spool wins), or `none` left. A claim that can't be read as a segment goes
 * back as it is.
 */
async function withoutFailedJobs(layout: Layout, src: string, ds: string, count: number, syncer: DirSyncer | null): Promise<'as-is' | 'rewritten' | 'none'> {
  let records: SpoolRecord[];
  try {
    records = decodeSegment(await fs.promises.readFile(src, 'utf8'), count);
  } catch {
    return 'as-is';
  }
  const open: SpoolRecord[] = [];
  for (const record of records) if (!(await inFailed(layout, record.id))) open.push(record);
  if (open.length === records.length) return 'as-is';
  if (open.length > 0) {
    const target = spoolPathFor(layout.spoolDir, ds, open[0]!.id, open.length);
    if (!(await pathExists(target))) {
      const tmp = tempPathFor(layout.tmpDir, jobFileName(open[0]!.id, open.length));
      await writeTemp(tmp, open.map((r) => encodeRecord(r)).join(''), syncer !== null);
      if (!(await restore(tmp, target, syncer))) await fs.promises.unlink(tmp).catch(() => {});
    }
  }
  await drop(src);
  return open.length > 0 ? 'rewritten' : 'none';
}

/** Gives back the claims of one datasource of a dead runner (`dsDir` = .active/<runner>/<ds>). */
async function recoverDatasourceDir(layout: Layout, owner: string, ds: string, syncer: DirSyncer | null, out: Recovery): Promise<void> {
  const dsDir = join(layout.activeDir, owner, ds);
  for (const file of await listSorted(dsDir)) {
    const src = join(dsDir, file.name);
    if (file.name.endsWith(UNCERTAIN_SUFFIX) && isId(file.name.slice(0, -UNCERTAIN_SUFFIX.length))) {
      const id = file.name.slice(0, -UNCERTAIN_SUFFIX.length);
      try {
        const moved = await moveToFailed(layout, src, 'uncertain-', `${id}${SPOOL_EXTENSION}`, syncer);
        out.uncertain.push({ id, datasource: ds, claim: src, moved });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // another runner took it
      }
      continue;
    }
    const job = parseJobFileName(file.name);
    // A name that is not <id>.batchsql (or a segment's <id>.<n>.batchsql) goes back as a drop-in, to be checked by adoption.
    const target = job ? spoolPathFor(layout.spoolDir, ds, job.id, job.count) : join(layout.spoolDir, `recovered-${owner}-${file.name}`);
    if (await pathExists(target)) {
      // The job is pending already (a copy written back before the crash): that one stays.
      await drop(src);
      continue;
    }
    if (job !== undefined && job.count > 1) {
      const left = await withoutFailedJobs(layout, src, ds, job.count, syncer);
      if (left !== 'as-is') {
        if (left === 'rewritten') out.recovered++;
        continue;
      }
    }
    if (await restore(src, target, syncer)) out.recovered++;
  }
  await removeIfEmpty(dsDir);
}

/**
 * Claims of runners on other hosts for datasource `ds`, given back once this runner holds
 * the datasource's database lock: a live runner holds that lock for as long as it has
 * claims of the datasource, so with the lock ours every such claim is a dead runner's.
 */
export async function recoverForeignClaims(layout: Layout, ds: string, syncer: DirSyncer | null): Promise<Recovery> {
  const out: Recovery = { recovered: 0, uncertain: [] };
  for (const owner of await listSorted(layout.activeDir)) {
    if (!owner.isDirectory()) continue;
    const runner = parseRunnerName(owner.name);
    if (runner === null || runner.host === hostname()) continue;
    await recoverDatasourceDir(layout, owner.name, ds, syncer, out);
    await removeIfEmpty(join(layout.activeDir, owner.name));
  }
  return out;
}

/** Other hosts' claim directories holding claims of datasource `ds` (cheap: one listing per runner). */
export async function hasForeignClaims(layout: Layout, ds: string): Promise<boolean> {
  for (const owner of await listSorted(layout.activeDir)) {
    const runner = parseRunnerName(owner.name);
    if (!owner.isDirectory() || runner === null || runner.host === hostname()) continue;
    if ((await listSorted(join(layout.activeDir, owner.name, ds))).length > 0) return true;
  }
  return false;
}

/**
 * Gives the claims of dead runners on this host (and this runner's own leftovers: a run
 * that threw) back to the spool, each into its own shard so it keeps its FIFO place.
 * Several runners may recover the same dead runner at once: whichever moves a file first
 * wins, the others skip it. Returns how many it gave back.
 */
export async function recoverClaims(layout: Layout, self: string, defaultDatasource: string, syncer: DirSyncer | null): Promise<Recovery> {
  const out: Recovery = { recovered: 0, uncertain: [] };
  for (const owner of await listSorted(layout.activeDir)) {
    if (!owner.isDirectory()) continue;
    if (owner.name !== self && isRunnerAlive(owner.name)) continue;
    const ownerDir = join(layout.activeDir, owner.name);
    const adoptDir = adoptionClaimDir(layout, owner.name);
    for (const file of await listSorted(adoptDir)) {
      if (await recoverAdoption(layout, join(adoptDir, file.name), file.name, defaultDatasource, syncer)) out.recovered++;
    }
    await removeIfEmpty(adoptDir);
    for (const ds of await listSorted(ownerDir)) {
      if (ds.isDirectory()) await recoverDatasourceDir(layout, owner.name, ds.name, syncer, out);
    }
    await removeIfEmpty(ownerDir);
  }
  return out;
}

/**
 * A leaf-index temp (`index.<pid>.….tmp`) whose writer is no longer alive here. The index
 * is a cache: removing a temp another host is still writing only skips that host's update.
 */
function abandonedIndexTemp(fileName: string): boolean {
  const temp = parseTempName(fileName);
  if (temp?.name !== INDEX_TEMP_NAME) return false;
  try {
    process.kill(temp.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes temp files in spool/.tmp older than `maxAgeMs` (left by a producer or runner killed
 * mid-write; never a job: only a rename out of .tmp makes one), and leaf-index temps of dead
 * writers at once. Returns how many.
 */
export async function removeStaleTemps(layout: Layout, maxAgeMs: number, now = Date.now()): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = await fs.promises.readdir(layout.tmpDir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const path = join(layout.tmpDir, name);
    try {
      const stat = await fs.promises.lstat(path);
      if (!stat.isFile() || (now - stat.mtimeMs < maxAgeMs && !abandonedIndexTemp(name))) continue;
      await fs.promises.unlink(path);
      removed++;
    } catch {
      // gone already (its writer finished or another runner removed it)
    }
  }
  return removed;
}
