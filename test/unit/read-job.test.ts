import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJobText } from '../../src/spool/read-job.js';
import { isQueryBatchError } from '../../src/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qb-read-job-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readJobText reads a file in one read', () => {
  it.each([0, 1, 100, 4096, 70_000])('of %i bytes, exactly', async (size) => {
    const path = join(dir, `f${size}`);
    const text = 'é'.repeat(Math.floor(size / 2)) + 'x'.repeat(size % 2);
    await writeFile(path, text);
    expect(await readJobText(path, 1 << 20)).toBe(text);
  });

  it('and refuses one larger than maxBytes', async () => {
    const path = join(dir, 'big');
    await writeFile(path, 'x'.repeat(5000));
    const error = await readJobText(path, 4096).catch((e: unknown) => e);
    expect(isQueryBatchError(error, 'INVALID_SPOOL_FILE')).toBe(true);
  });

  it('and takes one of exactly maxBytes', async () => {
    const path = join(dir, 'edge');
    await writeFile(path, 'y'.repeat(4096));
    expect(await readJobText(path, 4096)).toHaveLength(4096);
  });
});
