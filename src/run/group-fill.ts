/**
 * How full a group commit is (coalescing, issue 15). `ledger.batch` counts the group's
 * statements, and a run of consecutive single-row INSERTs with one prefix, which the session
 * merges into one multi-row INSERT (db/coalesce.ts), counts as one: so a drain of mergeable
 * INSERTs fills one transaction with up to MAX_GROUP_JOBS jobs instead of `batch`. Past
 * `batch` jobs the group grows only through merged runs, and only while its statement text
 * stays under MAX_GROUP_BYTES (far below any max_allowed_packet a server starts with, so the
 * group still goes in one trip). Every job of the group still writes its ledger row in the
 * group's one transaction: a crash commits all of them or none. Pure.
 */

/** Rows of one merged run at most, as the drain counts them (a session may cut its runs shorter: SQLite's 500 rows). */
export const MERGED_ROWS = 1000;
/** Jobs of a group that grew past `batch` through merged runs, at most. */
export const MAX_GROUP_JOBS = 1000;
/** Statement text (an estimate: the SQL and its values) of a group that grew past `batch`, at most. */
export const MAX_GROUP_BYTES = 1 << 20;

/** A job as the fill counts it: its INSERT's prefix (null: it can't share a statement) and its size. */
export interface FillItem {
  readonly prefix: string | null;
  readonly bytes: number;
}

export class GroupFill {
  /** Statements the group holds (`batch` at most). */
  #statements = 0;
  #jobs = 0;
  #bytes = 0;
  /** The prefix of the group's last run (null: its last job can't share), and that run's rows. */
  #prefix: string | null = null;
  #runRows = 0;

  /** `batch`: statements per group; `merging` false (per-statement mode, no group commit): each job is a statement. */
  constructor(readonly batch: number, readonly merging: boolean) {}

  /** Whether `item` would join the last run's merged statement. */
  #joins(item: FillItem): boolean {
    return this.merging && item.prefix !== null && item.prefix === this.#prefix && this.#runRows < MERGED_ROWS;
  }

  /** Whether `item` fits in the group; if not, the group is flushed first. */
  fits(item: FillItem): boolean {
    if (this.#jobs === 0) return true;
    if (this.#statements + (this.#joins(item) ? 0 : 1) > this.batch) return false;
    return this.#jobs < this.batch || (this.#jobs < MAX_GROUP_JOBS && this.#bytes + item.bytes <= MAX_GROUP_BYTES);
  }

  add(item: FillItem): void {
    if (this.#joins(item)) {
      this.#runRows++;
    } else {
      this.#statements++;
      this.#prefix = this.merging ? item.prefix : null;
      this.#runRows = 1;
    }
    this.#jobs++;
    this.#bytes += item.bytes;
  }

  /** Full: no job can join (flush now rather than when the next job comes). */
  get full(): boolean {
    if (this.#jobs >= Math.max(this.batch, MAX_GROUP_JOBS) || (this.#jobs >= this.batch && this.#bytes >= MAX_GROUP_BYTES)) return true;
    return this.#statements >= this.batch && (this.#prefix === null || this.#runRows >= MERGED_ROWS);
  }

  /** The group was flushed. */
  clear(): void {
    this.#statements = 0;
    this.#jobs = 0;
    this.#bytes = 0;
    this.#prefix = null;
    this.#runRows = 0;
  }
}
