import { randomBytes } from 'node:crypto';
import { basename, join, resolve } from 'node:path';
import fs from 'fs-extra';
import { adoptionClaimDir } from '../run/recovery.js';
import { placeJobs } from '../run/adoption.js';
import type { DirSyncer } from '../spool/durable.js';
import { QueryBatchError, codeAndMessage } from '../errors.js';
import { FAILED_PREFIXES, dropFailedReason, failedClassOf, moveToFailed, readFailedReason, type FailedClass, type FailedReason } from '../spool/failed-dir.js';
import { idAt, idTime, isId } from '../spool/id.js';
import type { ResolvedConfig } from '../interfaces.js';
import type { Layout } from '../spool/layout.js';
import { listSorted, removeIfEmpty } from '../spool/listing.js';
import { readJobRecords } from '../spool/read-job.js';
import type { ScriptFile } from '../spool/script-file.js';
import { idOfFileName, spoolPathFor } from '../spool/shards.js';
import { describeParams, type LastError, type SpoolRecord, type WireParams } from '../spool/record.js';
import type { SpoolWriter } from '../spool/writer.js';

/**
 * failed/: listing, showing and respooling the files the runner gave up on (classes in
 * spool/failed-dir.ts). `uncertain-` files are respooled only by name: they may have run already.
 */
export type { FailedClass };

export interface FailedFile {
  /** The file name in failed/ (what `failed show` and `respool` take). */
  readonly name: string;
  readonly class: FailedClass;
  /** null when the file is not a readable job. */
  readonly id: string | null;
  readonly datasource: string | null;
  readonly createdAt: string | null;
  /** Milliseconds since the job was spooled (or, for an unreadable file, since it was last changed). */
  readonly ageMs: number;
  readonly attempts: number | null;
  /** What the runner recorded: for a file that is not a valid job, the reason it was set aside (else why it can't be read now). */
  readonly lastError: LastError | null;
  /** The file is a valid job (respool puts it back in its shard). */
  readonly valid: boolean;
  /** A plain `.sql` file (SQL text, not a job record): respool puts it back under spool/ as a drop-in. */
  readonly dropIn: boolean;
}

export interface FailedFileDetail extends FailedFile {
  /** The statement's SQL (null for a script, and for a file that could not be read). */
  readonly sql: string | null;
  /** A script's size, statements, and how many had committed (a respool resumes after them). */
  readonly script: { readonly bytes: number; readonly statements: number; readonly done: number } | null;
  /** The params as stored (wire form), or null unless asked for. */
  readonly params: WireParams | null;
  /** Count and types of the params, e.g. `2[number,string]`. */
  readonly paramsSummary: string | null;
}

/** A file in failed/ as read: the job it holds (null when it holds none), or why not. */
interface ReadFailed {
  readonly record: SpoolRecord | null;
  readonly script?: ScriptFile | null;
  readonly error: unknown;
  readonly mtimeMs: number;
  /** Why the runner set it aside, kept beside it (spool/failed-dir.ts). */
  readonly reason: FailedReason | null;
  /** A plain .sql file (a drop-in the runner could not take). */
  readonly dropIn: boolean;
}

async function readFailed(path: string, config: ResolvedConfig): Promise<ReadFailed> {
  const stat = await fs.promises.lstat(path);
  const reason = await readFailedReason(path, stat.ino);
  const dropIn = stat.isFile() && path.endsWith('.sql');
  try {
    // A segment's (a damaged one, mended by hand) is shown by its first job.
    const { records, script } = await readJobRecords(path, config.limits);
    return { record: records[0]!, script, error: null, mtimeMs: stat.mtimeMs, reason, dropIn: false };
  } catch (error) {
    return { record: null, error, mtimeMs: stat.mtimeMs, reason, dropIn };
  }
}

function describe(name: string, { record, error, mtimeMs, reason, dropIn }: ReadFailed, now: number): FailedFile {
  if (record) {
    return {
      name,
      class: failedClassOf(name),
      id: record.id,
      datasource: record.datasource,
      createdAt: record.createdAt,
      ageMs: Math.max(0, now - idTime(record.id)),
      attempts: record.attempts,
      lastError: reason ?? record.lastError ?? null,
      valid: true,
      dropIn: false,
    };
  }
  return {
    name,
    class: failedClassOf(name),
    id: null,
    datasource: null,
    createdAt: null,
    ageMs: Math.max(0, now - mtimeMs),
    attempts: null,
    lastError: reason ?? {
      class: 'invalid',
      code: error instanceof QueryBatchError ? error.code : 'INVALID_SPOOL_FILE',
      message: (error as Error).message,
      at: new Date(mtimeMs).toISOString(),
    },
    valid: false,
    dropIn,
  };
}

