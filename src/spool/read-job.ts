import fs from 'node:fs';
import { QueryBatchError } from '../errors.js';
import { looksLikeScript, parseScriptHead, type ScriptFile } from './script-file.js';
import { decodeJobText, type SpoolRecord } from './record.js';

function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Job files up to this size are read with synchronous calls: four trips through libuv's
 * thread pool (open, fstat, read, close) cost far more than blocking the event loop for the
 * tens of microseconds the calls take (docs/decisions.md). A larger file (rare: params of
 * megabytes) is read asynchronously.
 */
export const SYNC_READ_BYTES = 64 * 1024;

const readAsync = (fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> =>
  new Promise((resolve, reject) => fs.read(fd, buffer, offset, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))));

/**
 * Reads a regular file whose size `stat` gave: one read of size + 1 bytes, which comes back
 * short at the end of the file (a second fstat and read to find the end are not needed). A
 * file that grew meanwhile is read on, up to maxBytes + 1 bytes.
 */
async function readUpTo(fd: number, size: number, maxBytes: number): Promise<Buffer> {
  const sync = size <= SYNC_READ_BYTES;
  let buffer = Buffer.allocUnsafe(Math.min(size, maxBytes) + 1);
  let length = 0;
  for (;;) {
    const bytesRead = sync ? fs.readSync(fd, buffer, length, buffer.length - length, length) : await readAsync(fd, buffer, length, buffer.length - length, length);
    length += bytesRead;
    if (bytesRead === 0 || length < buffer.length) return buffer.subarray(0, length);
    if (length > maxBytes) return buffer.subarray(0, length);
    const grown = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
    buffer.copy(grown, 0, 0, length);
    buffer = grown;
  }
}

/** How many bytes of a file are read to find a script's header and progress line. */
const SCRIPT_HEAD_BYTES = 256 * 1024;

/** What a job file holds: a job's (or a segment's) text, or a script's header and progress (its body stays on disk). */
export type JobFile = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'script'; readonly file: ScriptFile };

/** The limits a job file is read under. */
export interface ReadLimits {
  readonly maxFileBytes: number;
  readonly maxScriptBytes: number;
}

/**
 * Reads a job file safely: never follows a symlink (O_NOFOLLOW), never blocks on a FIFO
 * (O_NONBLOCK), checks on the open descriptor that it is a regular file with one link and at
 * most `maxFileBytes` (a script: its header, and at most `maxScriptBytes` of body), and that
 * it is UTF-8. Throws INVALID_SPOOL_FILE saying what it found.
 */
export async function readJobFile(path: string, limits: ReadLimits): Promise<JobFile> {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new QueryBatchError('INVALID_SPOOL_FILE', 'Expected a regular file; found a symbolic link (never followed)');
    throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected a readable file; found ${code ?? String(error)}`, { cause: error });
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected a regular file; found ${kindOf(stat)}`);
    if (stat.nlink > 1) throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected a file with one link; found ${stat.nlink} hard links (copy the file instead of linking it)`);
    if (stat.size > limits.maxFileBytes) {
      const head = Buffer.alloc(Math.min(stat.size, SCRIPT_HEAD_BYTES));
      const n = fs.readSync(fd, head, 0, head.length, 0);
      if (!looksLikeScript(head.subarray(0, n))) throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected at most ${limits.maxFileBytes} bytes (limits.maxFileBytes); found ${stat.size} bytes`);
      const file = parseScriptHead(head.subarray(0, n), stat.size);
      if (file.record.script.bytes > limits.maxScriptBytes) {
        throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected a script of at most ${limits.maxScriptBytes} bytes (limits.maxScriptBytes); found ${file.record.script.bytes} bytes`);
      }
      return { kind: 'script', file };
    }
    const bytes = await readUpTo(fd, stat.size, limits.maxFileBytes);
    if (bytes.length > limits.maxFileBytes) throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected at most ${limits.maxFileBytes} bytes (limits.maxFileBytes); found more than ${limits.maxFileBytes} bytes`);
    if (looksLikeScript(bytes)) return { kind: 'script', file: parseScriptHead(bytes, bytes.length) };
    try {
      return { kind: 'text', text: decoder.decode(bytes) };
    } catch {
      throw new QueryBatchError('INVALID_SPOOL_FILE', 'Expected UTF-8 text; found bytes that are not valid UTF-8 (an SQL dump with binary columns: make it with --hex-blob)');
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The records of a job file: one job's, a segment's, or a script's header (`script`: its parts). Throws INVALID_SPOOL_FILE. */
export async function readJobRecords(path: string, limits: ReadLimits): Promise<{ records: SpoolRecord[]; script: ScriptFile | null }> {
  const read = await readJobFile(path, limits);
  return read.kind === 'script' ? { records: [read.file.record], script: read.file } : { records: decodeJobText(read.text), script: null };
}

/** readJobFile() of a file that must hold a job's text (a script is refused). */
export async function readJobText(path: string, maxBytes: number): Promise<string> {
  const read = await readJobFile(path, { maxFileBytes: maxBytes, maxScriptBytes: 0 });
  if (read.kind === 'text') return read.text;
  throw new QueryBatchError('INVALID_SPOOL_FILE', 'Expected a job file; found a script (read it with readJobFile)');
}

/** The kind of a directory entry, for messages. */
export { kindOf };
