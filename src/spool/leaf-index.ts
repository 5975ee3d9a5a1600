import { join } from 'node:path';
import fs from 'node:fs';
import { tempPathFor } from './durable.js';

/**
 * What walking the spool learned about each large leaf of one datasource, kept in
 * spool/.index/<datasource>.json so that the next walk, in any process, lists only the
 * leaves that changed: with a million jobs pending, counting them and looking for
 * drop-ins costs a stat per leaf instead of a listing of every file.
 *
 * A leaf is trusted while its mtime (nanoseconds) is the one recorded: adding, removing or
 * renaming any entry changes it. Only leaves whose mtime was already SETTLED_MS old when
 * they were listed are recorded (a change in the same clock tick as the listing would not
 * move the mtime), only leaves without strays (those are listed every time, so every walk
 * reports them: spool/listing.ts), and only leaves of at least MIN_COUNT jobs (a small
 * leaf is as cheap to list as to stat, and the index stays small however the backlog is
 * spread). The file is a cache: missing, stale or damaged, it is ignored and rebuilt; it
 * is written with temp + rename but never fsynced.
 */
export interface LeafFacts {
  readonly count: number;
  /** The smallest (oldest) job file name, or null when there is none. */
  readonly oldest: string | null;
}

interface Entry extends LeafFacts {
  readonly mtime: string;
}

/** The name the index's temp files are made for (spool/durable.ts tempPathFor). */
export const INDEX_TEMP_NAME = 'index';

const SETTLED_MS = 2_000;
const MIN_COUNT = 64;
const VERSION = 1;

export class LeafIndex {
  readonly #file: string;
  readonly #tmpDir: string;
  readonly #known: Map<string, Entry>;
  readonly #seen = new Map<string, Entry>();
  readonly #present: boolean;
  #changed = false;

  private constructor(file: string, tmpDir: string, known: Map<string, Entry>, present: boolean) {
    this.#file = file;
    this.#tmpDir = tmpDir;
    this.#known = known;
    this.#present = present;
  }

  /** The index of `datasource` under `spoolDir` (empty when there is none or it can't be read). */
  static async load(spoolDir: string, datasource: string): Promise<LeafIndex> {
    const file = join(spoolDir, '.index', `${datasource}.json`);
    const known = new Map<string, Entry>();
    let present = false;
    try {
      const text = await fs.promises.readFile(file, 'utf8');
      present = true;
      const data = JSON.parse(text) as { version?: unknown; leaves?: unknown };
      if (data.version === VERSION && data.leaves !== null && typeof data.leaves === 'object') {
        for (const [key, value] of Object.entries(data.leaves as Record<string, unknown>)) {
          if (!Array.isArray(value) || value.length !== 3) continue;
          const [mtime, count, oldest] = value as unknown[];
          if (typeof mtime === 'string' && Number.isSafeInteger(count) && (typeof oldest === 'string' || oldest === null)) {
            known.set(key, { mtime, count: count as number, oldest });
          }
        }
      }
    } catch {
      // no index yet, or a damaged one: every leaf is listed
    }
    return new LeafIndex(file, join(spoolDir, '.tmp'), known, present);
  }

  /** The recorded facts of leaf `key` if its mtime is still `mtime`. */
  lookup(key: string, mtime: bigint): LeafFacts | undefined {
    const entry = this.#known.get(key);
    if (entry === undefined || entry.mtime !== mtime.toString()) return undefined;
    this.#seen.set(key, entry);
    return entry;
  }

  /** Records what a listing of leaf `key` found; `mtime` is the one read before listing it. */
  record(key: string, mtime: bigint, facts: LeafFacts, clean: boolean): void {
    this.#changed = true;
    const mtimeMs = Number(mtime / 1_000_000n);
    if (!clean || facts.count < MIN_COUNT || mtimeMs > Date.now() - SETTLED_MS) return;
    this.#seen.set(key, { mtime: mtime.toString(), count: facts.count, oldest: facts.oldest });
  }

  /**
   * Writes the leaves seen in this walk (leaves gone since drop out); with none to keep, the
   * file goes, so a drained spool is left empty. Never throws.
   */
  async save(): Promise<void> {
    if (this.#seen.size === 0) {
      if (this.#present) {
        await fs.promises.unlink(this.#file).catch(() => {});
        await fs.promises.rmdir(join(this.#file, '..')).catch(() => {});
      }
      return;
    }
    if (!this.#changed && this.#seen.size === this.#known.size) return;
    const leaves: Record<string, [string, number, string | null]> = {};
    for (const [key, e] of this.#seen) leaves[key] = [e.mtime, e.count, e.oldest];
    const tmp = tempPathFor(this.#tmpDir, INDEX_TEMP_NAME);
    try {
      await fs.promises.mkdir(join(this.#file, '..'), { recursive: true, mode: 0o700 });
      await fs.promises.writeFile(tmp, JSON.stringify({ version: VERSION, leaves }) + '\n', { mode: 0o600, flag: 'wx' });
      await fs.promises.rename(tmp, this.#file);
    } catch {
      await fs.promises.unlink(tmp).catch(() => {});
    }
  }
}
