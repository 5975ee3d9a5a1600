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

function encode(value: number, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = ALPHABET[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/**
 * Strictly increasing ids for times that do not go back: a later millisecond gets fresh
 * random bits, the same one (or an earlier one) the random part plus one.
 */
class IdSequence {
  #time = -1;
  #hi = 0; // upper 40 random bits
  #lo = 0; // lower 40 random bits

  next(time: number): string {
    if (time > this.#time) {
      this.#time = time;
      this.#fresh();
    } else {
      this.#lo += 1;
      if (this.#lo === HALF) {
        this.#lo = 0;
        this.#hi += 1;
        if (this.#hi === HALF) {
          // 2^80 ids in one millisecond: move the clock on instead of wrapping.
          this.#time += 1;
          this.#fresh();
        }
      }
    }
    return encode(this.#time, TIME_CHARS) + encode(this.#hi, 8) + encode(this.#lo, 8);
  }

  #fresh(): void {
    const bytes = randomBytes(10);
    this.#hi = bytes.readUIntBE(0, 5);
    this.#lo = bytes.readUIntBE(5, 5);
  }
}

const processSequence = new IdSequence();

/** A new id, strictly greater than every id this process made before. */
export function newId(now: number = Date.now()): string {
  return processSequence.next(now);
}

/**
 * Ids for moments in the past, one per time, times in the order they are to run (not going
 * back): each id is greater than the one before it, also within one millisecond (adoption's
 * .sql drop-ins: run/adoption.ts). Unique across processes by their random bits.
 */
export function idsAt(times: readonly number[]): string[] {
  const sequence = new IdSequence();
  return times.map((time) => sequence.next(Math.max(0, Math.floor(time))));
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
