import { join, relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import fs from 'fs-extra';
import { BUCKET_PATTERN, isHidden } from '../spool/shards.js';
import { isDatasourceName } from '../spool/record.js';

/**
 * Which paths under spool/ the drop-in watcher leaves alone. Pure.
 *
 * Ignored: anything hidden (spool/.tmp, spool/.active, spool/.id, editors' swap files) and
 * every shard bucket `spool/<datasource>/<bucket>/…`, which is where the queue itself lives
 * (up to millions of files, written by spool() and emptied by the runner). What is left to
 * watch is spool/, the datasource directories and whatever directories people drop files
 * into: a handful of directories however deep the backlog. A file dropped inside a shard
 * bucket is not seen by the watcher; the next run's scan finds it (the watcher is only
 * there to cut latency).
 */
export function isIgnoredBySpoolWatcher(spoolDir: string, path: string): boolean {
  const rel = relative(spoolDir, path);
  if (rel === '') return false;
  if (rel.startsWith('..')) return true;
  const parts = rel.split(sep);
  // spool/.immediate/<datasource>/<id>: a marked job wants a run now (spool/priority.ts).
  if (parts[0] === IMMEDIATE && parts.length <= 3) return false;
  // spool/.delayed/.wake: a delayed job was written; its files themselves are not watched (spool/delayed.ts).
  if (parts[0] === DELAYED && (parts.length === 1 || (parts.length === 2 && parts[1] === WAKE))) return false;
  if (parts.some(isHidden)) return true;
  return parts.length >= 2 && isDatasourceName(parts[0]) && BUCKET_PATTERN.test(parts[1]!);
}

/** The delayed jobs' directory under spool/ (layout.delayedDir) and the file rewritten when one is written. */
const DELAYED = '.delayed';
const WAKE = '.wake';

/** True for spool/.delayed/.wake. */
function isWakePath(spoolDir: string, path: string): boolean {
  return relative(spoolDir, path) === join(DELAYED, WAKE);
}

/** The markers' directory under spool/ (layout.immediateDir). */
const IMMEDIATE = '.immediate';

/** True for a path in spool/.immediate/: a marker of an immediate-priority job. */
export function isImmediateMarkerPath(spoolDir: string, path: string): boolean {
  return relative(spoolDir, path).split(sep)[0] === IMMEDIATE;
}

/** How long after a directory appears in .immediate/ it is looked into. */
const MARKER_LOOK_MS = 100;

/** True when `dir` (in .immediate/, at most two levels) holds a file: a marker. */
async function lookForMarkers(dir: string, depth = 0): Promise<boolean> {
  const entries = await fs.promises.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.isFile()) return true;
    if (e.isDirectory() && depth === 0 && (await lookForMarkers(join(dir, e.name), 1))) return true;
  }
  return false;
}

export interface SpoolWatcher {
  /** Resolves once the initial scan is done and events are flowing. */
  readonly ready: Promise<void>;
  /** What chokidar holds: each watched directory with the entries it tracks there. */
  watched(): Record<string, string[]>;
  close(): Promise<void>;
}

/**
 * Watches spool/ (any depth, shard buckets and hidden entries excepted) and calls `onDrop`
 * with the path of every file or directory that appears or changes, `onImmediate` when
 * an immediate-priority job is marked in spool/.immediate/, and `onWake` when a delayed job
 * was written (spool/.delayed/.wake changed). It reads nothing: the caller
 * decides when a drop-in has settled (run/adoption.ts).
 */
export function watchSpool(spoolDir: string, onDrop: (path: string) => void, onError: (error: unknown) => void, onImmediate: () => void = () => {}, onWake: () => void = () => {}): SpoolWatcher {
  const watcher: FSWatcher = watch(spoolDir, {
    ignoreInitial: true,
    ignored: (path: string) => isIgnoredBySpoolWatcher(spoolDir, path),
    followSymlinks: false,
    // No awaitWriteFinish: adoption's own settle check (dropInSettleMs, on mtime and ctime)
    // decides when a file is complete, the same for the watcher and for the scheduled scan.
  });
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  const onEvent = (path: string) => {
    if (isWakePath(spoolDir, path)) return onWake();
    return isImmediateMarkerPath(spoolDir, path) ? onImmediate() : onDrop(path);
  };
  watcher.on('add', onEvent);
  watcher.on('change', onEvent);
  // A new directory in .immediate/ is not a marker: a run started then would find the job
  // (written first) but not its marker, and run it in plain FIFO order. But chokidar can miss
  // what is created inside a directory that has just appeared (docs/decisions.md), so the
  // new directory is looked into a moment later, and a marker found there asks for a run.
  watcher.on('addDir', (path: string) => {
    if (relative(spoolDir, path) === DELAYED) return;
    if (!isImmediateMarkerPath(spoolDir, path)) return onDrop(path);
    const timer = setTimeout(() => void lookForMarkers(path).then((found) => found && onImmediate(), onError), MARKER_LOOK_MS);
    timer.unref();
  });
  watcher.on('error', onError);
  return {
    ready,
    watched: () => watcher.getWatched(),
    close: () => watcher.close(),
  };
}
