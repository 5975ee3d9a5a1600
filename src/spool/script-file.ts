import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs';
import type { ScriptSplitter, ScriptStatement } from '../db/driver.js';
import { QueryBatchError } from '../errors.js';
import { writeTemp } from './durable.js';
import { decodeRecord, encodeRecord, type ScriptMeta, type SpoolRecord } from './record.js';

/**
 * A script job's file (docs/spool-format.md): three parts, so that a script of hundreds of
 * megabytes is never read whole into memory, and its progress is written in place:
 *
 *   1. the header: the job's record on one line (querybatch/1, with `script` and `sql: ""`);
 *   2. the progress line, of fixed width: `{"done":<n>}`, how many statements have committed,
 *      rewritten in place after each (not covered by the checksum);
 *   3. the body: the script's text, `script.bytes` bytes, hashed in `script.sha256`.
 */

/** Digits the progress line keeps for the count (space-padded: the line's width never changes). */
const PROGRESS_DIGITS = 12;

/** The progress line for `done` statements. */
export function progressLine(done: number): string {
  return `{"done":${String(done).padStart(PROGRESS_DIGITS)}}\n`;
}

export const PROGRESS_BYTES = progressLine(0).length;

/** A script file's parts, as read from its head. */
export interface ScriptFile {
  readonly record: SpoolRecord & { readonly script: ScriptMeta };
  /** Where the progress line starts. */
  readonly progressAt: number;
  /** Where the body starts. */
  readonly bodyAt: number;
  /** Statements committed so far (the progress line). */
  readonly done: number;
}

function invalid(message: string): QueryBatchError {
  return new QueryBatchError('INVALID_SPOOL_FILE', message);
}

/** Whether a file's first bytes start a script's header (a cheap test before parsing). */
export function looksLikeScript(head: Buffer): boolean {
  const end = head.indexOf(0x0a);
  return end > 0 && head.subarray(0, end).includes('"script":{');
}

/**
 * Reads a script file's header and progress from its first bytes (`head`, at least the
 * header and the progress line) and checks them against the file's size. Throws
 * INVALID_SPOOL_FILE.
 */
export function parseScriptHead(head: Buffer, size: number): ScriptFile {
  const end = head.indexOf(0x0a);
  if (end < 0) throw invalid('Expected a script header line (a querybatch/1 record) ending in a newline; found none in the first bytes');
  const record = decodeRecord(head.subarray(0, end).toString('utf8'));
  if (record.script === undefined) throw invalid('Expected a script header (a record with "script"); found a record without it');
  const progressAt = end + 1;
  const line = head.subarray(progressAt, progressAt + PROGRESS_BYTES).toString('latin1');
  const m = /^\{"done": *(\d+)\}\n$/.exec(line);
  if (line.length !== PROGRESS_BYTES || !m) throw invalid(`Expected the script's progress line ({"done":<n>}, ${PROGRESS_BYTES} bytes) after its header; found ${JSON.stringify(line.slice(0, 40))}`);
  const done = Number(m[1]);
  const bodyAt = progressAt + PROGRESS_BYTES;
  if (size !== bodyAt + record.script.bytes) {
    throw invalid(`Expected the script's body to be ${record.script.bytes} bytes (its header says so); found ${size - bodyAt} bytes`);
  }
  if (done > record.script.statements) throw invalid(`Expected at most ${record.script.statements} statements done (the script has that many); the progress line says ${done}`);
  return { record: record as ScriptFile['record'], progressAt, bodyAt, done };
}

/**
 * Rewrites a script file with a new header (`record`: one more attempt, its lastError),
 * keeping its progress and body: a new file (temp, fsync, rename over `path`), the body
 * copied a chunk at a time. A crash leaves the old file or the new one, whole.
 */
export async function rewriteScriptFile(tmpPath: string, path: string, record: SpoolRecord): Promise<ScriptFile> {
  const head = Buffer.alloc(256 * 1024);
  const fd = fs.openSync(path, 'r');
  let file: ScriptFile;
  try {
    const n = fs.readSync(fd, head, 0, head.length, 0);
    file = parseScriptHead(head.subarray(0, n), fs.fstatSync(fd).size);
  } finally {
    fs.closeSync(fd);
  }
  await writeScriptTemp(tmpPath, record, file.done, { path, start: file.bodyAt, bytes: file.record.script.bytes }, true);
  await fs.promises.rename(tmpPath, path);
  const progressAt = Buffer.byteLength(encodeRecord(record));
  return { record: record as ScriptFile['record'], progressAt, bodyAt: progressAt + PROGRESS_BYTES, done: file.done };
}

