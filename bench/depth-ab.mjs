// Run cost at 1,000 against 100,000 pending for two built trees (e.g. main and a branch),
// samples interleaved so that both see the same machine: each round runs `qb.run({ limit:
// 1000 })` once in each of the four spools (tops each up again after), and reports wall and
// CPU (user + system) time, and the 100,000 / 1,000 ratio of each per round and over the
// rounds' medians. A spool layout is the tree's own, so each tree fills its own.
// Usage: (in each tree: npx tsc -p tsconfig.bench.json)
//   node bench/depth-ab.mjs <tree A> <tree B>     ROUNDS=5 DEPTHS=1000,100000 QB_BENCH_MYSQL=mysql://root@127.0.0.1:3306/qbbench
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';

const URL = process.env.QB_BENCH_MYSQL ?? 'mysql://root@127.0.0.1:3306/qbbench';
const [a, b] = process.argv.slice(2).map((t) => resolve(t));
if (!a || !b) {
  console.error('usage: node bench/depth-ab.mjs <tree A> <tree B>');
  process.exit(2);
}
const trees = { [`A ${basename(a)}`]: a, [`B ${basename(b)}`]: b };
const depths = (process.env.DEPTHS ?? '1000,100000').split(',').map(Number);
const rounds = Number(process.env.ROUNDS ?? 5);
const root = mkdtempSync(join(tmpdir(), 'depth-ab-'));
const child = join(import.meta.dirname, 'depth-ab-child.mjs');
const mods = {};
for (const [name, tree] of Object.entries(trees)) mods[name] = await import(join(tree, 'dist-bench/src/index.js'));

/** Spools n `DO 1` jobs as the depth scenario does: durability none, ledger off (a file each), 64 at once. */
async function fill(name, home, n) {
  const qb = new mods[name].QueryBatch({ home, configFile: false, durability: 'none', datasources: { main: { url: URL, ledger: false } } });
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < n) {
      next++;
      await qb.spool('DO 1');
    }
  }));
  await qb.close();
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const spools = [];
for (const name of Object.keys(trees)) {
  for (const n of depths) {
    const home = join(root, `${spools.length}-${n}`);
    await fill(name, home, n);
    spools.push({ name, n, home, wall: [], cpu: [] });
  }
}
for (let r = 0; r < rounds; r++) {
  for (const s of r % 2 === 0 ? spools : [...spools].reverse()) {
    const out = execFileSync(process.execPath, [child, trees[s.name], s.home, URL, '1000'], { encoding: 'utf8' });
    const report = JSON.parse(out.trim().split('\n').pop());
    if (report.success !== Math.min(1000, s.n)) throw new Error(`${s.name} at ${s.n}: drained ${report.success}`);
    s.wall.push(report.runMs);
    s.cpu.push(report.cpuMs);
    await fill(s.name, s.home, Math.min(1000, s.n));
  }
}
for (const name of Object.keys(trees)) {
  const [lo, hi] = depths.map((n) => spools.find((s) => s.name === name && s.n === n));
  for (const what of ['wall', 'cpu']) {
    const ratios = lo[what].map((x, r) => hi[what][r] / x);
    console.log(`${name} ${what} ms: ${depths[0]} pending ${lo[what].map(Math.round).join('/')}, ${depths[1]} pending ${hi[what].map(Math.round).join('/')}; ` +
      `per-round ratios ${ratios.map((x) => x.toFixed(2)).join('/')}, median ${median(ratios).toFixed(2)}x; ratio of medians ${(median(hi[what]) / median(lo[what])).toFixed(2)}x`);
  }
}
rmSync(root, { recursive: true, force: true });
