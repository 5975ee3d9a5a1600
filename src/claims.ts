import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import fs from 'fs-extra';
import type { Layout } from './layout.js';
import { listSorted, removeIfEmpty } from './listing.js';
import { idOfFileName, spoolPathFor } from './shards.js';
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

/**
 * Gives the claims of dead runners on this host (and this runner's own leftovers: a run
 * that threw) back to the spool, each into its own shard so it keeps its FIFO place.
 * Returns how many it gave back.
 */
export async function recoverClaims(layout: Layout, self: string, syncer: DirSyncer | null): Promise<number> {
  let recovered = 0;
  for (const owner of await listSorted(layout.activeDir)) {
    if (!owner.isDirectory()) continue;
    if (owner.name !== self && isRunnerAlive(owner.name)) continue;
    const ownerDir = join(layout.activeDir, owner.name);
    for (const ds of await listSorted(ownerDir)) {
      const dsDir = join(ownerDir, ds.name);
      for (const file of await listSorted(dsDir)) {
        const src = join(dsDir, file.name);
        const id = idOfFileName(file.name);
        // A name that is not <id>.batchsql goes back as a drop-in, to be checked by adoption.
        const target = id ? spoolPathFor(layout.spoolDir, ds.name, id) : join(layout.spoolDir, `recovered-${owner.name}-${file.name}`);
        if (await fs.pathExists(target)) {
          // The runner had already written the job back (a connection failure): that copy is newer.
          await fs.promises.unlink(src);
          continue;
        }
        await makeDirDurable(dirname(target), syncer);
        await fs.promises.rename(src, target);
        if (syncer) await syncer.sync(dirname(target));
        recovered++;
      }
      await removeIfEmpty(dsDir);
    }
    await removeIfEmpty(ownerDir);
  }
  return recovered;
}