/** Everything in failed/ (a directory too), oldest job first (by id; the rest by name after them). */
export async function listFailed(layout: Layout, config: ResolvedConfig, now = Date.now()): Promise<FailedFile[]> {
  const out = await describeFailed(layout, config, (await listSorted(layout.failedDir)).map((e) => e.name), now);
  return out.sort((a, b) => (a.id ?? '\uffff' + a.name) < (b.id ?? '\uffff' + b.name) ? -1 : 1);
}

/** A name in failed/ and what the name alone tells: its class (prefix) and the job id it carries (null for none). */
export interface FailedName {
  readonly name: string;
  readonly class: FailedClass;
  readonly id: string | null;
}

/** The names in failed/ (one listing, no file read): for a page of the list without reading every file. */
export async function failedNames(layout: Layout): Promise<FailedName[]> {
  return (await listSorted(layout.failedDir)).map((entry) => {
    const prefix = FAILED_PREFIXES.find((p) => entry.name.startsWith(p)) ?? '';
    return { name: entry.name, class: failedClassOf(entry.name), id: idOfFileName(entry.name.slice(prefix.length)) ?? null };
  });
}

/** How many failed files describeFailed reads at once: each read is a few thread-pool trips (lstat, the reason, the file). */
const READ_WIDTH = 16;

/** listFailed for these names only (a name gone meanwhile, respooled, is left out), in the order given. */
export async function describeFailed(layout: Layout, config: ResolvedConfig, names: readonly string[], now = Date.now()): Promise<FailedFile[]> {
  const out: (FailedFile | null)[] = new Array<FailedFile | null>(names.length).fill(null);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(READ_WIDTH, names.length) }, async () => {
    while (next < names.length) {
      const i = next++;
      try {
        out[i] = describe(names[i]!, await readFailed(join(layout.failedDir, names[i]!), config), now);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }));
  return out.filter((f) => f !== null);
}

/**
 * The path of a failed file named by the user: a plain name in failed/ (`failed-….batchsql`,
 * also given as `failed/failed-….batchsql`). Throws CONFIG_INVALID for a name that would
 * escape failed/ (`../../etc/passwd`, an absolute path, a hidden name).
 */
export function failedPathOf(layout: Layout, name: string): string {
  const plain = name.replace(/^failed\//, '');
  const path = resolve(layout.failedDir, plain);
  if (plain === '' || plain.includes('/') || plain.includes('\\') || plain.startsWith('.') || path !== join(layout.failedDir, basename(path))) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected the name of a file in failed/ (as \`querybatch failed list\` shows it); got ${JSON.stringify(name)}, which is outside failed/`);
  }
  return path;
}

/** One failed file with its SQL and full error; params only when `showParams`. Throws FAILED_FILE_NOT_FOUND. */
export async function showFailed(layout: Layout, config: ResolvedConfig, name: string, showParams: boolean, now = Date.now()): Promise<FailedFileDetail> {
  const path = failedPathOf(layout, name);
  let read;
  try {
    read = await readFailed(path, config);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new QueryBatchError('FAILED_FILE_NOT_FOUND', `Expected a file named ${JSON.stringify(basename(path))} in failed/; found none (see \`querybatch failed list\`)`);
    }
    throw error;
  }
  const { record, script } = read;
  return {
    ...describe(basename(path), read, now),
    sql: record === null || script ? null : record.sql,
    script: script ? { bytes: script.record.script.bytes, statements: script.record.script.statements, done: script.done } : null,
    params: record && showParams ? record.params : null,
    paramsSummary: record ? describeParams(record.params) : null,
  };
}

/** Which failed files to respool. */
export interface RespoolSelection {
  /** Every failed file. */
  readonly all?: boolean;
  /** connection-… files. */
  readonly connection?: boolean;
  /** failed-… files. */
  readonly failed?: boolean;
  /** Only files whose last failure (or, without one, last change) is at or after this time (alone: of every kind). */
  readonly since?: Date;
  /** These names in failed/. */
  readonly names?: readonly string[];
}

export interface RespoolResult {
  /** Respooled, in id order: name in failed/, id and datasource. */
  readonly respooled: { name: string; id: string; datasource: string }[];
  /** Left in failed/, and why. */
  readonly skipped: { name: string; reason: string }[];
}

