import { randomBytes } from 'node:crypto';
import { QueryBatchError } from '../errors.js';

/**
 * Job ids are ULIDs: 48 bits of milliseconds then 80 random bits, in Crockford base32,
 * 26 characters. They sort by creation time as plain strings, which is what makes a
 * sorted directory listing FIFO. Within one process ids are strictly increasing (the
 * random part is incremented when the clock has not moved); across processes and hosts
 * the 80 random bits keep them unique.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_CHARS = 10;
const HALF = 2 ** 40;

export const ID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

let lastTime = -1;
let hi = 0; // upper 40 random bits
let lo = 0; // lower 40 random bits

function encode(value: number, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = ALPHABET[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

function freshRandom(): void {
  const bytes = randomBytes(10);
  hi = bytes.readUIntBE(0, 5);
  lo = bytes.readUIntBE(5, 5);
}

/** A new id, strictly greater than every id this process made before. */
export function newId(now: number = Date.now()): string {
  if (now > lastTime) {
    lastTime = now;
    freshRandom();
  } else {
    lo += 1;
    if (lo === HALF) {
      lo = 0;
      hi += 1;
      if (hi === HALF) {
        // 2^80 ids in one millisecond: move the clock on instead of wrapping.
        lastTime += 1;
        freshRandom();
      }
    }
  }
  return encode(lastTime, TIME_CHARS) + encode(hi, 8) + encode(lo, 8);
}

/**
 * An id for a moment in the past (a dropped-in file's modification time). Unique by its
 * random bits; it does not take part in this process's monotonic sequence.
 */
export function idAt(time: number): string {
  const bytes = randomBytes(10);
  return encode(Math.max(0, Math.floor(time)), TIME_CHARS) + encode(bytes.readUIntBE(0, 5), 8) + encode(bytes.readUIntBE(5, 5), 8);
}

export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** An id a caller handed in (status, result): returned as is, or INVALID_ID saying what was found. */
export function requireJobId(value: unknown): string {
  if (!isId(value)) throw new QueryBatchError('INVALID_ID', `Expected a job id (26 characters of Crockford base32, as spool() returns); got ${JSON.stringify(value)}`);
  return value;
}

/** The creation time (ms since the epoch) an id carries. */
export function idTime(id: string): number {
  let time = 0;
  for (let i = 0; i < TIME_CHARS; i++) {
    time = time * 32 + ALPHABET.indexOf(id[i]!);
  }
  return time;
}
