import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import fs from 'fs-extra';
import { QueryBatchError, isQueryBatchError } from '../errors.js';
import { idTime, idsAt, isId } from '../spool/id.js';
import type { ResolvedConfig } from '../interfaces.js';
import type { Layout } from '../spool/layout.js';
import { listSorted, walkSpool } from '../spool/listing.js';
import { readJobRecords, readJobText } from '../spool/read-job.js';
import { rewriteScriptFile, type ScriptBody } from '../spool/script-file.js';
import { tempPathFor } from '../spool/durable.js';
import { compareNames, spoolPathFor } from '../spool/shards.js';
import { SPOOL_EXTENSION, encodeRecord, type SpoolRecord } from '../spool/record.js';
import { buildRecord, encodeWithinLimit, startsWithBom, type SpoolWriter } from '../spool/writer.js';
import { makeDirDurable, type DirSyncer } from '../spool/durable.js';

/**
 * Adoption: anything under spool/ that is not a job in its own shard (a failed file copied
 * back, a hand-written .sql file, a file in a directory of the operator's) is checked and
 * moved into its shard, keeping its id and so its FIFO place. What can't be adopted goes
 * to failed/ with the reason.
 */
export interface AdoptContext {
  readonly layout: Layout;
  readonly config: ResolvedConfig;
  readonly writer: SpoolWriter;
  readonly syncer: DirSyncer | null;
  /** Where this runner holds the drop-ins it is adopting (spool/.active/<runner>/.adopt). */
  readonly claimDir: string;
  /** Moves a drop-in that can't be run into failed/ and logs why (`shownAs`: where it was found). */
  fail(path: string, name: string, error: unknown, record: Partial<SpoolRecord> | undefined, shownAs: string): Promise<void>;
  /** Logs why a valid drop-in could not be queued (an I/O error); it stays where it is. */
  leave(path: string, error: unknown, record?: Partial<SpoolRecord>): void;
}

export interface AdoptResult {
  adopted: number;
  invalid: number;
  /** Drop-ins changed too recently to be taken (still being written?), or valid ones that could not be queued (disk full): taken by a later run. */
  settling: number;
}

function isJobDirectoryName(name: string): boolean {
  return name.endsWith(SPOOL_EXTENSION) || name.endsWith('.sql');
}

/** A plain .sql drop-in without an id in its name, waiting for its id (plainSqlOrder). */
interface PlainSql {
  readonly path: string;
  readonly entry: fs.Dirent;
  readonly mtimeNs: bigint;
}

/**
 * Takes in every drop-in under spool/. A plain `.sql` file gets an id carrying its
 * modification time; the pass's plain `.sql` files are given their ids together, in
 * (modification time, name, path) order, increasing also within one millisecond, so they
 * run in that order: files written one after another, or named to sort, keep their order.
 */
export async function adoptDropIns(ctx: AdoptContext, now = Date.now()): Promise<AdoptResult> {
  const result: AdoptResult = { adopted: 0, invalid: 0, settling: 0 };
  const plainSql: PlainSql[] = [];
  const dropIn = async (path: string, entry: fs.Dirent): Promise<void> => {
    if (entry.isDirectory() && !isJobDirectoryName(entry.name)) {
      for (const child of await listSorted(path)) await dropIn(join(path, child.name), child);
      return;
    }
    let stat: fs.BigIntStats;
    try {
      stat = await fs.promises.lstat(path, { bigint: true });
    } catch {
      return; // gone meanwhile
    }
    const changedMs = Number((stat.mtimeNs > stat.ctimeNs ? stat.mtimeNs : stat.ctimeNs) / 1_000_000n);
    if (ctx.config.dropInSettleMs > 0 && now - changedMs < ctx.config.dropInSettleMs) {
      result.settling++;
      return;
    }
    const named = entry.name.endsWith('.sql') ? entry.name.slice(0, -'.sql'.length) : null;
    if (named !== null && !isId(named)) plainSql.push({ path, entry, mtimeNs: stat.mtimeNs });
    else await adoptOne(ctx, result, path, entry, named);
  };

  // Everything the walk reports that is not a job in its own shard, oldest place first; a
  // leaf the leaf index trusts is known to hold only jobs and is not listed.
  for await (const entry of walkSpool(ctx.layout.spoolDir)) {
    if (entry.kind === 'stray') await dropIn(entry.path, entry.entry);
  }
  plainSql.sort(plainSqlOrder);
  const ids = idsAt(plainSql.map((file) => Number(file.mtimeNs / 1_000_000n)));
  for (const [i, file] of plainSql.entries()) await adoptOne(ctx, result, file.path, file.entry, ids[i]!);
  return result;
}