/** Records that `done` statements have committed, in place (one small write; the file's size does not change). */
export function writeProgress(fd: number, file: Pick<ScriptFile, 'progressAt'>, done: number): void {
  fs.writeSync(fd, progressLine(done), file.progressAt, 'latin1');
}

/** The body's text, decoded as it is read (UTF-8, strictly), a chunk at a time. */
async function* bodyText(path: string, start: number, bytes: number): AsyncGenerator<{ text: string; raw: Buffer }> {
  if (bytes === 0) return;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const stream = createReadStream(path, { start, end: start + bytes - 1, highWaterMark: 1024 * 1024 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        throw invalid('Expected a script of UTF-8 text; found bytes that are not valid UTF-8 (a dump with binary columns: make it with mariadb-dump/mysqldump --hex-blob)');
      }
      yield { text, raw: chunk };
    }
    try {
      decoder.decode();
    } catch {
      throw invalid('Expected a script of UTF-8 text; it ends inside a UTF-8 character');
    }
  } finally {
    stream.destroy();
  }
}

/** What a script's text is: its size, hash and statement count (what its header says). */
export async function measureScript(path: string, start: number, bytes: number, splitter: ScriptSplitter): Promise<ScriptMeta> {
  const hash = createHash('sha256');
  let statements = 0;
  let read = 0;
  for await (const { text, raw } of bodyText(path, start, bytes)) {
    hash.update(raw);
    read += raw.length;
    statements += splitter.push(text).length;
  }
  statements += splitter.end().length;
  return { bytes: read, sha256: 'sha256:' + hash.digest('hex'), statements };
}

/** measureScript() for a script in memory. */
export function measureScriptText(text: string, splitter: ScriptSplitter): ScriptMeta {
  const bytes = Buffer.from(text, 'utf8');
  const statements = splitter.push(text).length + splitter.end().length;
  return { bytes: bytes.length, sha256: 'sha256:' + createHash('sha256').update(bytes).digest('hex'), statements };
}

/**
 * Checks a script file's body against its header before it runs: its hash (read as bytes,
 * not split: the statements are counted as they run). Throws INVALID_SPOOL_FILE.
 */
export async function verifyScript(path: string, file: ScriptFile): Promise<void> {
  const expected = file.record.script;
  const hash = createHash('sha256');
  if (expected.bytes > 0) {
    for await (const chunk of createReadStream(path, { start: file.bodyAt, end: file.bodyAt + expected.bytes - 1, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) hash.update(chunk);
  }
  const found = 'sha256:' + hash.digest('hex');
  if (found !== expected.sha256) {
    throw invalid(`Checksum mismatch: the script's header says ${expected.sha256.slice(0, 20)}…, its body hashes to ${found.slice(0, 20)}… (edited or damaged)`);
  }
}

/** The statements of a script file's body, in order, as they are read. */
export async function* scriptStatements(path: string, file: ScriptFile, splitter: ScriptSplitter): AsyncGenerator<ScriptStatement> {
  for await (const { text } of bodyText(path, file.bodyAt, file.record.script.bytes)) yield* splitter.push(text);
  yield* splitter.end();
}

/** The body of a new script file: text in memory, or `bytes` bytes of a file from `start`. */
export type ScriptBody = { readonly text: string } | { readonly path: string; readonly start: number; readonly bytes: number };

/**
 * Writes a script file to the new temp file `tmpPath`: header, progress line, body (copied
 * from a file a chunk at a time); fsynced when `sync`. Removed again on any failure.
 */
export async function writeScriptTemp(tmpPath: string, record: SpoolRecord, done: number, body: ScriptBody, sync: boolean): Promise<void> {
  const head = encodeRecord(record) + progressLine(done);
  if ('text' in body) {
    await writeTemp(tmpPath, Buffer.concat([Buffer.from(head, 'utf8'), Buffer.from(body.text, 'utf8')]), sync);
    return;
  }
  await writeTemp(tmpPath, async (handle) => {
    await handle.write(head);
    if (body.bytes === 0) return;
    for await (const chunk of createReadStream(body.path, { start: body.start, end: body.start + body.bytes - 1, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
      await handle.write(chunk);
    }
  }, sync);
}
