/**
 * The depth scenario's runner, in a process of its own so its peak RSS is its own:
 *   node dist-bench/bench/depth-runner.js <home> <url> <limit>
 * runs one qb.run({ limit }) and prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { countJobs } from '../src/spool/listing.js';

const [home, url, limitText] = process.argv.slice(2);
if (!home || !url || !limitText) {
  console.error('usage: depth-runner <home> <url> <limit>');
  process.exit(2);
}
const limit = Number(limitText);
const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url } } });
const t0 = performance.now();
const summary = await qb.run({ limit });
const runMs = performance.now() - t0;
await qb.close();
const t1 = performance.now();
const left = await countJobs(join(home, 'spool', 'main'));
const walkMs = performance.now() - t1;
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
console.log(JSON.stringify({
  success: summary.success,
  deferred: summary.deferred,
  runMs,
  walkMs,
  left: left.count,
  peakRssKb: hwm ? Number(hwm[1]) : process.resourceUsage().maxRSS,
}));
