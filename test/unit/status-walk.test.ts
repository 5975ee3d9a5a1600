import fs from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveConfig } from '../../src/config.js';
import { spoolStatus } from '../../src/ops/status.js';
import { idTime } from '../../src/spool/id.js';
import { layoutOf, type Layout } from '../../src/spool/layout.js';
import { walkSpool } from '../../src/spool/listing.js';

const BUCKET = '01JD00';
const id = (leaf: string, i: number) => `${BUCKET}${leaf}${String(i).padStart(18, '0')}`;
const URL = 'mysql://app:secret@127.0.0.1:3306/test';

let layout: Layout;
const config = () => resolveConfig({ configFile: false, home: layout.home, datasources: { main: URL } });
/** A leaf of generation 0 of second `leaf` (the ids above have a 0 as 11th character). */
const leafDir = (leaf: string, ds = 'main') => join(layout.spoolDir, ds, BUCKET, `${leaf}0`);

/** `n` job files in a leaf of `main` (their content is never read by a walk). */
async function fillLeaf(leaf: string, n: number): Promise<void> {
  await mkdir(leafDir(leaf), { recursive: true });
  for (let i = 0; i < n; i++) await writeFile(join(leafDir(leaf), `${id(leaf, i)}.batchsql`), '{}');
}

/** Makes a directory look untouched for a minute (the leaf index only trusts settled leaves). */
async function settle(dir: string): Promise<void> {
  const past = new Date(Date.now() - 60_000);
  await utimes(dir, past, past);
}

async function put(path: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, 'x');
}

/** Runs `fn` and returns the directories it read with fs.promises.readdir. */
async function dirsRead(fn: () => Promise<unknown>): Promise<string[]> {
  const spy = vi.spyOn(fs.promises, 'readdir');
  try {
    await fn();
    return spy.mock.calls.map((call) => String(call[0]));
  } finally {
    spy.mockRestore();
  }
}

beforeEach(async () => {
  layout = layoutOf(await mkdtemp(join(tmpdir(), 'qb-status-walk-')));
  await mkdir(layout.tmpDir, { recursive: true });
});

afterEach(async () => {
  await rm(layout.home, { recursive: true, force: true });
});

describe('spoolStatus', () => {
  it('does not list a leaf the leaf index trusts, and its counts stay right', async () => {
    await fillLeaf('AB', 100);
    await fillLeaf('AC', 10); // too small for the index: listed every time
    await settle(leafDir('AB'));
    const now = idTime(id('AB', 0)) + 5_000;
    const expected = { count: 110, oldestId: id('AB', 0), oldestAgeMs: 5_000 };

    // The first walk lists every leaf and records AB in spool/.index/main.json.
    const first = await dirsRead(() => spoolStatus(layout, config(), now));
    expect(first).toContain(leafDir('AB'));

    let status: Awaited<ReturnType<typeof spoolStatus>> | undefined;
    const second = await dirsRead(async () => (status = await spoolStatus(layout, config(), now)));
    expect(second).not.toContain(leafDir('AB'));
    expect(second).toContain(leafDir('AC'));
    expect(status).toMatchObject({ pending: { main: expected }, pendingTotal: 110, dropIns: 0 });

    // A drop-in copied into the trusted leaf moves its mtime: the leaf is listed again and the file counted.
    await writeFile(join(leafDir('AB'), 'failed-copy.batchsql'), '{}');
    const third = await dirsRead(async () => (status = await spoolStatus(layout, config(), now)));
    expect(third).toContain(leafDir('AB'));
    expect(status).toMatchObject({ pending: { main: expected }, pendingTotal: 110, dropIns: 1 });
  });

  it('counts drop-ins at every level of the spool, a directory by its files', async () => {
    const { spoolDir } = layout;
    await fillLeaf('AB', 3);
    await writeFile(join(leafDir('AB'), `${id('AB', 10)}.4.batchsql`), '{}'); // a segment of 4 jobs
    await put(join(spoolDir, 'top.sql')); // 1
    await put(join(spoolDir, 'not.a.datasource', 'a.sql')); // 2: a directory that is no datasource's tree
    await put(join(spoolDir, 'not.a.datasource', 'deeper', 'b.batchsql'));
    await put(join(spoolDir, 'main', 'beside-buckets.sql')); // 1: datasource level
    await put(join(spoolDir, 'main', 'incoming', 'c.sql')); // 1: a directory at the datasource level
    await put(join(spoolDir, 'main', BUCKET, 'beside-leaves.sql')); // 1: bucket level
    await put(join(spoolDir, 'main', BUCKET, 'ABCD', 'd.sql')); // 1: a directory at the bucket level
    await put(join(leafDir('AB'), 'failed-x.batchsql')); // 1: leaf level
    await put(join(leafDir('AB'), `${id('ZZ', 1)}.batchsql`)); // 1: another leaf's job
    await put(join(leafDir('AB'), 'sub', 'e.sql')); // 2: a directory in a leaf
    await put(join(leafDir('AB'), 'sub', 'f.sql'));
    await put(join(leafDir('AB'), '.hidden')); // hidden names are never counted
    await mkdir(join(spoolDir, 'main', BUCKET, 'empty'), { recursive: true }); // 0
    await put(join(spoolDir, 'other', BUCKET, 'AB0', `${id('AB', 5)}.batchsql`)); // a tree of a datasource not configured
    await put(join(spoolDir, 'strays-only', 'g.sql')); // 1: a tree with no job is not listed as pending

    const status = await spoolStatus(layout, config(), idTime(id('AB', 0)));
    expect(status.dropIns).toBe(12);
    expect(status.pending).toEqual({
      main: { count: 7, oldestId: id('AB', 0), oldestAgeMs: 0 },
      other: { count: 1, oldestId: id('AB', 5), oldestAgeMs: 0 },
    });
    expect(status.pendingTotal).toBe(8);
  });
});

describe('walkSpool', () => {
  it('gives leaves and strays in name order at every level', async () => {
    const { spoolDir } = layout;
    await fillLeaf('AB', 1);
    await fillLeaf('AD', 2);
    await put(join(spoolDir, 'a.sql'));
    await put(join(spoolDir, 'main', BUCKET, 'AC.sql'));
    await put(join(leafDir('AB'), 'z.sql'));
    await put(join(spoolDir, 'main', '01JD01x'));
    await put(join(spoolDir, 'z.sql'));
    const seen: string[] = [];
    for await (const e of walkSpool(spoolDir)) {
      seen.push(e.kind === 'leaf' ? `leaf ${e.datasource} ${e.leaf.bucket}/${e.leaf.leaf} ${e.count} ${e.oldest}` : `stray ${e.path.slice(spoolDir.length + 1)}`);
    }
    expect(seen).toEqual([
      'stray a.sql',
      `leaf main ${BUCKET}/AB0 1 ${id('AB', 0)}.batchsql`,
      `stray main/${BUCKET}/AB0/z.sql`,
      `stray main/${BUCKET}/AC.sql`,
      `leaf main ${BUCKET}/AD0 2 ${id('AD', 0)}.batchsql`,
      'stray main/01JD01x',
      'stray z.sql',
    ]);
  });
});
