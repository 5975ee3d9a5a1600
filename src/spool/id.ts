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
 * Leaves are cut by count (spool/shards.ts): the 11th character of an id, the top five of
 * its random bits, is its leaf's generation within its second. A process starts each second
 * at generation 0 and moves to the next one after LEAF_JOBS ids, so one producer's leaf
 * holds at most LEAF_JOBS jobs however fast it spools (up to MAX_GENERATION + 1 leaves a
 * second; the last one takes the rest). Moving on keeps ids increasing: the generation
 * sorts before the rest of the random bits.
 */
export const LEAF_JOBS = 512;
export const MAX_GENERATION = 31;
/** Random bits under the generation: 35 in the upper half, 40 in the lower. */
const HI_RANDOM = 2 ** 35;
/** Milliseconds in a leaf's time span (the id's 7th and 8th characters): 2^10. */
const SECOND_MS = 1024;

/**
 * Asked once per new id by a writer that knows the spool: the generation other processes
 * have reached in this id's second (their leaves on disk), so that a job spooled after
 * theirs is never put in an earlier leaf. `prefix` is the id's first 8 characters,
 * `newSecond` says whether this is the first id of the second (the writer lists the bucket
 * then; later it looks only for the next leaf). Returns `generation` or more.
 */
export type GenerationFloor = (prefix: string, generation: number, newSecond: boolean) => number;

/**
 * Strictly increasing ids for times that do not go back: a later millisecond gets fresh
 * random bits, the same one (or an earlier one) the random part plus one; the generation
 * (above) only moves forward within a second.
 */
class IdSequence {
  #time = -1;
  #generation = 0;
  #count = 0;
  #hi = 0; // the 35 random bits under the generation
  #lo = 0; // lower 40 random bits

  next(time: number, floor?: GenerationFloor): string {
    let newSecond = false;
    if (time > this.#time) {
      newSecond = Math.floor(time / SECOND_MS) !== Math.floor(this.#time / SECOND_MS);
      this.#time = time;
      this.#fresh();
    } else {
      this.#lo += 1;
      if (this.#lo === HALF) {
        this.#lo = 0;
        this.#hi += 1;
        if (this.#hi === HI_RANDOM) {
          // 2^75 ids in one millisecond: move the clock on instead of wrapping.
          this.#time += 1;
          newSecond = this.#time % SECOND_MS === 0;
          this.#fresh();
        }
      }
    }
    if (newSecond) {
      this.#generation = 0;
      this.#count = 0;
    } else if (this.#count >= LEAF_JOBS && this.#generation < MAX_GENERATION) {
      this.#generation += 1;
      this.#count = 0;
    }
    if (floor !== undefined) {
      const at = Math.min(MAX_GENERATION, floor(encode(Math.floor(this.#time / SECOND_MS), TIME_CHARS - 2), this.#generation, newSecond));
      if (at > this.#generation) {
        this.#generation = at;
        this.#count = 0;
      }
    }
    this.#count += 1;
    return encode(this.#time, TIME_CHARS) + encode(this.#generation * HI_RANDOM + this.#hi, 8) + encode(this.#lo, 8);
  }

  #fresh(): void {
    const bytes = randomBytes(10);
    this.#hi = bytes.readUIntBE(0, 5) % HI_RANDOM;
    this.#lo = bytes.readUIntBE(5, 5);
  }
}

const processSequence = new IdSequence();

/**
 * A new id, strictly greater than every id this process made before. `floor` (a writer's)
 * lets the generation follow the leaves other processes cut.
 */
export function newId(now: number = Date.now(), floor?: GenerationFloor): string {
  return processSequence.next(now, floor);
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
 * An id for a moment in the past (a dropped-in file's modification time), generation 0.
 * Unique by its random bits; it does not take part in this process's monotonic sequence.
 */
export function idAt(time: number): string {
  const bytes = randomBytes(10);
  return encode(Math.max(0, Math.floor(time)), TIME_CHARS) + encode(bytes.readUIntBE(0, 5) % HI_RANDOM, 8) + encode(bytes.readUIntBE(5, 5), 8);
}

/** The character that names generation `generation` in an id and a leaf (Crockford base32). */
export function generationChar(generation: number): string {
  return ALPHABET[generation]!;
}

/** The generation an id's (or a leaf name's) character stands for, or -1. */
export function generationOf(char: string): number {
  return ALPHABET.indexOf(char);
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
