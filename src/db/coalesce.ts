import type { InsertShape } from './insert-shape.js';

/**
 * Coalescing (issue 15): a group commit's jobs in order, cut into runs. Consecutive jobs
 * whose statements are single-row INSERTs of constants with the same prefix, byte for byte
 * (insert-shape.ts), go as one multi-row INSERT; every other job goes as it is. Order is
 * kept: a multi-row INSERT inserts its rows in the order of its jobs. Pure.
 */

export interface CoalesceLimits {
  /** Rows per statement at most. */
  readonly maxRows: number;
  /** Positional placeholders per statement at most (bound params: SQLite's SQLITE_MAX_VARIABLE_NUMBER). */
  readonly maxPlaceholders: number;
}

/** Jobs `from` to `from + count - 1`: one statement, merged (`sql`) when count > 1, else the job's own (`sql` null). */
export interface Run {
  readonly from: number;
  readonly count: number;
  readonly sql: string | null;
}

/**
 * A job's shape with its params written into its row, from the shape of its statement's
 * text (`template`, read once per text: db/by-text.ts): `at` holds its one-character
 * placeholders' offsets in that text, `literals` their values as SQL literals (a literal is a
 * constant in every dialect: a quoted string, a number, NULL, TRUE/FALSE, X'…'). Null when a
 * placeholder lies outside the row.
 */
export function inlinedShape(template: InsertShape, at: readonly number[], literals: readonly string[]): InsertShape | null {
  const start = template.prefix.length;
  const end = start + template.row.length;
  let row = '';
  let from = start;
  for (const [k, offset] of at.entries()) {
    if (offset < from || offset >= end || literals[k] === undefined) return null;
    row += template.row.slice(from - start, offset - start) + literals[k];
    from = offset + 1;
  }
  return { prefix: template.prefix, row: row + template.row.slice(from - start), placeholders: 0 };
}

/** The multi-row INSERT of these shapes (one prefix): the prefix, then the rows. */
export function mergedInsert(shapes: readonly InsertShape[]): string {
  return shapes[0]!.prefix + shapes.map((s) => s.row).join(', ');
}

/**
 * The runs of a group's statements, given each job's shape (null: not an INSERT that can
 * share a statement). A run ends at a different prefix, a job that can't share, or a limit.
 */
export function coalesceRuns(shapes: readonly (InsertShape | null)[], limits: CoalesceLimits): Run[] {
  const runs: Run[] = [];
  let k = 0;
  while (k < shapes.length) {
    const first = shapes[k];
    let count = 1;
    if (first != null) {
      let placeholders = first.placeholders;
      for (;;) {
        const next = shapes[k + count];
        if (next == null || next.prefix !== first.prefix || count >= limits.maxRows || placeholders + next.placeholders > limits.maxPlaceholders) break;
        placeholders += next.placeholders;
        count++;
      }
    }
    runs.push({ from: k, count, sql: count > 1 ? mergedInsert(shapes.slice(k, k + count) as InsertShape[]) : null });
    k += count;
  }
  return runs;
}

/** Whether any run merges several jobs. */
export function merges(runs: readonly Run[]): boolean {
  return runs.some((run) => run.count > 1);
}

/**
 * Each job's affected rows from its run's: a merged run's statement must have inserted
 * exactly one row per job (a plain INSERT inserts every row or fails). Anything else (a
 * BEFORE trigger that skipped a row, a rule, an INSTEAD OF trigger) can't be shared out
 * job by job: null, and the caller rolls back and runs the jobs unmerged.
 */
export function perJob(runs: readonly Run[], affected: readonly number[]): number[] | null {
  const out: number[] = [];
  for (const [k, run] of runs.entries()) {
    const n = affected[k] ?? 0;
    if (run.count === 1) out.push(n);
    else if (n === run.count) for (let j = 0; j < run.count; j++) out.push(1);
    else return null;
  }
  return out;
}