export interface RespoolDeps {
  readonly layout: Layout;
  readonly config: ResolvedConfig;
  readonly writer: SpoolWriter;
  readonly syncer: DirSyncer;
  readonly runner: string;
}

/** The failed files a selection names or matches, before they are read. */
async function candidatesOf(layout: Layout, selection: RespoolSelection, paths: readonly string[]): Promise<{ name: string; path: string }[]> {
  if (paths.length > 0) return paths.map((path) => ({ name: basename(path), path }));
  // `since` alone: every kind.
  const all = selection.all || (!selection.connection && !selection.failed);
  const out: { name: string; path: string }[] = [];
  for (const entry of await listSorted(layout.failedDir)) {
    const cls = failedClassOf(entry.name);
    if (!all && !(selection.connection && cls === 'connection') && !(selection.failed && cls === 'failed')) continue;
    out.push({ name: entry.name, path: join(layout.failedDir, entry.name) });
  }
  return out;
}

interface Sorted {
  /** Valid jobs: back to their shards. */
  readonly jobs: { name: string; path: string; id: string; datasource: string }[];
  /** Plain .sql files: back under spool/ as drop-ins. */
  readonly dropIns: { name: string; path: string; mtimeMs: number }[];
}

/** Reads each candidate: jobs and .sql drop-ins to respool, the rest skipped with why. */
async function sortCandidates(config: ResolvedConfig, selection: RespoolSelection, byName: boolean, candidates: readonly { name: string; path: string }[], result: RespoolResult): Promise<Sorted> {
  const sorted: Sorted = { jobs: [], dropIns: [] };
  for (const c of candidates) {
    let read;
    try {
      read = await readFailed(c.path, config);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      result.skipped.push({ name: c.name, reason: code === 'ENOENT' ? 'no such file in failed/' : `cannot be read (${code ?? (error as Error).message})` });
      continue;
    }
    if (selection.since) {
      const at = Date.parse(read.reason?.at ?? read.record?.lastError?.at ?? '') || read.mtimeMs;
      if (at < selection.since.getTime()) continue;
    }
    if (!byName && failedClassOf(c.name) === 'uncertain') {
      // It may have run already (a statement that commits implicitly, cut short): only a
      // person who has checked respools it, by name.
      result.skipped.push({ name: c.name, reason: 'uncertain: it may have run already; check (docs/guarantees.md), then respool it by name' });
      continue;
    }
    if (read.dropIn) {
      sorted.dropIns.push({ ...c, mtimeMs: read.mtimeMs });
    } else if (!read.record) {
      result.skipped.push({ name: c.name, reason: `not a valid job file: ${read.reason ? codeAndMessage(read.reason.code, read.reason.message) : (read.error as Error).message}` });
    } else if (!Object.hasOwn(config.datasources, read.record.datasource)) {
      result.skipped.push({ name: c.name, reason: `its datasource ${JSON.stringify(read.record.datasource)} is not configured` });
    } else {
      sorted.jobs.push({ ...c, id: read.record.id, datasource: read.record.datasource });
    }
  }
  sorted.jobs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return sorted;
}

/**
 * Puts a failed plain .sql file back under spool/ as `<id>.sql`, in one rename, for
 * adoption to take again: the id is the one its name carries, else one of its modification
 * time (as adoption gives a drop-in), so it keeps its place.
 */
async function respoolDropIn(deps: RespoolDeps, file: Sorted['dropIns'][number], result: RespoolResult): Promise<void> {
  const stem = file.name.slice(FAILED_PREFIXES.find((p) => file.name.startsWith(p))?.length ?? 0, -'.sql'.length);
  const id = isId(stem) ? stem : idAt(file.mtimeMs);
  const target = join(deps.layout.spoolDir, `${id}.sql`);
  if (await fs.pathExists(target)) {
    result.skipped.push({ name: file.name, reason: `spool/${id}.sql is already there; this copy stays in failed/` });
    return;
  }
  try {
    await fs.promises.rename(file.path, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    result.skipped.push({ name: file.name, reason: 'gone meanwhile (respooled by someone else?)' });
    return;
  }
  await deps.syncer.sync(deps.layout.spoolDir);
  await dropFailedReason(file.path);
  result.respooled.push({ name: file.name, id, datasource: deps.config.defaultDatasource });
}

/**
 * The paths in failed/ of `names`, all checked before anything is done: a name outside
 * failed/ throws CONFIG_INVALID naming every such name, and saying nothing was `done`.
 */
function failedPathsOf(layout: Layout, names: readonly string[], done: 'respooled' | 'deleted'): string[] {
  const outside = names.filter((name) => {
    try {
      failedPathOf(layout, name);
      return false;
    } catch {
      return true;
    }
  });
  if (outside.length > 0) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected names of files in failed/ (as \`querybatch failed list\` shows them); refused ${outside.map((n) => JSON.stringify(n)).join(', ')}: outside failed/. Nothing was ${done}`);
  }
  return names.map((name) => failedPathOf(layout, name));
}

