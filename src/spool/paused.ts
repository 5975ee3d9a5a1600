import { join } from 'node:path';
import fs from 'node:fs';
import { makeDirDurable, type DirSyncer } from './durable.js';
import type { Layout } from './layout.js';
import { isDatasourceName } from './record.js';

/**
 * Paused datasources: an empty marker `spool/.paused/<datasource>` says "do not drain me".
 * A run skips a paused datasource (its summary says `paused`) and never connects for it;
 * spool() keeps writing its jobs. The marker is written and removed durably (the directory
 * fsynced), so a pause outlives a crash or a restart, and every process on the home sees it.
 */
function markerOf(layout: Layout, datasource: string): string {
  return join(layout.pausedDir, datasource);
}

/** Pauses a datasource; pausing a paused one changes nothing. */
export async function pauseDatasource(layout: Layout, datasource: string, syncer: DirSyncer): Promise<void> {
  await makeDirDurable(layout.pausedDir, syncer);
  await fs.promises.writeFile(markerOf(layout, datasource), '', { mode: 0o600 });
  await syncer.sync(layout.pausedDir);
}

/** Resumes a datasource; resuming one that is not paused changes nothing. */
export async function resumeDatasource(layout: Layout, datasource: string, syncer: DirSyncer): Promise<void> {
  await fs.promises.rm(markerOf(layout, datasource), { force: true });
  await syncer.sync(layout.pausedDir);
}

/** The paused datasources, by name (markers of names that are not datasource names are ignored). */
export async function pausedDatasources(layout: Layout): Promise<Set<string>> {
  try {
    return new Set((await fs.promises.readdir(layout.pausedDir)).filter(isDatasourceName));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw error;
  }
}
