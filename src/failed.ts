import { basename, extname, join } from 'node:path';
import fs from 'fs-extra';
import type { Layout } from './layout.js';
import { DirSyncer, tempPathFor, writeTemp } from './durable.js';

/** failed/ file name prefixes. */
export type FailedPrefix = 'failed-' | 'connection-';

/** Candidate names: `<prefix><name>`, then `<prefix><stem>-1<ext>`, `-2`, … */
function candidate(prefix: FailedPrefix, name: string, n: number): string {
  if (n === 0) return prefix + name;
  const ext = extname(name);
  return `${prefix}${basename(name, ext)}-${n}${ext}`;
}

/**
 * Moves `src` (a file, or anything else that turned up in spool/) into failed/ under
 * `<prefix><name>`, never overwriting an existing failed file. Returns the path it got.
 */
export async function moveToFailed(layout: Layout, src: string, prefix: FailedPrefix, name: string, syncer: DirSyncer | null): Promise<string> {
  const stat = await fs.promises.lstat(src);
  for (let n = 0; ; n++) {
    const target = join(layout.failedDir, candidate(prefix, name, n));
    if (stat.isDirectory()) {
      // Directories can't be hard-linked: check, then rename (a lost race only renames over an empty dir).
      if (await fs.pathExists(target)) continue;
      await fs.promises.rename(src, target);
    } else {
      try {
        await fs.promises.link(src, target); // fails with EEXIST instead of overwriting
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw error;
      }
      await fs.promises.unlink(src);
    }
    if (syncer) await syncer.sync(layout.failedDir);
    return target;
  }
}

/** Writes `text` as a new file in failed/ under `<prefix><name>` (no overwrite). Returns its path. */
export async function writeToFailed(layout: Layout, text: string, prefix: FailedPrefix, name: string, syncer: DirSyncer | null): Promise<string> {
  const tmp = tempPathFor(layout.tmpDir, name);
  await writeTemp(tmp, text, syncer !== null);
  try {
    return await moveToFailed(layout, tmp, prefix, name, syncer);
  } finally {
    await fs.promises.unlink(tmp).catch(() => {});
  }
}
