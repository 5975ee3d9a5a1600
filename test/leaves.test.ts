import { afterEach, describe, expect, it, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { LEAF_JOBS, idAt } from '../src/spool/id.js';
import { belongsInLeaf, jobCountOf, shardOf } from '../src/spool/shards.js';
import { filesBelow, removeHome, tempHome, useTestDatabase } from './helpers.js';

// Leaves cut by count (spool/id.ts, spool/shards.ts): a producer moves to the next leaf of a
// second after LEAF_JOBS ids, and never below the leaf other producers reached.

const t = useTestDatabase('leaves2');
const DIST_INDEX = join(import.meta.dirname, '..', 'dist', 'index.js');
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  vi.restoreAllMocks();
  await q?.close();
  q = undefined;
  await removeHome(home);
});

let lastFresh = 0;

/**
 * The start of a second (2^10 ms, a leaf's span) ahead of the clock and of every second an
 * earlier test stopped the clock at, so that no id of this process is in it yet.
 */
function freshSecond(): number {
  lastFresh = Math.max((Math.floor(Date.now() / 1024) + 3) * 1024, lastFresh + 2 * 1024);
  return lastFresh;
}

/** Jobs per leaf (`bucket/leaf`) under spool/main, leaves in name order; every file must belong in the leaf it is in. */
async function leafCounts(): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const path of await filesBelow(join(home, 'spool', 'main'))) {
    const name = basename(path);
    const leaf = basename(dirname(path));
    const bucket = basename(dirname(dirname(path)));
    expect(belongsInLeaf(name, bucket, leaf), path).toBe(true);
    counts.set(`${bucket}/${leaf}`, (counts.get(`${bucket}/${leaf}`) ?? 0) + jobCountOf(name));
  }
  return new Map([...counts].sort(([a], [b]) => (a < b ? -1 : 1)));
}

async function column(sql: string): Promise<number[]> {
  const [rows] = await t.db.query(sql);
  return (rows as Array<{ v: number }>).map((r) => r.v);
}

const BURST = 3 * LEAF_JOBS + 10;

