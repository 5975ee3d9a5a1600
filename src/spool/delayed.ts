import { dirname, join } from 'node:path';
import fs from 'node:fs';
import { makeDirDurable, pathExists, type DirSyncer } from './durable.js';
import type { Layout } from './layout.js';
import { listSorted } from './listing.js';
import { SPOOL_EXTENSION } from './record.js';
import { spoolPathFor } from './shards.js';

/**
 * Delayed jobs (spool(…, { runAt | delayMs })). A job that is not due yet is written, whole,
 * to spool/.delayed/<datasource>/<due>-<id>.batchsql instead of its shard: `<due>` is its
 * runAt in milliseconds, 15 digits, so the directory's names sort by due time. A run lists
 * those names (it never opens the files), and renames each due one into its shard under its
 * own id, where it takes its place in the queue by id (its spool time), like any job. A
 * rename is atomic: after a crash the job is in exactly one of the two places, never lost,
 * never both. Hidden (a name starting with '.'), the directory is never read as work or as
 * drop-ins.
 *
 * spool/.delayed/.wake is rewritten after each delayed job is written: the daemon's watcher
 * sees it change and arms its timer for the earliest due time (daemon/due-timer.ts).
 */
const NAME_PATTERN = /^(\d{15})-([0-7][0-9A-HJKMNP-TV-Z]{25})\.batchsql$/;
const DUE_DIGITS = 15;

/** The file a delayed job waits in. */
export function delayedPathFor(layout: Layout, datasource: string, id: string, dueMs: number): string {
  return join(layout.delayedDir, datasource, `${String(dueMs).padStart(DUE_DIGITS, '0')}-${id}${SPOOL_EXTENSION}`);
}

/** The due time and id a delayed job's file name holds, or undefined for another name. Pure. */
export function parseDelayedName(name: string): { dueMs: number; id: string } | undefined {
  const match = NAME_PATTERN.exec(name);
  return match ? { dueMs: Number(match[1]), id: match[2]! } : undefined;
}

/** The file the daemon watches to learn that a delayed job was written (by any process). */
export function wakePath(layout: Layout): string {
  return join(layout.delayedDir, '.wake');
}

/** Tells a watching daemon that a job is due at `dueMs` (advisory: not fsynced; a lost touch costs only latency). */
export async function touchWake(layout: Layout, dueMs: number): Promise<void> {
  await fs.promises.writeFile(wakePath(layout), `${new Date(dueMs).toISOString()}\n`, { mode: 0o600 }).catch(() => {});
}

/** A datasource's delayed jobs' names and due times, earliest first. Lists one directory, reads no file. */
export async function delayedOf(layout: Layout, datasource: string): Promise<{ name: string; dueMs: number; id: string }[]> {
  const out: { name: string; dueMs: number; id: string }[] = [];
  for (const entry of await listSorted(join(layout.delayedDir, datasource))) {
    const parsed = entry.isFile() ? parseDelayedName(entry.name) : undefined;
    if (parsed) out.push({ name: entry.name, ...parsed });
  }
  return out;
}

/** What promotion did for one datasource, and what still waits. */
export interface Promotion {
  readonly promoted: number;
  /** Jobs left waiting (not due). */
  readonly waiting: number;
  /** The earliest due time of those, or null. */
  readonly nextDueMs: number | null;
  /** The job that could not be moved (it and the later ones stay for the next run), and why. */
  readonly failed?: { readonly path: string; readonly id: string; readonly error: unknown };
}

/**
 * Moves a datasource's due delayed jobs into their shards (rename, then fsync of both
 * directories when `syncer` is given), earliest first. Another process promoting at the
 * same time takes some of them: a name already gone is skipped. A job that can't be moved
 * (a full disk, permissions) stops the promotion of its datasource: it and the jobs after
 * it wait for the next run (`failed` says why).
 */
export async function promoteDue(layout: Layout, datasource: string, syncer: DirSyncer | null, now = Date.now()): Promise<Promotion> {
  const all = await delayedOf(layout, datasource);
  const source = join(layout.delayedDir, datasource);
  let promoted = 0;
  let i = 0;
  for (; i < all.length && all[i]!.dueMs <= now; i++) {
    const { name, id } = all[i]!;
    const target = spoolPathFor(layout.spoolDir, datasource, id);
    try {
      await makeDirDurable(dirname(target), syncer);
      await fs.promises.rename(join(source, name), target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !(await pathExists(join(source, name)))) continue; // another runner took it
      const rest = all.slice(i);
      return { promoted, waiting: rest.length, nextDueMs: rest[0]!.dueMs, failed: { path: join(source, name), id, error } };
    }
    if (syncer) await syncer.sync(dirname(target));
    promoted++;
  }
  // A rename is one metadata operation (one journal transaction on ext4/xfs): the fsync of
  // the shard made it durable whole; this one is for the directory's own metadata.
  if (promoted > 0 && syncer) await syncer.sync(source);
  const rest = all.slice(i);
  return { promoted, waiting: rest.length, nextDueMs: rest[0]?.dueMs ?? null };
}

/** The earliest due time over these datasources' delayed jobs, or null when none waits. */
export async function nextDue(layout: Layout, datasources: readonly string[]): Promise<number | null> {
  let next: number | null = null;
  for (const datasource of datasources) {
    const [first] = await delayedOf(layout, datasource);
    if (first && (next === null || first.dueMs < next)) next = first.dueMs;
  }
  return next;
}

/** Makes spool/.delayed/ (before the daemon's watcher starts: it watches the wake file in it). */
export async function ensureDelayedDir(layout: Layout): Promise<void> {
  await fs.promises.mkdir(layout.delayedDir, { recursive: true, mode: 0o700 });
}

/** Where a delayed job of this id waits, or null. */
export async function findDelayed(layout: Layout, datasource: string, id: string): Promise<{ path: string; dueMs: number } | null> {
  const found = (await delayedOf(layout, datasource)).find((d) => d.id === id);
  return found ? { path: join(layout.delayedDir, datasource, found.name), dueMs: found.dueMs } : null;
}
