import { basename, extname, join } from 'node:path';
import fs from 'fs-extra';
import type { Layout } from './layout.js';
import type { DirSyncer } from './durable.js';

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
    if (await fs.pathExists(target)) continue;
    await fs.promises.rename(src, target);
    if (syncer) await syncer.sync(layout.failedDir);
    return target;
  }
}
