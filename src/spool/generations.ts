import { join } from 'node:path';
import fs from 'node:fs';
import { MAX_GENERATION, generationChar, generationOf, type GenerationFloor } from './id.js';
import { LEAF_PATTERN, leafName } from './shards.js';

/**
 * A writer's generation floor for the datasource tree `dsDir` (spool/id.ts GenerationFloor):
 * the highest leaf generation of an id's second that other producers have made there, so
 * that a job spooled after one of theirs returned never goes into an earlier leaf than
 * theirs (FIFO across processes, not only within one). On the first id of a second the
 * bucket is listed; after that only the next generation's leaf is looked for, one access()
 * per job. Synchronous: the id is made before spool() awaits anything, and the look-up of a
 * directory entry the kernel has cached takes microseconds.
 *
 * A leaf that a runner drained and removed is not seen: a producer may then stay a
 * generation behind, in a leaf the runner has passed, as a late write does (its jobs run at
 * the next pass).
 */
export function generationFloor(dsDir: string): GenerationFloor {
  return (prefix, generation, newSecond) => {
    const bucketDir = join(dsDir, prefix.slice(0, 6));
    let at = generation;
    if (newSecond) {
      let names: string[];
      try {
        names = fs.readdirSync(bucketDir);
      } catch {
        return at; // no bucket yet: nobody spooled in this second's bucket
      }
      const second = prefix.slice(6, 8);
      for (const name of names) {
        if (name.startsWith(second) && LEAF_PATTERN.test(name)) at = Math.max(at, generationOf(name.charAt(2)));
      }
      return at;
    }
    while (at < MAX_GENERATION && fs.existsSync(join(bucketDir, leafName(prefix, generationChar(at + 1))))) at += 1;
    return at;
  };
}
