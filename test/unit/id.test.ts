import { describe, it, expect } from 'vitest';
import { ID_PATTERN, LEAF_JOBS, MAX_GENERATION, idAt, idTime, idsAt, isId, newId } from '../../src/spool/id.js';
import { shardOf } from '../../src/spool/shards.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

// newId keeps state across calls: these tests only pass it times at or after Date.now(),
// never in the future, so later calls with the real clock still carry the real time.

describe('newId', () => {
  it('returns 26 Crockford base32 characters matching ID_PATTERN', () => {
    for (let i = 0; i < 100; i++) {
      const id = newId();
      expect(id).toHaveLength(26);
      expect(id).toMatch(ID_PATTERN);
      expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
      expect(isId(id)).toBe(true);
    }
  });

  it('carries the current time (idTime round-trips Date.now())', () => {
    const before = Date.now();
    const id = newId();
    const after = Date.now();
    expect(idTime(id)).toBeGreaterThanOrEqual(before);
    expect(idTime(id)).toBeLessThanOrEqual(after);
  });

  it('carries the time it is given', () => {
    const now = Date.now() + 1; // not behind any id made so far in this file
    const id = newId(now);
    expect(idTime(id)).toBe(now);
  });

  it('is strictly increasing over 10,000 calls in the same millisecond', () => {
    const now = Date.now() + 2;
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) ids.push(newId(now));
    for (let i = 1; i < ids.length; i++) {
      const prev = ids[i - 1]!;
      const cur = ids[i]!;
      if (!(prev < cur)) expect.fail(`id ${i} (${cur}) is not greater than id ${i - 1} (${prev})`);
    }
    expect(new Set(ids).size).toBe(10_000);
    for (const id of ids) expect(idTime(id)).toBe(now);
    // The random part goes up by exactly one each time the clock has not moved, and the
    // leaf generation (the 11th character, its top five bits) by one every LEAF_JOBS ids.
    const lower = (id: string) => {
      let value = 0n; // the 75 random bits under the generation (characters 12 to 26)
      for (const ch of id.slice(11)) value = value * 32n + BigInt(CROCKFORD.indexOf(ch));
      return value;
    };
    for (let i = 1; i < ids.length; i++) if (lower(ids[i]!) - lower(ids[i - 1]!) !== 1n) expect.fail(`id ${i}: the random part did not go up by one`);
    const generations = ids.map((id) => CROCKFORD.indexOf(id[10]!));
    const steps: number[] = []; // where the generation moved on (the count may have started earlier in this second)
    for (let i = 1; i < ids.length; i++) {
      const step = generations[i]! - generations[i - 1]!;
      if (step !== 0 && step !== 1) expect.fail(`id ${i}: the generation moved by ${step}`);
      if (generations[i] !== generations[i - 1]) steps.push(i);
    }
    expect(steps.length).toBeGreaterThanOrEqual(Math.floor(10_000 / LEAF_JOBS) - 1);
    for (let k = 1; k < steps.length; k++) expect(steps[k]! - steps[k - 1]!).toBe(LEAF_JOBS);
  });

  it('keeps increasing when the clock goes backwards', () => {
    const now = Date.now() + 3;
    const a = newId(now);
    const b = newId(now - 1000);
    const c = newId(0);
    expect(a < b).toBe(true);
    expect(b < c).toBe(true);
    expect(idTime(b)).toBe(now);
    expect(idTime(c)).toBe(now);
  });

  it('starts a fresh random part when the clock moves on', () => {
    const now = Date.now() + 4;
    const a = newId(now);
    const b = newId(now + 1);
    expect(idTime(b)).toBe(now + 1);
    expect(a < b).toBe(true);
    expect(a.slice(0, 10) < b.slice(0, 10)).toBe(true);
  });

  it('gives different random parts to ids made in different milliseconds', () => {
    const base = Date.now() + 10;
    const parts = new Set<string>();
    for (let i = 0; i < 50; i++) parts.add(newId(base + i).slice(10));
    expect(parts.size).toBe(50);
  });
});

describe('idAt', () => {
  it('gives an id carrying the given time', () => {
    for (const time of [0, 1, 1_000, 1_700_000_000_123, Date.UTC(2026, 10, 22, 8, 30, 0, 123), 2 ** 48 - 1]) {
      const id = idAt(time);
      expect(id).toMatch(ID_PATTERN);
      expect(idTime(id)).toBe(time);
    }
  });

  it('encodes the time in the first 10 characters', () => {
    expect(idAt(0).slice(0, 10)).toBe('0000000000');
    expect(idAt(31).slice(0, 10)).toBe('000000000Z');
    expect(idAt(32).slice(0, 10)).toBe('0000000010');
    expect(idAt(2 ** 48 - 1).slice(0, 10)).toBe('7ZZZZZZZZZ');
  });

  it('floors fractional times and clamps negative ones to 0', () => {
    expect(idTime(idAt(1234.9))).toBe(1234);
    expect(idTime(idAt(-5))).toBe(0);
  });

  it('gives unique ids for the same time', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) ids.add(idAt(1_700_000_000_000));
    expect(ids.size).toBe(1000);
  });

  it('does not move newId back in time', () => {
    const before = Date.now();
    idAt(0);
    expect(idTime(newId())).toBeGreaterThanOrEqual(before);
  });
});

