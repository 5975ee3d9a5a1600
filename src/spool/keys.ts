import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import fs from 'node:fs';
import { makeDirDurable, pathExists, tempPathFor, writeTemp, type DirSyncer } from './durable.js';
import type { Layout } from './layout.js';

/**
 * Idempotency keys (spool(…, { key })). A key's marker is a small file
 * spool/.keys/<datasource>/<sha256 hex of the key> holding the id of the job that took it.
 * It is made complete in spool/.tmp and then hard-linked into place: link() fails with
 * EEXIST when the name exists, atomically across processes on one filesystem, so of two
 * producers spooling one key at the same moment exactly one gets the marker; the other
 * reads it and returns its id. The marker is taken before the job's file is renamed into
 * the spool, so a job with a key is never visible without its marker.
 *
 * A marker is not removed when its job finishes: whether it still holds is judged when
 * the key is spooled again, from what became of its job (`KeyHolder`, given by the caller:
 * status(id)). A marker that no longer holds is replaced, under a small lock file
 * (`<hash>.lock`, O_EXCL) so that two producers never both replace it.
 */

/**
 * Whether the job a marker names still holds its key; `markerAgeMs` is how old the marker
 * is, `datasource` the marker's. May reject (the ledger could not be asked): then the key
 * is neither taken nor replaced, and the caller's spool() rejects.
 */
export type KeyHolder = (id: string, markerAgeMs: number, datasource: string) => Promise<boolean>;

/** What reserveKey() found: the key is ours now (`path` is its marker), or held by job `id`. */
export type Reservation = { readonly reserved: true; readonly path: string } | { readonly reserved: false; readonly id: string };

/** How long a marker whose job can't be found is still taken as held: its job may be being written. */
export const KEY_GRACE_MS = 60_000;
/** A replace lock older than this was left by a killed process and is broken. */
const LOCK_STALE_MS = 10_000;

interface Marker {
  readonly id: string;
  readonly key: string;
  readonly at: string;
}

/** The marker's path of a key. Pure. */
export function keyPathFor(layout: Layout, datasource: string, key: string): string {
  return join(layout.keysDir, datasource, createHash('sha256').update(key, 'utf8').digest('hex'));
}

/** The marker at `path` and its age, or null when there is none; `id` null when it is not readable (damaged). */
async function readMarker(path: string): Promise<{ id: string | null; ageMs: number } | null> {
  try {
    const [text, stat] = await Promise.all([fs.promises.readFile(path, 'utf8'), fs.promises.stat(path)]);
    let id: string | null = null;
    try {
      const parsed = JSON.parse(text) as Partial<Marker>;
      id = typeof parsed.id === 'string' ? parsed.id : null;
    } catch {
      // damaged: taken as not holding
    }
    return { id, ageMs: Date.now() - stat.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Takes `key` of `datasource` for job `id`, or finds the job that holds it. Throws the
 * file system's error (the caller reports SPOOL_WRITE_FAILED; nothing is spooled).
 */
export async function reserveKey(layout: Layout, datasource: string, key: string, id: string, holds: KeyHolder, syncer: DirSyncer | null): Promise<Reservation> {
  const path = keyPathFor(layout, datasource, key);
  await makeDirDurable(dirname(path), syncer);
  const tmp = tempPathFor(layout.tmpDir, 'key');
  await writeTemp(tmp, `${JSON.stringify({ id, key, at: new Date().toISOString() } satisfies Marker)}\n`, syncer !== null);
  try {
    for (;;) {
      try {
        await fs.promises.link(tmp, path);
        if (syncer) await syncer.sync(dirname(path));
        return { reserved: true, path };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const found = await readMarker(path);
      if (found === null) continue; // replaced or removed meanwhile: try again
      if (found.id !== null && (await holds(found.id, found.ageMs, datasource))) return { reserved: false, id: found.id };
      if (await replaceStale(path, found.id, tmp, syncer)) return { reserved: true, path };
    }
  } finally {
    await fs.promises.unlink(tmp).catch(() => {});
  }
}

/**
 * Replaces a marker judged stale (naming `staleId`) with ours, under the lock; false when
 * the lock is busy or the marker changed meanwhile (the caller looks again).
 */
async function replaceStale(path: string, staleId: string | null, tmp: string, syncer: DirSyncer | null): Promise<boolean> {
  const lock = `${path}.lock`;
  try {
    await fs.promises.writeFile(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const stat = await fs.promises.stat(lock).catch(() => null);
    if (stat && Date.now() - stat.mtimeMs > LOCK_STALE_MS) await fs.promises.unlink(lock).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 20));
    return false;
  }
  try {
    const now = await readMarker(path);
    if (now !== null && now.id !== staleId) return false;
    // rename() replaces the name atomically: a producer racing us sees the old marker or ours.
    await fs.promises.rename(tmp, path);
    if (syncer) await syncer.sync(dirname(path));
    return true;
  } finally {
    await fs.promises.unlink(lock).catch(() => {});
  }
}

/** Gives a key back (its job could not be written): removes the marker if it still names `id`. */
export async function releaseKey(path: string, id: string): Promise<void> {
  const found = await readMarker(path).catch(() => null);
  if (found?.id === id) await fs.promises.unlink(path).catch(() => {});
}

/** How often at most (per spool) a run looks for key markers to remove; shorter when keyRetentionMs is. */
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Removes the markers of keys that are free again (their job succeeded more than
 * `retentionMs` ago, was cancelled, or left failed/), so that spool/.keys/ does not grow
 * with every key ever spooled. Only markers older than `retentionMs` are looked at (a
 * younger one may hold its key as a recent success), each asked `holds()` as reserveKey()
 * would, and removed under the same lock as a replacement, if it still names the job judged
 * free. Runs at most once every 10 minutes per spool (spool/.keys/.pruned records the last
 * time; every keyRetentionMs when that is shorter). Returns how many markers were removed.
 */
export async function pruneKeys(layout: Layout, holds: KeyHolder, retentionMs: number): Promise<number> {
  const stamp = join(layout.keysDir, '.pruned');
  const last = await fs.promises.stat(stamp).then((s) => s.mtimeMs, () => null);
  if (last === null && !(await pathExists(layout.keysDir))) return 0;
  if (last !== null && Date.now() - last < Math.min(PRUNE_EVERY_MS, retentionMs)) return 0;
  await fs.promises.writeFile(stamp, '');
  let removed = 0;
  for (const datasource of await fs.promises.readdir(layout.keysDir).catch(() => [] as string[])) {
    if (datasource.startsWith('.')) continue;
    const dir = join(layout.keysDir, datasource);
    for (const name of await fs.promises.readdir(dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue; // locks, anything else
      const path = join(dir, name);
      const found = await readMarker(path).catch(() => null);
      if (found === null || found.ageMs <= retentionMs) continue;
      if (found.id !== null && (await holds(found.id, found.ageMs, datasource))) continue;
      if (await removeStale(path, found.id)) removed++;
    }
  }
  return removed;
}

/** Removes a marker judged free, under the replace lock, if it still names `staleId`. */
async function removeStale(path: string, staleId: string | null): Promise<boolean> {
  const lock = `${path}.lock`;
  try {
    await fs.promises.writeFile(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
  } catch {
    return false; // a producer is replacing it right now: leave it
  }
  try {
    const now = await readMarker(path);
    if (now === null || now.id !== staleId) return false;
    await fs.promises.unlink(path);
    return true;
  } finally {
    await fs.promises.unlink(lock).catch(() => {});
  }
}