/** (modification time, name, path): the order plain .sql drop-ins run in. */
function plainSqlOrder(a: PlainSql, b: PlainSql): number {
  if (a.mtimeNs !== b.mtimeNs) return a.mtimeNs < b.mtimeNs ? -1 : 1;
  return compareNames(a.entry.name, b.entry.name) || compareNames(a.path, b.path);
}

/**
 * Takes in one drop-in: claims it, reads it, places its jobs in their shard; what can't be
 * run goes to failed/ (ctx.fail), a valid one that can't be placed now stays (ctx.leave).
 * `sqlId`: a .sql file's id (the ULID in its name, or the one adoption gave it), else null.
 */
async function adoptOne(ctx: AdoptContext, result: AdoptResult, path: string, entry: fs.Dirent, sqlId: string | null): Promise<void> {
  // Take it first: one rename into this runner's adoption claims, so that two runners
  // never both adopt it, and a crash leaves it where recovery finds it (run/recovery.ts).
  const claimed = join(ctx.claimDir, sqlId !== null ? `${sqlId}.sql` : `${randomBytes(4).toString('hex')}-${entry.name}`);
  try {
    await fs.promises.mkdir(ctx.claimDir, { recursive: true, mode: 0o700 });
    await fs.promises.rename(path, claimed);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // another runner took it
    throw error;
  }
  let records: SpoolRecord[];
  let script: ScriptBody | undefined;
  try {
    ({ records, script } = await readDropIn(ctx, claimed, entry.name, sqlId));
  } catch (error) {
    result.invalid++;
    await ctx.fail(claimed, entry.name, error, undefined, path);
    return;
  }
  const record = records[0]!;
  try {
    if (script !== undefined) {
      // A .sql script: written as a script's file (its text copied after its header), then the drop-in goes.
      await ctx.writer.writeScript(record, script);
      await fs.promises.unlink(claimed);
    } else {
      await placeJobs(ctx, claimed, records);
    }
    result.adopted += records.length;
  } catch (error) {
    if (isQueryBatchError(error, 'INVALID_SPOOL_FILE')) {
      result.invalid++;
      await ctx.fail(claimed, entry.name, error, record, path);
    } else {
      // Not the file's fault (disk full, permissions): put it back for a later run.
      await fs.promises.rename(claimed, path).catch(() => {});
      result.settling++;
      ctx.leave(path, error, record);
    }
  }
}

/** A DELIMITER line: a script (a trigger, a procedure), even with one statement. */
const DELIMITER_LINE = /^[ \t]*delimiter[ \t]+\S/im;

/**
 * A drop-in's jobs: one, or a segment's (moved or copied by hand), or a script's (a failed
 * script copied back). A plain .sql file of one statement is that statement's job; of
 * several (or with DELIMITER, or larger than limits.maxFileBytes) it is a script, and
 * `script` says where its text is.
 */