describe('idsAt', () => {
  it('gives ids carrying the times, strictly increasing also within one millisecond', () => {
    const times = [5, 5, 5.9, 6, 6, 6, 1_700_000_000_000, 1_700_000_000_000];
    const ids = idsAt(times);
    expect(ids.map(idTime)).toEqual([5, 5, 5, 6, 6, 6, 1_700_000_000_000, 1_700_000_000_000]);
    for (const id of ids) expect(id).toMatch(ID_PATTERN);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('keeps 10,000 ids of one millisecond in order, and unique across calls', () => {
    const ids = idsAt(Array.from({ length: 10_000 }, () => 1_000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set([...ids, ...idsAt(Array.from({ length: 10_000 }, () => 1_000))]).size).toBe(20_000);
  });

  it('does not move newId back in time', () => {
    const before = Date.now();
    idsAt([0, 0]);
    expect(idTime(newId())).toBeGreaterThanOrEqual(before);
  });
});

describe('idTime', () => {
  it('decodes a known id', () => {
    expect(idTime('0000000000' + '0'.repeat(16))).toBe(0);
    expect(idTime('0000000001' + 'Z'.repeat(16))).toBe(1);
    expect(idTime('7ZZZZZZZZZ' + '0'.repeat(16))).toBe(2 ** 48 - 1);
  });
});

describe('sorting ids', () => {
  it('sorting ids as strings sorts them by time', () => {
    const times: number[] = [];
    let t = 1_600_000_000_000;
    for (let i = 0; i < 500; i++) {
      t += Math.floor(Math.random() * 5_000_000);
      times.push(t);
    }
    // Edge cases where a digit rolls over.
    times.push(31, 32, 1023, 1024, 2 ** 35 - 1, 2 ** 35);
    const ids = times.map((time) => idAt(time));
    const shuffled = [...ids].sort(() => Math.random() - 0.5);
    const sorted = [...shuffled].sort();
    const sortedTimes = sorted.map(idTime);
    expect(sortedTimes).toEqual([...times].sort((a, b) => a - b));
  });

  it('an id of a later millisecond sorts after every id of an earlier one', () => {
    const early = Array.from({ length: 200 }, () => idAt(5_000));
    const late = Array.from({ length: 200 }, () => idAt(5_001));
    const maxEarly = [...early].sort().at(-1)!;
    const minLate = [...late].sort()[0]!;
    expect(maxEarly < minLate).toBe(true);
  });
});

describe('isId', () => {
  it('accepts ids and rejects everything else', () => {
    expect(isId(newId())).toBe(true);
    expect(isId('01JD0000000000000000000000')).toBe(true);
    expect(isId('01jd0000000000000000000000')).toBe(false);
    expect(isId('01JD000000000000000000000')).toBe(false);
    expect(isId('01JD00000000000000000000000')).toBe(false);
    expect(isId('81JD0000000000000000000000')).toBe(false);
    expect(isId('01JD000000000000000000000I')).toBe(false);
    expect(isId('01JD000000000000000000000L')).toBe(false);
    expect(isId('01JD000000000000000000000O')).toBe(false);
    expect(isId('01JD000000000000000000000U')).toBe(false);
    expect(isId(12345)).toBe(false);
    expect(isId(null)).toBe(false);
    expect(isId(undefined)).toBe(false);
  });
});

describe('leaves cut by count (the 11th character: the generation)', () => {
  const leafKey = (id: string) => shardOf(id).join('/');

  it('puts a burst of 3 x LEAF_JOBS ids of one millisecond in 3 leaves, each of LEAF_JOBS, in id order leaf by leaf', () => {
    const ids = idsAt(Array.from({ length: 3 * LEAF_JOBS }, () => 1_700_000_000_000));
    const leaves = new Map<string, string[]>();
    for (const id of ids) leaves.set(leafKey(id), [...(leaves.get(leafKey(id)) ?? []), id]);
    expect(leaves.size).toBe(3);
    for (const names of leaves.values()) expect(names).toHaveLength(LEAF_JOBS);
    // What a runner does: leaves in name order, then the names in each: the order the ids were made.
    const drained = [...leaves.keys()].sort().flatMap((key) => [...leaves.get(key)!].sort());
    expect(drained).toEqual(ids);
  });

  it('starts each second at generation 0, and stops cutting at the last generation', () => {
    const t = 1_700_000_000_000 - (1_700_000_000_000 % 1024); // the start of a second
    const ids = idsAt([...Array.from({ length: (MAX_GENERATION + 3) * LEAF_JOBS }, () => t), t + 1023, t + 1024]);
    expect(ids[0]![10]).toBe('0');
    expect(ids[(MAX_GENERATION + 3) * LEAF_JOBS - 1]![10]).toBe(CROCKFORD[MAX_GENERATION]);
    expect(ids.at(-2)![10]).toBe(CROCKFORD[MAX_GENERATION]); // same second: still the last leaf
    expect(ids.at(-1)![10]).toBe('0'); // next second
    expect([...ids].sort()).toEqual(ids);
  });

  it('follows the generation a floor reports (other producers\' leaves), never going back', () => {
    // A second no earlier test of this file spooled in (a test above makes 10,000 ids in one millisecond: 19 generations).
    const now = (Math.floor(Date.now() / 1024) + 2) * 1024 + 20;
    const seen: boolean[] = [];
    const a = newId(now, (prefix, generation, newSecond) => {
      expect(prefix).toBe(idAt(now).slice(0, 8));
      seen.push(newSecond);
      return Math.max(generation, 4);
    });
    expect(a[10]).toBe('4');
    const b = newId(now, (_prefix, generation) => generation); // a floor below: stays at 4
    expect(b[10]).toBe('4');
    expect(a < b).toBe(true);
    const c = newId(now, () => 99); // capped at the last generation
    expect(c[10]).toBe(CROCKFORD[MAX_GENERATION]);
    expect(b < c).toBe(true);
  });
});
