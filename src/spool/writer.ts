import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import fs from 'node:fs';
import { QueryBatchError, describeValue, isQueryBatchError, withCode } from '../errors.js';
import { newId, type GenerationFloor } from './id.js';
import { generationFloor } from './generations.js';
import { checkWebhookUrl } from '../config.js';
import type { ResolvedConfig, SpoolOptions } from '../interfaces.js';
import type { Layout } from './layout.js';
import { DirSyncer, syncCreatedDirs, tempPathFor, writeTemp } from './durable.js';
import { MAX_SEGMENT_JOBS, sameLeaf, spoolPathFor } from './shards.js';
import { runsOnceWithLedger, type Dialect } from '../db/driver.js';
import { loadDriverFactory } from '../db/registry.js';
import { markImmediate } from './priority.js';
import { FORMAT, MAX_KEY_LENGTH, SPOOL_EXTENSION, encodeParams, encodeRecord, isKey, type ScriptMeta, type SpoolRecord } from './record.js';
import { delayedPathFor, touchWake } from './delayed.js';
import { releaseKey, reserveKey, type KeyHolder } from './keys.js';
import { measureScript, measureScriptText, writeScriptTemp, type ScriptBody } from './script-file.js';

/**
 * Checks a statement and builds its record, or throws a typed error (EMPTY_SQL,
 * SQL_TOO_LARGE, UNSERIALIZABLE_PARAM, PARAMS_TOO_LARGE, UNKNOWN_DATASOURCE). Pure.
 */
export function buildRecord(config: ResolvedConfig, sql: unknown, params: unknown, options: SpoolOptions, id: string, now: Date): SpoolRecord {
  return prepareRecord(config, sql, params, options, id, now).record;
}

