import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import fs from 'node:fs';
import { QueryBatchError } from '../errors.js';

/** The directories and files under a home directory. */
export interface Layout {
  readonly home: string;
  readonly spoolDir: string;
  /** Writers' temp files: same filesystem as the shards, so rename is atomic. */
  readonly tmpDir: string;
  /** Claimed files, one directory per runner. */
  readonly activeDir: string;
  readonly failedDir: string;
  readonly logsDir: string;
  readonly runLog: string;
  readonly errorLog: string;
  /** Markers of immediate-priority jobs, spool/.immediate/<datasource>/<id> (spool/priority.ts). */
  readonly immediateDir: string;
  /** Paused datasources, spool/.paused/<datasource> (spool/paused.ts). */
  readonly pausedDir: string;
  /** Delayed jobs not yet due, spool/.delayed/<datasource>/<due>-<id>.batchsql (spool/delayed.ts). */
  readonly delayedDir: string;
  /** Idempotency keys' markers, spool/.keys/<datasource>/<sha256 of the key> (spool/keys.ts). */
  readonly keysDir: string;
  /** Captured results of background SELECTs, logs/results/<id>/ (ops/results.ts). */
  readonly resultsDir: string;
  /** What became of finished jobs, for status(id) (ops/outcomes.ts). */
  readonly outcomesDir: string;
  /** spool/.id: a random name for this spool, shared by every process and host using it. */
  readonly spoolIdFile: string;
}

export function layoutOf(home: string): Layout {
  const spoolDir = join(home, 'spool');
  const logsDir = join(home, 'logs');
  return {
    home,
    spoolDir,
    tmpDir: join(spoolDir, '.tmp'),
    activeDir: join(spoolDir, '.active'),
    failedDir: join(home, 'failed'),
    logsDir,
    runLog: join(logsDir, 'querybatch.log'),
    errorLog: join(logsDir, 'querybatch-error.log'),
    immediateDir: join(spoolDir, '.immediate'),
    pausedDir: join(spoolDir, '.paused'),
    delayedDir: join(spoolDir, '.delayed'),
    keysDir: join(spoolDir, '.keys'),
    outcomesDir: join(logsDir, 'outcomes'),
    resultsDir: join(logsDir, 'results'),
    spoolIdFile: join(spoolDir, '.id'),
  };
}

/**
 * Makes the home directory (and its parents) when it does not exist yet, as `init` does,
 * checks that it is a writable directory and creates spool/, failed/ and logs/ in it (spool
 * 0700: the files hold SQL and params). Throws HOME_UNUSABLE.
 */
export async function ensureLayout(layout: Layout): Promise<void> {
  let made: unknown = null;
  await fs.promises.mkdir(layout.home, { recursive: true }).catch((error: unknown) => {
    made = error; // EEXIST for a file: the stat below tells a file from a directory
  });
  let stat;
  try {
    stat = await fs.promises.stat(layout.home);
  } catch (error) {
    const cause = made ?? error;
    throw new QueryBatchError('HOME_UNUSABLE', `Expected the home directory ${layout.home} to exist or to be creatable; found ${(cause as NodeJS.ErrnoException).code ?? 'an error'}`, { cause });
  }
  if (!stat.isDirectory()) throw new QueryBatchError('HOME_UNUSABLE', `Expected the home ${layout.home} to be a directory; found a file`);
  try {
    await fs.promises.access(layout.home, fs.constants.W_OK | fs.constants.X_OK);
    for (const dir of [layout.spoolDir, layout.tmpDir, layout.activeDir, layout.failedDir]) {
      await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    }
    await fs.promises.mkdir(layout.logsDir, { recursive: true, mode: 0o750 });
    // O_EXCL: when two processes start at once, one writes it and both read the same.
    await fs.promises.writeFile(layout.spoolIdFile, randomBytes(12).toString('hex') + '\n', { flag: 'wx', mode: 0o600 }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  } catch (error) {
    throw new QueryBatchError('HOME_UNUSABLE', `Expected the home directory ${layout.home} to be writable; found ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
}

/** The spool's id (spool/.id), written by ensureLayout. */
export async function readSpoolId(layout: Layout): Promise<string> {
  return (await fs.promises.readFile(layout.spoolIdFile, 'utf8')).trim();
}
