import { describe, it, expect } from 'vitest';
import { ID_PATTERN, idAt, idTime, idsAt, isId, newId } from '../../src/spool/id.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The 80 random bits of an id as a number. */
function randomPart(id: string): bigint {
  let value = 0n;
  for (const ch of id.slice(10)) {
    const digit = CROCKFORD.indexOf(ch);
    expect(digit).toBeGreaterThanOrEqual(0);
    value = value * 32n + BigInt(digit);
  }
  return value;
}

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
    // The random part goes up by exactly one each time the clock has not moved.
    const first = ids[0]!;
    const last = ids[ids.length - 1]!;
    expect(randomPart(last) - randomPart(first)).toBe(9_999n);
    expect(randomPart(ids[1]!) - randomPart(first)).toBe(1n);
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
