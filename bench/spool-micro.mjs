// One producer's spool() with fsync against the bare file protocol loop (write a temp file,
// fsync, rename, fsync the directory), in alternating blocks so that each pair of blocks
// sees the same disk: the ratio of each pair, and their median.
// Usage: npm run build && node bench/spool-micro.mjs [jobs per block=500] [pairs=6] [durability=fsync]
import { constants, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { Buffer } from 'node:buffer';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueryBatch } from '../dist/index.js';

const block = Number(process.argv[2] ?? 500);
const pairs = Number(process.argv[3] ?? 6);
const durability = process.argv[4] ?? 'fsync';
const sync = durability === 'fsync';
const root = mkdtempSync(join(process.env.QB_BENCH_DIR ?? tmpdir(), 'spool-micro-'));
const SQL = 'INSERT INTO bench_enqueue (a, b, c) VALUES (?, ?, ?)';
const paramsFor = (i) => [i, `name-${i}`, new Date(1_700_000_000_000 + i).toISOString()];

async function fsyncDir(dir) {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The bare loop: one file at a time, as bench/common.ts BareSpool does with one producer. */
async function bare(dir, from, bytes) {
  const tmp = join(root, 'bare-tmp');
  await mkdir(tmp, { recursive: true });
  await mkdir(dir, { recursive: true });
  const t0 = performance.now();
  for (let i = from; i < from + block; i++) {
    const path = join(tmp, `${i}.tmp`);
    const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.write(bytes);
      if (sync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(path, join(dir, `${String(i).padStart(10, '0')}.batchsql`));
    if (sync) await fsyncDir(dir);
  }
  return performance.now() - t0;
}

async function spool(qb, from) {
  const t0 = performance.now();
  for (let i = from; i < from + block; i++) await qb.spool(SQL, paramsFor(i));
  return performance.now() - t0;
}

const qb = new QueryBatch({ home: join(root, 'home'), configFile: false, durability, datasources: { main: 'mysql://root@127.0.0.1:3306/test' } });
await qb.spool(SQL, paramsFor(-1)); // the home's layout, the driver module: not part of the figure
const bytes = Buffer.from(JSON.stringify({ format: 'querybatch/1', id: '01JZZZZZZZZZZZZZZZZZZZZZZZ', datasource: 'main', sql: SQL, params: paramsFor(0), createdAt: new Date().toISOString(), attempts: 0, checksum: `sha256:${'0'.repeat(64)}` }) + '\n');
const ratios = [];
for (let p = 0; p < pairs; p++) {
  // Alternate which goes first.
  const [a, b] = p % 2 === 0
    ? [await bare(join(root, 'bare'), p * block, bytes), await spool(qb, p * block)]
    : [await spool(qb, p * block), await bare(join(root, 'bare'), p * block, bytes)].reverse();
  const ratio = a / b; // spool()'s rate / the bare loop's
  ratios.push(ratio);
  console.log(`pair ${p + 1}: bare ${Math.round((block * 1000) / a)}/s, spool() ${Math.round((block * 1000) / b)}/s, ratio ${ratio.toFixed(2)}x`);
}
await qb.close();
rmSync(root, { recursive: true, force: true });
ratios.sort((x, y) => x - y);
console.log(`median of ${pairs} pairs (${block} jobs each, durability ${durability}): spool() ${ratios[Math.floor(pairs / 2)].toFixed(2)}x the bare loop`);
