import { basename, dirname, extname, join } from 'node:path';
import fs from 'node:fs';
import type { Layout } from './layout.js';
import { pathExists, type DirSyncer } from './durable.js';

/**
 * The prefixes the runner gives files in failed/. `uncertain-`: a statement that commits
 * implicitly (DDL, …) was cut short by a crash or a lost connection; it may or may not have
 * run, and a person decides.
 */
export const FAILED_PREFIXES = ['failed-', 'connection-', 'uncertain-'] as const;

/** A failed/ file name prefix ('' puts a file back under the name it had there). */
export type FailedPrefix = (typeof FAILED_PREFIXES)[number] | '';

/**
 * The class of a file in failed/, from its name: `connection-` (could not reach the
 * database), `failed-` (the database refused it, or not a valid job), `uncertain-` (may or
 * may not have run: a person decides) or `other` (put there by hand).
 */
export type FailedClass = 'connection' | 'failed' | 'uncertain' | 'other';

const CLASS_OF_PREFIX: Record<(typeof FAILED_PREFIXES)[number], FailedClass> = { 'failed-': 'failed', 'connection-': 'connection', 'uncertain-': 'uncertain' };

export function failedClassOf(name: string): FailedClass {
  const prefix = FAILED_PREFIXES.find((p) => name.startsWith(p));
  return prefix === undefined ? 'other' : CLASS_OF_PREFIX[prefix];
}

/** Candidate names: `<prefix><name>`, then `<prefix><stem>-1<ext>`, `-2`, … */
function candidate(prefix: FailedPrefix, name: string, n: number): string {
  if (n === 0) return prefix + name;
  const ext = extname(name);
  return `${prefix}${basename(name, ext)}-${n}${ext}`;
}

/**
 * Moves `src` (a job file, or anything else that turned up in spool/) into failed/ under
 * `<prefix><name>` in one rename, never overwriting an existing failed file: a crash leaves
 * it either where it was or in failed/, never in both. Returns the path it got.
 */
export async function moveToFailed(layout: Layout, src: string, prefix: FailedPrefix, name: string, syncer: DirSyncer | null): Promise<string> {
  for (let n = 0; ; n++) {
    const target = join(layout.failedDir, candidate(prefix, name, n));
    // Names in failed/ are only ever taken by a runner holding the file (claims and
    // adoption are exclusive), so checking first does not race for the same name.
    if (await pathExists(target)) continue;
    await fs.promises.rename(src, target);
    if (syncer) await syncer.sync(layout.failedDir);
    return target;
  }
}

/**
 * moveToFailed() without the directory fsync, synchronously: for a burst of moves between
 * round trips (a thread-pool trip costs more than the rename itself), failed/ then fsynced
 * once by the caller.
 */
export function moveToFailedSync(layout: Layout, src: string, prefix: FailedPrefix, name: string): string {
  for (let n = 0; ; n++) {
    const target = join(layout.failedDir, candidate(prefix, name, n));
    if (fs.existsSync(target)) continue;
    fs.renameSync(src, target);
    return target;
  }
}

/**
 * Why a file that is not a valid job is in failed/: kept beside it, in a hidden file
 * `.<name>.reason` (JSON: the failure, and the inode of the file it belongs to). A valid
 * job carries its last failure in its own record; a file that could not be read as one (a
 * `.sql` drop-in over limits.maxSqlBytes, a directory) can't, and the error log it was
 * logged to rotates away. Hidden names are skipped by every listing of failed/.
 */
export interface FailedReason {
  readonly class: 'invalid';
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

function reasonPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.reason`);
}

/** Keeps the reason beside the file at `path` in failed/ (best effort: the error log has it too). */
export async function keepFailedReason(path: string, reason: FailedReason): Promise<void> {
  try {
    const { ino } = await fs.promises.lstat(path);
    await fs.promises.writeFile(reasonPath(path), JSON.stringify({ ino, ...reason }) + '\n', { mode: 0o600 });
  } catch {
    // The file is in failed/ either way; `failed list` then says why it can't be read.
  }
}

/** The reason kept beside the file at `path`; null when there is none, or it belongs to another file that had the name. */
export async function readFailedReason(path: string, ino: number): Promise<FailedReason | null> {
  try {
    const data = JSON.parse(await fs.promises.readFile(reasonPath(path), 'utf8')) as Record<string, unknown>;
    if (data.ino !== ino || typeof data.code !== 'string' || typeof data.message !== 'string' || typeof data.at !== 'string') return null;
    return { class: 'invalid', code: data.code, message: data.message, at: data.at };
  } catch {
    return null;
  }
}

/** Removes the reason kept beside `path` (the file left failed/). */
export async function dropFailedReason(path: string): Promise<void> {
  await fs.promises.rm(reasonPath(path), { force: true });
}