/** buildRecord, and the params' JSON it made to check their size (for encodeRecord). Pure. */
function prepareRecord(config: ResolvedConfig, sql: unknown, params: unknown, options: SpoolOptions, id: string, now: Date): { record: SpoolRecord; paramsJson: string } {
  const datasource = options.datasource ?? config.defaultDatasource;
  if (typeof datasource !== 'string' || !Object.hasOwn(config.datasources, datasource)) {
    const names = Object.keys(config.datasources);
    throw new QueryBatchError('UNKNOWN_DATASOURCE', `Expected a configured datasource (${names.length ? names.join(', ') : 'none are configured'}); got ${JSON.stringify(datasource)}`);
  }
  if (typeof sql !== 'string' || sql.trim() === '') {
    throw new QueryBatchError('EMPTY_SQL', `Expected SQL to be a non-empty string; got ${typeof sql !== 'string' ? describeValue(sql) : sql === '' ? 'an empty string' : `only whitespace (${JSON.stringify(sql.length > 40 ? `${sql.slice(0, 40)}…` : sql)})`}`);
  }
  // Unset (the default), the SQL is bounded by the file that holds it here, and by the
  // server's max_allowed_packet when it runs (a statement that can't fit fails alone).
  const sqlBytes = Buffer.byteLength(sql, 'utf8');
  const { maxSqlBytes, maxFileBytes } = config.limits;
  if (maxSqlBytes !== null && sqlBytes > maxSqlBytes) {
    throw new QueryBatchError('SQL_TOO_LARGE', `Expected SQL of at most ${maxSqlBytes} bytes (limits.maxSqlBytes); got ${sqlBytes} bytes`);
  }
  if (maxSqlBytes === null && sqlBytes > maxFileBytes) {
    throw new QueryBatchError('SQL_TOO_LARGE', `Expected SQL of at most ${maxFileBytes} bytes (limits.maxFileBytes: its spool file must fit; limits.maxSqlBytes is not set); got ${sqlBytes} bytes`);
  }
  const wire = encodeParams(params);
  const paramsJson = JSON.stringify(wire);
  const paramBytes = Buffer.byteLength(paramsJson, 'utf8');
  if (paramBytes > config.limits.maxParamsBytes) {
    throw new QueryBatchError('PARAMS_TOO_LARGE', `Expected params of at most ${config.limits.maxParamsBytes} bytes encoded (limits.maxParamsBytes); got ${paramBytes} bytes`);
  }
  if (options.priority !== undefined && options.priority !== 'normal' && options.priority !== 'immediate') {
    throw new QueryBatchError('CONFIG_INVALID', `Expected priority to be "normal" or "immediate"; got ${JSON.stringify(options.priority)}`);
  }
  if (options.captureResult !== undefined && typeof options.captureResult !== 'boolean') {
    throw new QueryBatchError('CONFIG_INVALID', `Expected captureResult to be true or false; got ${describeValue(options.captureResult)}`);
  }
  if (options.timeoutMs !== undefined && (!Number.isSafeInteger(options.timeoutMs) || options.timeoutMs <= 0)) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected timeoutMs to be a whole number > 0; got ${typeof options.timeoutMs === 'number' ? String(options.timeoutMs) : describeValue(options.timeoutMs)}`);
  }
  const webhook = options.webhook === undefined ? undefined : checkWebhookUrl(options.webhook, 'webhook');
  const key: unknown = options.key;
  if (key !== undefined && !isKey(key)) {
    throw new QueryBatchError('CONFIG_INVALID', `Expected key to be a string of 1 to ${MAX_KEY_LENGTH} characters (well-formed UTF-16); got ${typeof key === 'string' ? `a string of ${key.length}` : describeValue(key)}`);
  }
  const runAt = runAtOf(options, now);
  if (runAt !== undefined && options.priority === 'immediate') {
    throw new QueryBatchError('CONFIG_INVALID', 'Expected either priority "immediate" or runAt/delayMs; got both (an immediate job runs at the next run)');
  }
  const record: SpoolRecord = {
    format: FORMAT,
    id,
    datasource,
    sql,
    params: wire,
    createdAt: now.toISOString(),
    attempts: 0,
    ...(options.priority !== undefined && { priority: options.priority }),
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    ...(webhook !== undefined && { webhook }),
    ...(options.captureResult === true && { captureResult: true as const }),
    ...(options.key !== undefined && { key: options.key }),
    ...(runAt !== undefined && { runAt }),
  };
  return { record, paramsJson };
}

/** The ISO time `runAt` or `delayMs` asks for, or undefined for neither. Throws CONFIG_INVALID. Pure. */
function runAtOf(options: SpoolOptions, now: Date): string | undefined {
  const { runAt, delayMs } = options;
  if (runAt !== undefined && delayMs !== undefined) throw new QueryBatchError('CONFIG_INVALID', `Expected runAt or delayMs, not both; got runAt ${describeValue(runAt)} and delayMs ${String(delayMs)}`);
  if (runAt !== undefined) {
    if (!(runAt instanceof Date) || Number.isNaN(runAt.getTime())) throw new QueryBatchError('CONFIG_INVALID', `Expected runAt to be a valid Date; got ${describeValue(runAt)}`);
    return runAt.toISOString();
  }
  if (delayMs !== undefined) {
    if (typeof delayMs !== 'number' || !Number.isSafeInteger(delayMs) || delayMs < 0 || now.getTime() + delayMs > MAX_TIME_MS) {
      throw new QueryBatchError('CONFIG_INVALID', `Expected delayMs to be a whole number of milliseconds >= 0; got ${typeof delayMs === 'number' ? String(delayMs) : describeValue(delayMs)}`);
    }
    return new Date(now.getTime() + delayMs).toISOString();
  }
  return undefined;
}

/** The largest time a Date holds (year 275760). */
const MAX_TIME_MS = 8.64e15;

/**
 * A record's file, encoded once (the size check and the write use the same bytes); over
 * limits.maxFileBytes, SQL_TOO_LARGE or PARAMS_TOO_LARGE, for whichever takes more of it. Pure.
 */
export function encodeWithinLimit(config: ResolvedConfig, record: SpoolRecord, paramsJson?: string): Buffer {
  const bytes = Buffer.from(encodeRecord(record, paramsJson), 'utf8');
  const max = config.limits.maxFileBytes;
  if (bytes.length <= max) return bytes;
  const paramBytes = Buffer.byteLength(paramsJson ?? JSON.stringify(record.params), 'utf8');
  const code = paramBytes > Buffer.byteLength(record.sql, 'utf8') ? 'PARAMS_TOO_LARGE' : 'SQL_TOO_LARGE';
  throw new QueryBatchError(code, `Expected a spool file of at most ${max} bytes (limits.maxFileBytes); this job would take ${bytes.length}`);
}

/** Whether a file starts with a UTF-8 byte order mark (an editor's; not part of the script). */
export async function startsWithBom(path: string): Promise<boolean> {
  const handle = await fs.promises.open(path, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(3), 0, 3, 0);
    return bytesRead === 3 && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf;
  } finally {
    await handle.close();
  }
}

/**
 * A script's record (its header): checked like a statement's, without SQL or params (its
 * statements are the file's body). Throws EMPTY_SQL for a script without a statement,
 * SQL_TOO_LARGE over limits.maxScriptBytes, CONFIG_INVALID for captureResult. Pure.
 */
export function buildScriptRecord(config: ResolvedConfig, script: ScriptMeta, options: SpoolOptions, id: string, now: Date): SpoolRecord {
  if (script.statements === 0) throw new QueryBatchError('EMPTY_SQL', `Expected a script with at least one statement; found ${script.bytes} bytes of white space and comments only`);
  if (script.bytes > config.limits.maxScriptBytes) {
    throw new QueryBatchError('SQL_TOO_LARGE', `Expected a script of at most ${config.limits.maxScriptBytes} bytes (limits.maxScriptBytes); got ${script.bytes} bytes`);
  }
  if (options.captureResult === true) throw new QueryBatchError('CONFIG_INVALID', 'Expected captureResult only for a single statement; got it for a script (its statements\' results are not kept)');
  // The checks a statement's options get; the statement stands in for the script's text.
  const { record } = prepareRecord(config, 'script', [], { ...options, captureResult: false }, id, now);
  return { ...record, sql: '', script };
}

/** Tries to rename a job into a shard directory that runners keep removing (#renameIntoShard). */
const RENAME_ATTEMPTS = 50;
/** After this many lost races, the mkdir and rename are made synchronously (#renameIntoShard). */
const SYNC_AFTER_ATTEMPTS = 3;

/** A job waiting for its datasource's segment writer. */
interface Waiting {
  readonly id: string;
  readonly bytes: Buffer;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Writes jobs into the spool: temp file (O_EXCL, 0600) → write → fsync → rename into its
 * shard → fsync the shard directory, shared with concurrent writers (group commit).
 * A failure leaves no visible file and rejects with SPOOL_WRITE_FAILED.
 *
 * Segments: a job the ledger will run exactly once (docs/spool-format.md) goes to its
 * datasource's writer. An idle writer writes it at once, alone; the jobs that arrive while
 * it is busy wait and then share one file, `<first id>.<n>.batchsql`, so concurrent
 * producers pay one create, fsync and rename per group instead of per job.
 */
export class SpoolWriter {
  readonly #layout: Layout;
  readonly #config: ResolvedConfig;
  readonly #syncer: DirSyncer | null;
  /** Shard directories known to exist; bounded, forgotten wholesale when large. */
  readonly #knownDirs = new Set<string>();
  /** Per datasource: the jobs waiting while its segment writer is busy (present only while it is). */
  readonly #waiting = new Map<string, Waiting[]>();
  /** Per datasource: its driver's dialect (pure: asking it connects nothing). */
  readonly #dialects = new Map<string, Dialect>();
  /** Whether the job a key's marker names still holds the key (spool/keys.ts); by default, always. */
  readonly #keyHolds: KeyHolder;
  /** Per datasource: the leaf generations other producers reached (spool/generations.ts). */
  readonly #floors = new Map<string, GenerationFloor>();

  constructor(layout: Layout, config: ResolvedConfig, syncer: DirSyncer, keyHolds: KeyHolder = () => Promise.resolve(true)) {
    this.#layout = layout;
    this.#config = config;
    this.#syncer = config.durability === 'fsync' ? syncer : null;
    this.#keyHolds = keyHolds;
  }

  /**
   * Validates and writes one job; resolves with its id once it is durable. With a key that
   * a job holds, writes nothing and resolves with that job's id.
   */
  async spool(sql: unknown, params: unknown, options: SpoolOptions = {}): Promise<string> {
    const { record, paramsJson } = prepareRecord(this.#config, sql, params, options, this.#newId(options.datasource), new Date());
    const bytes = encodeWithinLimit(this.#config, record, paramsJson);
    if (record.key !== undefined || record.runAt !== undefined) {
      const standing = await this.#placeOwn(record, (tmp) => writeTemp(tmp, bytes, this.#syncer !== null));
      if (standing !== record.id) return standing;
    } else if (await this.#segmentable(record)) {
      await this.#enqueue(record.datasource, record.id, bytes);
      return record.id;
    } else {
      await this.write(record.datasource, record.id, bytes);
    }
    if (record.priority === 'immediate') {
      try {
        await this.markImmediate(record.datasource, record.id);
      } catch (error) {
        // Take the job back so that nothing was spooled; if a runner has it already, it is
        // running (without its priority, which no longer matters) and the id stands.
        const taken = await fs.promises.unlink(spoolPathFor(this.#layout.spoolDir, record.datasource, record.id)).then(() => true, (e: NodeJS.ErrnoException) => e.code !== 'ENOENT');
        if (taken) throw error;
      }
    }
    return record.id;
  }

  /**
   * A new id for a job of `datasource` (the default one when undefined): in the leaf
   * generation this process is at, or the one other producers reached in that datasource's
   * tree (spool/id.ts, spool/generations.ts). An unknown datasource gets a plain id (the
   * record's checks refuse it).
   */
  #newId(datasource: unknown): string {
    const name = datasource ?? this.#config.defaultDatasource;
    if (typeof name !== 'string' || !Object.hasOwn(this.#config.datasources, name)) return newId();
    let floor = this.#floors.get(name);
    if (floor === undefined) {
      floor = generationFloor(join(this.#layout.spoolDir, name));
      this.#floors.set(name, floor);
    }
    return newId(Date.now(), floor);
  }

  /**
   * Whether a job may share a segment: its datasource has the ledger (which settles a
   * segment's jobs one by one after a crash), the statement runs in the ledger transaction,
   * and the job needs no file of its own (an immediate marker names its file; a captured
   * result runs outside the ledger).
   */
  async #segmentable(record: SpoolRecord): Promise<boolean> {
    return this.#config.datasources[record.datasource]?.ledger != null && record.priority !== 'immediate' && runsOnceWithLedger(await this.#dialectOf(record.datasource), record);
  }

  /** The dialect of a configured datasource, looked up (its module loaded: db/registry.ts) once. */
  async #dialectOf(datasource: string): Promise<Dialect> {
    let dialect = this.#dialects.get(datasource);
    if (dialect === undefined) {
      dialect = (await loadDriverFactory(this.#config.datasources[datasource]!.url, datasource)).dialect;
      this.#dialects.set(datasource, dialect);
    }
    return dialect;
  }

  /** Queues a job for its datasource's segment writer; resolves once it is durable. */
  #enqueue(datasource: string, id: string, bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiting = this.#waiting.get(datasource);
      if (waiting !== undefined) {
        waiting.push({ id, bytes, resolve, reject });
        return;
      }
      const queue: Waiting[] = [{ id, bytes, resolve, reject }];
      this.#waiting.set(datasource, queue);
      void this.#drainQueue(datasource, queue);
    });
  }

  /** Writes what waits for a datasource, a group at a time, until nothing does. */
  async #drainQueue(datasource: string, queue: Waiting[]): Promise<void> {
    while (queue.length > 0) {
      const group = this.#takeGroup(queue);
      try {
        if (group.length === 1) await this.write(datasource, group[0]!.id, group[0]!.bytes);
        else await this.write(datasource, group[0]!.id, Buffer.concat(group.map((w) => w.bytes)), group.length);
        for (const w of group) w.resolve();
      } catch (error) {
        for (const w of group) w.reject(error);
      }
    }
    this.#waiting.delete(datasource);
  }

  /** The oldest waiting jobs that fit one segment: one leaf, at most MAX_SEGMENT_JOBS, at most limits.maxFileBytes. */
  #takeGroup(queue: Waiting[]): Waiting[] {
    const first = queue[0]!;
    let bytes = first.bytes.length;
    let n = 1;
    for (; n < queue.length && n < MAX_SEGMENT_JOBS; n++) {
      const next = queue[n]!;
      bytes += next.bytes.length;
      if (bytes > this.#config.limits.maxFileBytes || !sameLeaf(next.id, first.id)) break;
    }
    return queue.splice(0, n);
  }

  /** Marks a job to run before the others of its datasource (spool/priority.ts); after the job itself is written. */
  async markImmediate(datasource: string, id: string): Promise<void> {
    try {
      await markImmediate(this.#layout, datasource, id, this.#syncer);
    } catch (error) {
      throw new QueryBatchError('SPOOL_WRITE_FAILED', `Could not mark job ${id} immediate in ${this.#layout.immediateDir}: ${withCode(error)}; nothing was spooled`, { cause: error });
    }
  }

  /**
   * Checks and writes a script (its text, or a file's, read twice as a stream: once to hash
   * and count its statements, once to copy it); resolves with its id once it is durable.
   */
  async spoolScript(source: ScriptBody, options: SpoolOptions = {}, id = this.#newId(options.datasource), now = new Date()): Promise<string> {
    const record = await this.scriptRecordOf(source, options, id, now);
    const standing = await this.writeScript(record, source);
    if (standing !== record.id) return standing;
    if (record.priority === 'immediate') await this.markImmediate(record.datasource, record.id);
    return record.id;
  }

  /** A script's record: its text measured (size, hash, statements) and checked. Throws like spoolScript(). */
  async scriptRecordOf(source: ScriptBody, options: SpoolOptions, id: string, now: Date): Promise<SpoolRecord> {
    const datasource = options.datasource ?? this.#config.defaultDatasource;
    if (typeof datasource !== 'string' || !Object.hasOwn(this.#config.datasources, datasource)) {
      throw new QueryBatchError('UNKNOWN_DATASOURCE', `Expected a configured datasource (${Object.keys(this.#config.datasources).join(', ') || 'none are configured'}); got ${JSON.stringify(datasource)}`);
    }
    const splitter = (await this.#dialectOf(datasource)).scriptSplitter();
    let meta: ScriptMeta;
    if ('text' in source) {
      if (typeof source.text !== 'string') throw new QueryBatchError('EMPTY_SQL', `Expected a script as a string; got ${describeValue(source.text)}`);
      meta = measureScriptText(source.text, splitter);
    } else {
      if (source.bytes > this.#config.limits.maxScriptBytes) {
        throw new QueryBatchError('SQL_TOO_LARGE', `Expected a script of at most ${this.#config.limits.maxScriptBytes} bytes (limits.maxScriptBytes); got ${source.bytes} bytes`);
      }
      meta = await measureScript(source.path, source.start, source.bytes, splitter);
    }
    return buildScriptRecord(this.#config, meta, options, id, now);
  }

  /** spoolScript() of a file: a regular file, read as a stream. Throws SQL_TOO_LARGE, EMPTY_SQL, SPOOL_READ_FAILED (it can't be read). */
  async spoolScriptFile(path: string, options: SpoolOptions = {}): Promise<string> {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(path);
    } catch (error) {
      throw new QueryBatchError('SPOOL_READ_FAILED', `Could not read the script ${path}: ${withCode(error)}`, { cause: error });
    }
    if (!stat.isFile()) throw new QueryBatchError('SPOOL_READ_FAILED', `Expected the script ${path} to be a regular file; found ${stat.isDirectory() ? 'a directory' : 'something else'}`);
    const bom = await startsWithBom(path);
    return this.spoolScript({ path, start: bom ? 3 : 0, bytes: stat.size - (bom ? 3 : 0) }, options);
  }

  /** spoolScript() of a stream (standard input): copied to a temp file first, so that it can be read twice. */
  async spoolScriptStream(stream: NodeJS.ReadableStream, options: SpoolOptions = {}): Promise<string> {
    const tmp = tempPathFor(this.#layout.tmpDir, 'script-input');
    try {
      await pipeline(stream, fs.createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      return await this.spoolScriptFile(tmp, options);
    } finally {
      await fs.promises.unlink(tmp).catch(() => {});
    }
  }

  /**
   * Writes a script's file (header, progress at 0, the body from `source`) into its shard
   * (or spool/.delayed/ when not due). Resolves with the id that stands: the record's, or
   * the id of the job that holds its key (then nothing was written).
   */
  async writeScript(record: SpoolRecord, source: ScriptBody): Promise<string> {
    const fill = (tmp: string) => writeScriptTemp(tmp, record, 0, source, this.#syncer !== null);
    if (record.key !== undefined || record.runAt !== undefined) return this.#placeOwn(record, fill);
    await this.#place(record.datasource, record.id, 1, fill);
    return record.id;
  }

  /**
   * A job with a key or a due time, in a file of its own: filled in a temp file; its key
   * taken (spool/keys.ts) just before the rename, or the holder's id returned and nothing
   * written; renamed into its shard, or into spool/.delayed/ when it is not due yet
   * (spool/delayed.ts). Resolves with the id that stands.
   */
  async #placeOwn(record: SpoolRecord, fill: (tmp: string) => Promise<void>): Promise<string> {
    const { datasource, id } = record;
    const dueMs = record.runAt === undefined ? null : Date.parse(record.runAt);
    const delayed = dueMs !== null && dueMs > Date.now();
    const target = delayed ? delayedPathFor(this.#layout, datasource, id, dueMs) : spoolPathFor(this.#layout.spoolDir, datasource, id);
    let holder: string | null = null;
    let marker: string | null = null;
    await this.#place(datasource, id, 1, fill, target, async () => {
      if (record.key === undefined) return true;
      const reservation = await reserveKey(this.#layout, datasource, record.key, id, this.#keyHolds, this.#syncer);
      if (!reservation.reserved) {
        holder = reservation.id;
        return false;
      }
      marker = reservation.path;
      return true;
    }, async () => {
      if (marker !== null) await releaseKey(marker, id);
    });
    if (holder !== null) return holder;
    if (delayed) await touchWake(this.#layout, dueMs);
    return id;
  }

  /** Writes an already-encoded job (or `count` of them, a segment) into its shard. */
  async write(datasource: string, id: string, text: string | Buffer, count = 1): Promise<void> {
    await this.#place(datasource, id, count, (tmp) => writeTemp(tmp, text, this.#syncer !== null));
  }

  /**
   * Makes a job file in a temp file (`fill`), then renames it into its shard (or `target`),
   * durably. `before` runs between the two; when it says false, the temp file is removed
   * and nothing is written. `undo` runs when the write fails after `before`.
   */
  async #place(datasource: string, id: string, count: number, fill: (tmp: string) => Promise<void>, target = spoolPathFor(this.#layout.spoolDir, datasource, id, count),
    before: () => Promise<boolean> = () => Promise.resolve(true), undo: () => Promise<void> = () => Promise.resolve()): Promise<void> {
    const tmp = tempPathFor(this.#layout.tmpDir, id + SPOOL_EXTENSION);
    let renamed = false;
    let reserved = false;
    try {
      await fill(tmp);
      if (!(await before())) {
        await fs.promises.unlink(tmp).catch(() => {});
        return;
      }
      reserved = true;
      await this.#renameIntoShard(tmp, target);
      renamed = true;
      if (this.#syncer) await this.#syncer.sync(dirname(target));
    } catch (error) {
      await fs.promises.unlink(renamed ? target : tmp).catch(() => {});
      if (reserved) await undo().catch(() => {});
      // The key's holder could not be told (spool/keys.ts KeyHolder): not a write failure.
      if (isQueryBatchError(error, 'KEY_UNVERIFIED')) throw error;
      throw new QueryBatchError(
        'SPOOL_WRITE_FAILED',
        `Could not write ${count === 1 ? `job ${id}` : `${count} jobs (a segment from ${id})`} into ${this.#layout.spoolDir}: ${withCode(error)}; nothing was spooled`,
        { cause: error },
      );
    }
  }

  /**
   * Renames a temp file into its shard, making the shard directory when it is missing. A
   * runner removes drained shard directories, and a continuous daemon (schedule.continuous)
   * drains the current leaf many times a second: so the directory is made and the file renamed
   * into it straight away, the directories' fsyncs after (before spool() resolves), and a
   * directory removed in between is made again (each try is a fresh race the writer wins
   * almost always; the bound only keeps a broken directory from looping for ever).
   */
  async #renameIntoShard(tmp: string, target: string): Promise<void> {
    const dir = dirname(target);
    for (let attempt = 0; ; attempt++) {
      let created: string | undefined;
      try {
        if (attempt < SYNC_AFTER_ATTEMPTS) {
          if (!this.#knownDirs.has(dir)) created = await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
          await fs.promises.rename(tmp, target);
        } else {
          // Lost a few times in a row: a runner in this very process (a continuous daemon
          // beside its producers) removes the empty leaf on the main thread between the
          // thread pool's mkdir and rename. Both calls synchronously leave it no turn between.
          created = fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
          fs.renameSync(tmp, target);
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= RENAME_ATTEMPTS - 1) throw error;
        this.#knownDirs.delete(dir);
        continue;
      }
      if (created !== undefined && this.#syncer) await syncCreatedDirs(dir, created, this.#syncer);
      if (this.#knownDirs.size >= 256) this.#knownDirs.clear();
      this.#knownDirs.add(dir);
      return;
    }
  }
}
