import fs from 'fs-extra';
import { QueryBatchError } from './errors.js';

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
 * Reads a job file safely: never follows a symlink (O_NOFOLLOW), never blocks on a FIFO
 * (O_NONBLOCK), checks on the open handle that it is a regular file with one link and at
 * most `maxBytes`, and that it is UTF-8. Throws INVALID_SPOOL_FILE saying what it found.
 */
export async function readJobText(path: string, maxBytes: number): Promise<string> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new QueryBatchError('INVALID_SPOOL_FILE', 'Expected a regular file; found a symbolic link (never followed)');
    throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected a readable file; found ${code ?? String(error)}`, { cause: error });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected a regular file; found ${kindOf(stat)}`);
    if (stat.nlink > 1) throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected a file with one link; found ${stat.nlink} hard links (copy the file instead of linking it)`);
    if (stat.size > maxBytes) throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected at most ${maxBytes} bytes (limits.maxFileBytes); found ${stat.size} bytes`);
    const bytes = await handle.readFile();
    if (bytes.length > maxBytes) throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected at most ${maxBytes} bytes (limits.maxFileBytes); found ${bytes.length} bytes`);
    try {
      return decoder.decode(bytes);
    } catch {
      throw new QueryBatchError('INVALID_SPOOL_FILE', 'Expected UTF-8 text; found bytes that are not valid UTF-8');
    }
  } finally {
    await handle.close();
  }
}

/** The kind of a directory entry, for messages. */
export { kindOf };
