// A prototype, not querybatch code: how fast could spool() be if the concurrent calls of a
// datasource shared one file (a segment)? 32 producers, N jobs; the segment writer takes
// every call waiting when it is free and writes them as one file: temp (O_EXCL) → write →
// fsync → rename → one directory fsync (no fsyncs with `none`). Measured beside qb.spool()
// with the same producers, in the same process run.
// Written before spool() had segments (docs/benchmarks.md quotes what it measured then);
// since 4280779 qb.spool() writes segments itself, so both sides now measure the same idea.
// Usage: npm run build && node bench/segment-prototype.mjs [N=10000] [dir=$TMPDIR]
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueryBatch } from '../dist/index.js';

const N = Number(process.argv[2] ?? 10000);
const PRODUCERS = 32;
const base = fs.mkdtempSync(join(process.argv[3] ?? tmpdir(), 'qb-segment-prototype-'));

class SegmentWriter {
  #queue = [];
  #busy = false;
  #n = 0;
  files = 0;
  constructor(dir, sync) {
    this.dir = dir;
    this.sync = sync;
    fs.mkdirSync(join(dir, 'tmp'), { recursive: true });
    fs.mkdirSync(join(dir, 'seg'));
  }
  spool(sql, params) {
    return new Promise((resolve, reject) => {
      this.#queue.push({ job: { id: String(this.#n++).padStart(10, '0'), sql, params }, resolve, reject });
      if (!this.#busy) void this.#write();
    });
  }
  async #write() {
    this.#busy = true;
    while (this.#queue.length > 0) {
      const group = this.#queue.splice(0, this.#queue.length);
      const name = group[0].job.id;
      try {
        const handle = await fs.promises.open(join(this.dir, 'tmp', name), 'wx', 0o600);
        await handle.writeFile(group.map((g) => JSON.stringify(g.job)).join('\n') + '\n');
        if (this.sync) await handle.sync();
        await handle.close();
        await fs.promises.rename(join(this.dir, 'tmp', name), join(this.dir, 'seg', name + '.seg'));
        if (this.sync) {
          const d = await fs.promises.open(join(this.dir, 'seg'), 'r');
          await d.sync();
          await d.close();
        }
        this.files++;
        for (const g of group) g.resolve(g.job.id);
      } catch (error) {
        for (const g of group) g.reject(error);
      }
    }
    this.#busy = false;
  }
}

async function rate(spool) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: PRODUCERS }, async () => {
    while (next < N) {
      const k = next++;
      await spool('INSERT INTO t (a, b) VALUES (?, ?)', [k, 'value ' + k]);
    }
  }));
  return N / ((performance.now() - t0) / 1000);
}

try {
  for (const sync of [true, false]) {
    const segments = new SegmentWriter(join(base, `segments-${sync}`), sync);
    const segmentRate = await rate((sql, params) => segments.spool(sql, params));
    const home = join(base, `qb-${sync}`);
    fs.mkdirSync(home);
    const qb = new QueryBatch({ home, configFile: false, durability: sync ? 'fsync' : 'none', datasources: { main: 'mysql://root@127.0.0.1:3306/test' } });
    const qbRate = await rate((sql, params) => qb.spool(sql, params));
    await qb.close();
    console.log(`${sync ? 'fsync' : 'none '}: segment prototype ${segmentRate.toFixed(0)}/s (${segments.files} files, ${(N / segments.files).toFixed(1)} jobs each); qb.spool() ${qbRate.toFixed(0)}/s; ${(segmentRate / qbRate).toFixed(1)}x`);
  }
} finally {
  fs.rmSync(base, { recursive: true, force: true });
}
