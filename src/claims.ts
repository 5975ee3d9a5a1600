import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import fs from 'fs-extra';
import type { Layout } from './layout.js';
import { listSorted, removeIfEmpty } from './listing.js';
import { idOfFileName, spoolPathFor } from './shards.js';
import { isId } from './id.js';
import { SPOOL_EXTENSION, decodeRecord } from './spool-file.js';
import { makeDirDurable, type DirSyncer } from './durable.js';

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
async function giveBack(src: string, target: string, syncer: DirSyncer | null): Promise<boolean> {
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
  if (pending !== null && (await fs.pathExists(pending))) {
    await drop(src);
    return false;
  }
  return giveBack(src, join(layout.spoolDir, name), syncer);
}

/**
 * Gives the claims of dead runners on this host (and this runner's own leftovers: a run
 * that threw) back to the spool, each into its own shard so it keeps its FIFO place.
 * Several runners may recover the same dead runner at once: whichever moves a file first
 * wins, the others skip it. Returns how many it gave back.
 */
export async function recoverClaims(layout: Layout, self: string, defaultDatasource: string, syncer: DirSyncer | null): Promise<number> {
  let recovered = 0;
  for (const owner of await listSorted(layout.activeDir)) {
    if (!owner.isDirectory()) continue;
    if (owner.name !== self && isRunnerAlive(owner.name)) continue;
    const ownerDir = join(layout.activeDir, owner.name);
    const adoptDir = adoptionClaimDir(layout, owner.name);
    for (const file of await listSorted(adoptDir)) {
      if (await recoverAdoption(layout, join(adoptDir, file.name), file.name, defaultDatasource, syncer)) recovered++;
    }
    await removeIfEmpty(adoptDir);
    for (const ds of await listSorted(ownerDir)) {
      const dsDir = join(ownerDir, ds.name);
      for (const file of await listSorted(dsDir)) {
        const src = join(dsDir, file.name);
        const id = idOfFileName(file.name);
        // A name that is not <id>.batchsql goes back as a drop-in, to be checked by adoption.
        const target = id ? spoolPathFor(layout.spoolDir, ds.name, id) : join(layout.spoolDir, `recovered-${owner.name}-${file.name}`);
        if (await fs.pathExists(target)) {
          // The job is pending already (a copy written back before the crash): that one stays.
          await drop(src);
          continue;
        }
        if (await giveBack(src, target, syncer)) recovered++;
      }
      await removeIfEmpty(dsDir);
    }
    await removeIfEmpty(ownerDir);
  }
  return recovered;
}