/**
 * Moves failed files back into their shards with their original id (so they keep their
 * FIFO place, and a job never runs twice) and the attempt count reset. Each file is first
 * claimed by one rename into this runner's adoption claims, so a crash leaves it where
 * recovery gives it back as a drop-in, and two respools never both take it.
 */
export async function respoolFailed(deps: RespoolDeps, selection: RespoolSelection): Promise<RespoolResult> {
  const { layout, config } = deps;
  const named = selection.names ?? [];
  if (named.length === 0 && !selection.all && !selection.connection && !selection.failed && !selection.since) {
    throw new QueryBatchError('CONFIG_INVALID', 'Expected what to respool: all, connection, failed, since or names; got none');
  }
  // Every name is checked before anything moves: one outside failed/ and nothing is done.
  const paths = failedPathsOf(layout, named, 'respooled');
  const result: RespoolResult = { respooled: [], skipped: [] };
  // Read first, so jobs go back in id order and unreadable ones are reported, not moved.
  // Only names and ids are kept: failed/ may hold many large files.
  const { jobs, dropIns } = await sortCandidates(config, selection, named.length > 0, await candidatesOf(layout, selection, paths), result);

  const claimDir = adoptionClaimDir(layout, deps.runner);
  for (const job of jobs) {
    if (await fs.pathExists(spoolPathFor(layout.spoolDir, job.datasource, job.id))) {
      result.skipped.push({ name: job.name, reason: `job ${job.id} is already pending; this copy stays in failed/` });
      continue;
    }
    const claimed = join(claimDir, `${randomBytes(4).toString('hex')}-${job.name}`);
    await fs.promises.mkdir(claimDir, { recursive: true, mode: 0o700 });
    try {
      await fs.promises.rename(job.path, claimed);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      result.skipped.push({ name: job.name, reason: 'gone meanwhile (respooled by someone else?)' });
      continue;
    }
    try {
      // Read again: the claimed file is the one that goes back, whatever happened before the rename.
      const { records } = await readJobRecords(claimed, config.limits);
      const record = records[0]!;
      await placeJobs({ layout, writer: deps.writer, syncer: deps.syncer }, claimed, records);
      await dropFailedReason(job.path);
      result.respooled.push({ name: job.name, id: record.id, datasource: record.datasource });
    } catch (error) {
      // Back where it was, under its own name if it is free.
      await moveToFailed(layout, claimed, '', job.name, deps.syncer).catch(() => {});
      result.skipped.push({ name: job.name, reason: (error as Error).message });
    }
  }
  await removeIfEmpty(claimDir);
  for (const file of dropIns) await respoolDropIn(deps, file, result);
  return result;
}

export interface DeleteFailedResult {
  /** Deleted from failed/ (with the reason kept beside it), by name. */
  readonly deleted: string[];
  /** Not deleted, and why. */
  readonly skipped: { name: string; reason: string }[];
}

/**
 * Deletes files in failed/ by name, with the reason kept beside each (spool/failed-dir.ts).
 * Every name is checked first, as respool does: one outside failed/ and nothing is deleted
 * (CONFIG_INVALID). A name that is not there is skipped, with why.
 */
export async function deleteFailed(layout: Layout, syncer: DirSyncer, names: readonly string[]): Promise<DeleteFailedResult> {
  if (names.length === 0) throw new QueryBatchError('CONFIG_INVALID', 'Expected names of files in failed/ to delete; got none');
  const paths = failedPathsOf(layout, names, 'deleted');
  const result: DeleteFailedResult = { deleted: [], skipped: [] };
  for (const path of new Set(paths)) {
    const name = basename(path);
    try {
      await fs.promises.lstat(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      result.skipped.push({ name, reason: code === 'ENOENT' ? 'no such file in failed/' : `cannot be read (${code ?? (error as Error).message})` });
      continue;
    }
    // A directory that turned up in spool/ can be in failed/ too; a symlink goes, not what it points to.
    await fs.promises.rm(path, { recursive: true, force: true });
    await dropFailedReason(path);
    result.deleted.push(name);
  }
  if (result.deleted.length > 0) await syncer.sync(layout.failedDir);
  return result;
}