describe('leaves cut by count', () => {
  it(`puts a burst of ${BURST} jobs spooled in one millisecond in 4 leaves of at most ${LEAF_JOBS}, and runs them in FIFO order`, async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE leaves2_burst (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    // The ledger off: one file per job, as many files as jobs in the leaves.
    q = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: { url: t.url, ledger: false } } });
    vi.spyOn(Date, 'now').mockReturnValue(freshSecond());
    for (let k = 0; k < BURST; k++) await q.spool('INSERT INTO leaves2_burst (job) VALUES (?)', [k]);
    vi.restoreAllMocks();
    const counts = await leafCounts();
    expect([...counts.values()]).toEqual([LEAF_JOBS, LEAF_JOBS, LEAF_JOBS, 10]);
    expect(new Set([...counts.keys()].map((key) => key.slice(0, 9))).size).toBe(1); // one second's leaves

    const summary = await q.run();
    expect(summary.success).toBe(BURST);
    expect(await column('SELECT job AS v FROM leaves2_burst ORDER BY n')).toEqual(Array.from({ length: BURST }, (_, k) => k));
    expect(await filesBelow(join(home, 'spool', 'main'))).toEqual([]);
  });

  it('cuts segments (concurrent calls sharing files) where the leaf changes: each file in its leaf, run in FIFO order', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE leaves2_segments (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: t.url } });
    vi.spyOn(Date, 'now').mockReturnValue(freshSecond());
    await Promise.all(Array.from({ length: BURST }, (_, k) => q!.spool('INSERT INTO leaves2_segments (job) VALUES (?)', [k])));
    vi.restoreAllMocks();
    const counts = await leafCounts();
    expect([...counts.values()]).toEqual([LEAF_JOBS, LEAF_JOBS, LEAF_JOBS, 10]);

    expect((await q.run()).success).toBe(BURST);
    expect(await column('SELECT job AS v FROM leaves2_segments ORDER BY n')).toEqual(Array.from({ length: BURST }, (_, k) => k));
  });

  it("never spools below the leaf generation another producer reached in that second (its leaves on disk)", async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: t.url } });
    await q.spool('DO 1'); // the spool's directories
    const second = freshSecond();
    vi.spyOn(Date, 'now').mockReturnValue(second);
    // Another producer is at generation 2 of this second: its leaf exists.
    const [bucket, leaf] = shardOf(idAt(second));
    const leafOfGeneration = (g: string) => join(home, 'spool', 'main', bucket, leaf.slice(0, 2) + g);
    await mkdir(leafOfGeneration('2'), { recursive: true });
    const first = await q.spool('DO 1'); // the first id of the second: the bucket is listed
    expect(first[10]).toBe('2');
    // It cut two more leaves since: the next ids follow.
    await mkdir(leafOfGeneration('3'));
    await mkdir(leafOfGeneration('4'));
    const next = await q.spool('DO 1');
    expect(next[10]).toBe('4');
    expect(first < next).toBe(true);
  });

  it('takes in a spool of the layout before (leaves named by two characters): the next run adopts and runs its jobs in order', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE leaves2_legacy (n INT AUTO_INCREMENT PRIMARY KEY, job INT NOT NULL)');
    // dropInSettleMs 0: the files were just moved (adoption waits for a fresh drop-in to settle).
    q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: { url: t.url, ledger: false } } });
    for (let k = 0; k < 5; k++) await q.spool('INSERT INTO leaves2_legacy (job) VALUES (?)', [k]);
    for (const path of await filesBelow(join(home, 'spool', 'main'))) {
      const legacy = join(dirname(dirname(path)), basename(dirname(path)).slice(0, 2));
      await mkdir(legacy, { recursive: true });
      await rename(path, join(legacy, basename(path)));
    }
    expect((await q.run()).success).toBe(5);
    expect(await column('SELECT job AS v FROM leaves2_legacy ORDER BY n')).toEqual([0, 1, 2, 3, 4]);
  });

  it('two producer processes spooling a burst each in the same millisecond: every job once, each producer in order, leaves cut', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE leaves2_two (n INT AUTO_INCREMENT PRIMARY KEY, p INT NOT NULL, seq INT NOT NULL)');
    const now = freshSecond();
    const perProducer = 2 * LEAF_JOBS + 100;
    await Promise.all([0, 1].map((p) => producer(p, perProducer, now)));
    const counts = await leafCounts();
    let total = 0;
    for (const n of counts.values()) total += n;
    expect(total).toBe(2 * perProducer);
    expect(counts.size).toBeGreaterThanOrEqual(3);
    for (const n of counts.values()) expect(n).toBeLessThanOrEqual(2 * LEAF_JOBS);

    q = new QueryBatch({ home, configFile: false, datasources: { main: { url: t.url, ledger: false } } });
    expect((await q.run()).success).toBe(2 * perProducer);
    for (const p of [0, 1]) {
      expect(await column(`SELECT seq AS v FROM leaves2_two WHERE p = ${p} ORDER BY n`)).toEqual(Array.from({ length: perProducer }, (_, k) => k));
    }
  });
});

/** A producer process: spools `n` jobs one after the other with its clock stopped at `now`. */
function producer(p: number, n: number, now: number): Promise<void> {
  const code = `
    Date.now = () => ${now};
    const { QueryBatch } = await import(${JSON.stringify(DIST_INDEX)});
    const qb = new QueryBatch({ home: ${JSON.stringify(home)}, configFile: false, durability: 'none', datasources: { main: { url: ${JSON.stringify(t.url)}, ledger: false } } });
    for (let seq = 0; seq < ${n}; seq++) await qb.spool('INSERT INTO leaves2_two (p, seq) VALUES (?, ?)', [${p}, seq]);
    await qb.close();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (status) => (status === 0 ? resolve() : reject(new Error(`producer ${p} exited ${status}: ${err}`))));
  });
}