async function readDropIn(ctx: AdoptContext, path: string, name: string, sqlId: string | null): Promise<{ records: SpoolRecord[]; script?: ScriptBody }> {
  const isBatch = name.endsWith(SPOOL_EXTENSION);
  if (!isBatch && sqlId === null) {
    throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected a ${SPOOL_EXTENSION} or .sql file; found ${JSON.stringify(name)}`);
  }
  const { limits } = ctx.config;
  let records: SpoolRecord[];
  let script: ScriptBody | undefined;
  if (isBatch) {
    records = (await readJobRecords(path, limits)).records;
  } else {
    // A plain .sql file: its text is the SQL (or the script), for the default datasource, with no params.
    const createdAt = new Date(idTime(sqlId!));
    const stat = await fs.promises.lstat(path);
    if (stat.isFile() && stat.size > limits.maxFileBytes && stat.nlink === 1) {
      const bom = await startsWithBom(path);
      script = { path, start: bom ? 3 : 0, bytes: stat.size - (bom ? 3 : 0) };
      records = [await ctx.writer.scriptRecordOf(script, {}, sqlId!, createdAt)];
    } else {
      const sql = (await readJobText(path, limits.maxFileBytes)).replace(/^\uFEFF/, '');
      const asScript = await ctx.writer.scriptRecordOf({ text: sql }, {}, sqlId!, createdAt).catch((error: unknown) => {
        if (isQueryBatchError(error, 'EMPTY_SQL')) return null; // said again, as for a statement
        throw error;
      });
      if (asScript !== null && (asScript.script!.statements > 1 || DELIMITER_LINE.test(sql))) {
        script = { text: sql };
        records = [asScript];
      } else {
        records = [buildRecord(ctx.config, sql, [], {}, sqlId!, createdAt)];
        // Its record must fit in a spool file too (quotes and newlines take more room as JSON).
        encodeWithinLimit(ctx.config, records[0]!);
      }
    }
  }
  const datasource = records[0]!.datasource;
  if (!Object.hasOwn(ctx.config.datasources, datasource)) {
    throw new QueryBatchError('UNKNOWN_DATASOURCE', `Expected the file's datasource to be configured (${Object.keys(ctx.config.datasources).join(', ') || 'none are'}); found ${JSON.stringify(datasource)}`);
  }
  return { records, ...(script !== undefined && { script }) };
}

/**
 * Puts a dropped-in segment's jobs into their shard as files of their own (a segment is
 * the spool writer's alone to make), skipping those pending already (written before a
 * crash cut this adoption short), then removes the drop-in.
 */
async function placeSegment(ctx: Pick<AdoptContext, 'layout' | 'writer'>, path: string, records: readonly SpoolRecord[]): Promise<void> {
  for (const record of records) {
    if (await fs.pathExists(spoolPathFor(ctx.layout.spoolDir, record.datasource, record.id))) continue;
    await ctx.writer.write(record.datasource, record.id, encodeRecord({ ...record, attempts: 0 }));
  }
  await fs.promises.unlink(path);
}

/** Puts an adopted (or respooled) file's jobs into their shard: placeJob for one, placeSegment for a segment's. */
export async function placeJobs(ctx: Pick<AdoptContext, 'layout' | 'writer' | 'syncer'>, path: string, records: readonly SpoolRecord[]): Promise<void> {
  if (records.length === 1) await placeJob(ctx, path, records[0]!);
  else await placeSegment(ctx, path, records);
}

/** Puts an adopted (or respooled) job into its shard; attempts start again from 0 (respooling is a fresh start). */
export async function placeJob(ctx: Pick<AdoptContext, 'layout' | 'writer' | 'syncer'>, path: string, record: SpoolRecord): Promise<void> {
  const target = spoolPathFor(ctx.layout.spoolDir, record.datasource, record.id);
  if (await fs.pathExists(target)) {
    throw new QueryBatchError('INVALID_SPOOL_FILE', `A job with id ${record.id} is already pending (${target}); this copy was not queued again`);
  }
  if (record.script !== undefined) {
    // A script: its header rewritten (attempts from 0) unless it is already, its progress and body kept.
    if (record.attempts !== 0) await rewriteScriptFile(tempPathFor(ctx.layout.tmpDir, 'respool'), path, { ...record, attempts: 0 });
    await fs.promises.chmod(path, 0o600);
    await makeDirDurable(dirname(target), ctx.syncer);
    await fs.promises.rename(path, target);
    if (ctx.syncer) await ctx.syncer.sync(dirname(target));
  } else if (path.endsWith(SPOOL_EXTENSION) && record.attempts === 0) {
    await fs.promises.chmod(path, 0o600); // a hand-made file may have come in 0644
    await makeDirDurable(dirname(target), ctx.syncer);
    await fs.promises.rename(path, target);
    if (ctx.syncer) await ctx.syncer.sync(dirname(target));
  } else {
    await ctx.writer.write(record.datasource, record.id, encodeRecord({ ...record, attempts: 0 }));
    await fs.promises.unlink(path);
  }
  // A respooled or dropped-in immediate job is marked again once it is queued. The job is
  // queued either way: without its marker (disk full) it runs in its normal place.
  if (record.priority === 'immediate') await ctx.writer.markImmediate(record.datasource, record.id).catch(() => {});
}
