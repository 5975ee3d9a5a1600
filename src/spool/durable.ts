import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

/**
 * fsync a directory, so that renames into it survive a crash. The open and close are
 * synchronous (a read-only open of a directory and its close touch no journal: microseconds),
 * only the fsync goes to the thread pool: one trip instead of three (docs/benchmarks.md,
 * "Leaves cut by count, and one producer's spool()").
 */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve())));
}

function openFd(path: string, flags: number, mode: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, mode, (error, fd) => (error ? reject(error) : resolve(fd))));
}

interface Waiters {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function waiters(): Waiters {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Group commit for directory fsyncs: every caller that asks for a directory while an fsync
 * of it is in flight shares the next one, so N concurrent spool() calls into one shard
 * cost about two directory fsyncs, not N.
 */
export class DirSyncer {
  readonly #dirs = new Map<string, { inFlight: boolean; next: Waiters | null }>();

  /** Resolves once an fsync of `dir` that started after this call has finished. */
  sync(dir: string): Promise<void> {
    let state = this.#dirs.get(dir);
    if (!state) {
      state = { inFlight: false, next: null };
      this.#dirs.set(dir, state);
    }
    state.next ??= waiters();
    const { promise } = state.next;
    if (!state.inFlight) void this.#flush(dir, state);
    return promise;
  }

  async #flush(dir: string, state: { inFlight: boolean; next: Waiters | null }): Promise<void> {
    state.inFlight = true;
    while (state.next) {
      const batch = state.next;
      state.next = null;
      try {
        await fsyncDir(dir);
        batch.resolve();
      } catch (error) {
        // A drained shard may be removed by a runner once its files are gone: nothing to sync.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') batch.resolve();
        else batch.reject(error);
      }
    }
    state.inFlight = false;
    this.#dirs.delete(dir);
  }
}

/** Random per process (a pid is reused across hosts and restarts), then a counter: no random bytes per file. */
const TEMP_PREFIX = randomBytes(6).toString('hex');
let tempCounter = 0;

/** A unique temp file name in `tmpDir` for content headed to `name` (O_EXCL still guards it). */
export function tempPathFor(tmpDir: string, name: string): string {
  return join(tmpDir, `${name}.${process.pid}.${TEMP_PREFIX}${(tempCounter++).toString(36)}.tmp`);
}

/** What a temp file name made by tempPathFor says: the name it was headed to and its writer's pid. */
export function parseTempName(fileName: string): { name: string; pid: number } | undefined {
  const m = /^(.+)\.(\d+)\.[^.]+\.tmp$/.exec(fileName);
  return m ? { name: m[1]!, pid: Number(m[2]) } : undefined;
}

/**
 * Files up to this size are written with synchronous write() calls into the page cache and
 * closed synchronously (microseconds); creating the file and the fsync stay asynchronous.
 */
const SYNC_WRITE_BYTES = 64 * 1024;

/**
 * Writes `text` to a new temp file (O_EXCL, mode 0600), or lets `text` write it through the
 * open handle, and optionally fsyncs it. On any failure the temp file is removed and the
 * error rethrown.
 */
export async function writeTemp(tmpPath: string, text: string | Buffer | ((handle: fs.promises.FileHandle) => Promise<void>), sync: boolean): Promise<void> {
  if (typeof text !== 'function') {
    const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    if (bytes.length <= SYNC_WRITE_BYTES) return writeSmallTemp(tmpPath, bytes, sync);
  }
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(tmpPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    if (typeof text === 'function') await text(handle);
    else await handle.writeFile(text);
    if (sync) await handle.sync();
    await handle.close();
    handle = undefined;
  } catch (error) {
    await handle?.close().catch(() => {});
    await fs.promises.unlink(tmpPath).catch(() => {});
    throw error;
  }
}

/** writeTemp of a small file: two trips through the thread pool (create, fsync) instead of four. */
async function writeSmallTemp(tmpPath: string, bytes: Buffer, sync: boolean): Promise<void> {
  let fd: number | undefined;
  try {
    fd = await openFd(tmpPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    for (let done = 0; done < bytes.length;) done += fs.writeSync(fd, bytes, done);
    if (sync) await fsyncFd(fd);
    const open = fd;
    fd = undefined;
    fs.closeSync(open);
  } catch (error) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // the error that brought us here is the one to report
      }
    }
    await fs.promises.unlink(tmpPath).catch(() => {});
    throw error;
  }
}

/**
 * Makes `dir` and its missing parents (mode 0700). When `syncer` is given, the parent of
 * every directory it created is fsynced, so the new directories survive a crash.
 */
export async function makeDirDurable(dir: string, syncer: DirSyncer | null): Promise<void> {
  const created = await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  if (created === undefined || syncer === null) return;
  await syncCreatedDirs(dir, created, syncer);
}

/** Fsyncs the parent of every directory a recursive mkdir of `dir` created (`created`: the first it made). */
export async function syncCreatedDirs(dir: string, created: string, syncer: DirSyncer): Promise<void> {
  const parents: string[] = [];
  for (let d = dir; d !== dirname(created); d = dirname(d)) parents.push(dirname(d));
  await Promise.all(parents.map((p) => syncer.sync(p)));
}

/** Atomic write of a whole file: temp, fsync, rename over `path`, fsync its directory. */
export async function writeFileAtomic(tmpDir: string, path: string, text: string, syncer: DirSyncer | null): Promise<void> {
  const tmp = tempPathFor(tmpDir, 'rewrite');
  await writeTemp(tmp, text, syncer !== null);
  try {
    await makeDirDurable(dirname(path), syncer);
    await fs.promises.rename(tmp, path);
  } catch (error) {
    await fs.promises.unlink(tmp).catch(() => {});
    throw error;
  }
  if (syncer) await syncer.sync(dirname(path));
}

/** Whether anything is at `path` (a file, a directory or a dangling link); never throws. */
export async function pathExists(path: string): Promise<boolean> {
  return fs.promises.lstat(path).then(() => true, () => false);
}
