import { mkdtemp, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeafIndex } from '../../src/spool/leaf-index.js';
import { countJobs, scanLeaf } from '../../src/spool/listing.js';

const BUCKET = '01JD00';
const LEAF = 'AB0';
/** Ids of second AB, generation 0 (their 11th character). */
const name = (i: number) => `${BUCKET}AB${String(i).padStart(18, '0')}.batchsql`;

let spool: string;
let leafPath: string;
const dsDir = () => join(spool, 'main');
const leaf = () => ({ bucket: BUCKET, leaf: LEAF, path: leafPath });

async function fillLeaf(n: number, from = 0): Promise<void> {
  await mkdir(leafPath, { recursive: true });
  for (let i = from; i < from + n; i++) await writeFile(join(leafPath, name(i)), '{}');
}

/** Makes the leaf look untouched for a minute (the index only trusts settled leaves). */
async function settle(): Promise<void> {
  const past = new Date(Date.now() - 60_000);
  await utimes(leafPath, past, past);
}

async function indexFile(): Promise<{ leaves: Record<string, [string, number, string | null]> } | null> {
  try {
    return JSON.parse(await readFile(join(spool, '.index', 'main.json'), 'utf8')) as { leaves: Record<string, [string, number, string | null]> };
  } catch {
    return null;
  }
}

beforeEach(async () => {
  spool = join(await mkdtemp(join(tmpdir(), 'qb-leaf-index-')), 'spool');
  leafPath = join(spool, 'main', BUCKET, LEAF);
  await mkdir(join(spool, '.tmp'), { recursive: true });
});

afterEach(async () => {
  await rm(join(spool, '..'), { recursive: true, force: true });
});

describe('countJobs with the leaf index', () => {
  it('records a settled leaf of 64+ jobs and trusts it while its mtime is unchanged', async () => {
    await fillLeaf(100);
    await settle();
    expect(await countJobs(dsDir())).toEqual({ count: 100, oldest: name(0) });
    const recorded = await indexFile();
    expect(recorded?.leaves[`${BUCKET}/${LEAF}`]?.slice(1)).toEqual([100, name(0)]);
    // Proof that the listing is skipped: a forged count with the same mtime is believed.
    recorded!.leaves[`${BUCKET}/${LEAF}`]![1] = 12345;
    await writeFile(join(spool, '.index', 'main.json'), JSON.stringify(recorded));
    expect((await countJobs(dsDir())).count).toBe(12345);
  });

  it('lists a leaf again once an entry is added or removed (its mtime moves)', async () => {
    await fillLeaf(100);
    await settle();
    expect((await countJobs(dsDir())).count).toBe(100);
    await writeFile(join(leafPath, name(100)), '{}');
    expect((await countJobs(dsDir())).count).toBe(101);
    await rm(join(leafPath, name(0)));
    expect(await countJobs(dsDir())).toEqual({ count: 100, oldest: name(1) });
  });

  it('does not record leaves changed in the last seconds, small leaves, or leaves with strays', async () => {
    await fillLeaf(100);
    await countJobs(dsDir());
    expect((await indexFile())?.leaves ?? {}).toEqual({}); // fresh mtime
    await rm(leafPath, { recursive: true });
    await fillLeaf(10);
    await settle();
    await countJobs(dsDir());
    expect((await indexFile())?.leaves ?? {}).toEqual({}); // too small
    await fillLeaf(100, 10);
    await writeFile(join(leafPath, 'failed-copy.batchsql'), '{}');
    await settle();
    expect((await countJobs(dsDir())).count).toBe(110);
    expect((await indexFile())?.leaves ?? {}).toEqual({}); // has a stray
  });

  it('ignores a damaged index', async () => {
    await fillLeaf(100);
    await settle();
    await mkdir(join(spool, '.index'), { recursive: true });
    await writeFile(join(spool, '.index', 'main.json'), '{"version":1,"leaves":{"01JD00/AB":"garbage"');
    expect((await countJobs(dsDir())).count).toBe(100);
    expect((await indexFile())?.leaves[`${BUCKET}/${LEAF}`]?.[1]).toBe(100);
  });
});

describe('scanLeaf', () => {
  it('finds a stray copied into a recorded leaf', async () => {
    await fillLeaf(100);
    await settle();
    let index = await LeafIndex.load(spool, 'main');
    expect((await scanLeaf(leaf(), index)).strays).toEqual([]);
    await index.save();
    await writeFile(join(leafPath, 'failed-01JD00AB000000000000000000.batchsql'), '{}');
    index = await LeafIndex.load(spool, 'main');
    const scan = await scanLeaf(leaf(), index);
    expect(scan.strays.map((e) => e.name)).toEqual(['failed-01JD00AB000000000000000000.batchsql']);
    expect(scan.count).toBe(100);
  });

  it('counts nothing in a leaf that is gone', async () => {
    expect(await scanLeaf(leaf(), await LeafIndex.load(spool, 'main'))).toEqual({ count: 0, oldest: null, strays: [] });
    expect(await scanLeaf(leaf(), null)).toEqual({ count: 0, oldest: null, strays: [] });
  });
});
