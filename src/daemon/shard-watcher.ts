import { watch, type FSWatcher } from 'node:fs';
import { basename, join } from 'node:path';
import fs from 'fs-extra';
import { BUCKET_PATTERN, LEAF_PATTERN, compareNames, parseJobFileName } from '../spool/shards.js';

/**
 * Continuous mode's doorbell (schedule.continuous): calls `onJob` when a job file appears in
 * the shard tree of a datasource, written by any process (the writer renames it from
 * spool/.tmp into its leaf, which inotify reports on the leaf directory).
 *
 * It watches directories with fs.watch (one inotify watch each, no per-file state, no
 * chokidar): each datasource's tree `spool/<datasource>/` (new buckets), its buckets (new
 * leaves) and its newest `maxLeaves` leaves (new files). A run removes a leaf once drained, so
 * a daemon that keeps up watches a few directories; a backlog of 100,000 files at 200 per
 * second is 500 leaves. Beyond `maxLeaves` the oldest leaves lose their watch: a job is
 * written into an old leaf only when its id is old (a respool, a job given back), and the
 * next run, whatever wakes it, drains it. docs/decisions.md argues this against a doorbell
 * file rung by spool().
 *
 * A directory that appears is watched first and listed second, so a file renamed into it
 * before the watch took is found by the listing: no wake-up is lost to that race. An event
 * for a file that is gone by the time it is looked at (a run claimed it) wakes nothing.
 */
export interface ShardWatcher {
  /** Resolves once the existing directories are watched. */
  readonly ready: Promise<void>;
  /** The directories watched now (tests, the memory bound). */
  watched(): string[];
  close(): void;
}

export interface ShardWatcherOptions {
  /** Leaves watched per datasource, the newest. @default 1024 */
  readonly maxLeaves?: number;
}

type Level = 'tree' | 'bucket' | 'leaf';

/** The level below `level` and the names it holds. Pure. */
const CHILD: Record<Exclude<Level, 'leaf'>, { level: Level; pattern: RegExp }> = {
  tree: { level: 'bucket', pattern: BUCKET_PATTERN },
  bucket: { level: 'leaf', pattern: LEAF_PATTERN },
};

export function watchShards(spoolDir: string, datasources: readonly string[], onJob: () => void, onError: (error: unknown) => void, options: ShardWatcherOptions = {}): ShardWatcher {
  const maxLeaves = options.maxLeaves ?? 1024;
  const watchers = new Map<string, FSWatcher>();
  /** Per datasource tree: its watched leaves. */
  const leaves = new Map<string, Set<string>>();
  let closed = false;

  const unwatch = (path: string): void => {
    watchers.get(path)?.close();
    watchers.delete(path);
  };

  /** Watches a directory; false when it is gone (or can't be watched: reported). */
  const add = (path: string, level: Level, tree: string): boolean => {
    if (closed) return false;
    let w: FSWatcher;
    try {
      w = watch(path, { persistent: false }, (_event, name) => onEvent(path, level, tree, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') onError(error);
      return false;
    }
    w.on('error', () => unwatch(path));
    watchers.set(path, w);
    if (level === 'leaf') keepNewestLeaves(tree, path);
    return true;
  };

  const keepNewestLeaves = (tree: string, path: string): void => {
    let set = leaves.get(tree);
    if (!set) leaves.set(tree, (set = new Set()));
    set.add(path);
    for (const p of set) if (!watchers.has(p)) set.delete(p);
    while (set.size > maxLeaves) {
      let oldest: string | null = null;
      for (const p of set) if (oldest === null || compareNames(p, oldest) < 0) oldest = p;
      set.delete(oldest!);
      unwatch(oldest!);
    }
  };

  const onEvent = (dir: string, level: Level, tree: string, name: string | Buffer | null): void => {
    if (closed) return;
    if (name === null) {
      if (level === 'leaf') onJob(); // no name: can't tell, so look
      return;
    }
    const child = join(dir, name.toString());
    if (level === 'leaf') {
      if (parseJobFileName(basename(child)) === undefined) return;
      // An add, or a run claiming the file: only a file still there is work.
      fs.promises.access(child).then(onJob, () => {});
      return;
    }
    const { level: childLevel, pattern } = CHILD[level];
    if (!pattern.test(basename(child))) return;
    // A directory created or removed: whatever was watched under that name is stale.
    unwatch(child);
    void appeared(child, childLevel, tree).catch(onError);
  };

  /** A directory appeared: watch it, then list it (a leaf with a job wakes; a bucket's leaves are watched). */
  const appeared = async (path: string, level: Level, tree: string): Promise<void> => {
    if (!add(path, level, tree)) return;
    const names = await fs.promises.readdir(path).catch(() => [] as string[]);
    if (level === 'leaf') {
      if (names.some((n) => parseJobFileName(n) !== undefined)) onJob();
      return;
    }
    for (const n of names) if (LEAF_PATTERN.test(n)) await appeared(join(path, n), 'leaf', tree);
  };

  /** At start: the trees, their buckets and their newest leaves, watched; nothing wakes (the start run drains what is there). */
  const setup = async (): Promise<void> => {
    for (const datasource of datasources) {
      const tree = join(spoolDir, datasource);
      await fs.promises.mkdir(tree, { recursive: true, mode: 0o700 });
      if (!add(tree, 'tree', tree)) continue;
      const buckets = (await fs.promises.readdir(tree).catch(() => [] as string[])).filter((n) => BUCKET_PATTERN.test(n)).sort(compareNames).reverse();
      let budget = maxLeaves;
      for (const b of buckets) {
        const bucket = join(tree, b);
        if (!add(bucket, 'bucket', tree) || budget <= 0) continue;
        const names = (await fs.promises.readdir(bucket).catch(() => [] as string[])).filter((n) => LEAF_PATTERN.test(n)).sort(compareNames).reverse();
        for (const l of names.slice(0, budget)) if (add(join(bucket, l), 'leaf', tree)) budget--;
      }
    }
  };

  const ready = setup();
  ready.catch(onError);
  return {
    ready: ready.catch(() => {}),
    watched: () => [...watchers.keys()].sort(compareNames),
    close: () => {
      closed = true;
      for (const w of watchers.values()) w.close();
      watchers.clear();
      leaves.clear();
    },
  };
}
