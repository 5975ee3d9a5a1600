import { describe, expect, it } from 'vitest';
import { GroupFill, MAX_GROUP_BYTES, MAX_GROUP_JOBS, MERGED_ROWS, type FillItem } from '../../src/run/group-fill.js';

/** How full a group commit is (issue 15): ledger.batch counts statements, a merged run of INSERTs once. */

const merged = (bytes = 40): FillItem => ({ prefix: 'INSERT INTO t (a) VALUES ', bytes });
const alone = (bytes = 40): FillItem => ({ prefix: null, bytes });

/** Feeds items as the drain does (flush when one does not fit, or when full); returns the groups' sizes. */
function groups(fill: GroupFill, items: readonly FillItem[]): number[] {
  const sizes: number[] = [];
  let size = 0;
  const flush = () => {
    if (size > 0) sizes.push(size);
    size = 0;
    fill.clear();
  };
  for (const item of items) {
    if (!fill.fits(item)) flush();
    fill.add(item);
    size++;
    if (fill.full) flush();
  }
  flush();
  return sizes;
}

describe('GroupFill', () => {
  it('statements that can\'t merge: batch jobs a group, as before', () => {
    expect(groups(new GroupFill(32, true), Array.from({ length: 70 }, () => alone()))).toEqual([32, 32, 6]);
  });
  it('a merged run counts once: mergeable jobs fill a group up to MAX_GROUP_JOBS', () => {
    expect(groups(new GroupFill(32, true), Array.from({ length: 2500 }, () => merged()))).toEqual([MAX_GROUP_JOBS, MAX_GROUP_JOBS, 500]);
  });
  it('mixed: batch statements, each merged run one of them', () => {
    const items = [merged(), merged(), merged(), alone(), merged(), merged(), alone(), merged()];
    // batch 3: [run of 3, alone, run of 2] then [alone, merged]
    expect(groups(new GroupFill(3, true), items)).toEqual([6, 2]);
  });
  it('a run differing by its prefix starts a new statement', () => {
    const other: FillItem = { prefix: 'INSERT INTO u (a) VALUES ', bytes: 40 };
    expect(groups(new GroupFill(2, true), [merged(), merged(), other, other, merged()])).toEqual([4, 1]);
  });
  it('per-statement mode (merging off) counts every job', () => {
    expect(groups(new GroupFill(32, false), Array.from({ length: 40 }, () => merged()))).toEqual([32, 8]);
  });
  it('past batch, a group grows only while its text stays under MAX_GROUP_BYTES', () => {
    const big = Math.floor(MAX_GROUP_BYTES / 100);
    const sizes = groups(new GroupFill(32, true), Array.from({ length: 300 }, () => merged(big)));
    expect(sizes.every((n) => n <= 100)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(300);
    // Within batch, size does not cut the group (as before: the session runs it one by one when it does not fit a packet).
    expect(groups(new GroupFill(32, true), Array.from({ length: 10 }, () => alone(MAX_GROUP_BYTES)))).toEqual([10]);
  });
  it('a batch above MAX_GROUP_JOBS keeps its size', () => {
    expect(groups(new GroupFill(5000, true), Array.from({ length: 6000 }, () => merged()))).toEqual([5000, 1000]);
    expect(MERGED_ROWS).toBeLessThanOrEqual(MAX_GROUP_JOBS);
  });
});
