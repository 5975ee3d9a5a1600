/**
 * A pure reading of a statement's text, remembered for the last distinct texts read: a drain
 * sends the same few templates (`INSERT … VALUES (?, ?)`) again and again, and each was lexed
 * two or three times per job (docs/benchmarks.md, "Coalesced INSERTs"). Bounded in entries
 * and in the length of a text kept (a long text is read each time: its lexing is not what a
 * drain of small jobs waits on). The reading must be pure and its result never mutated.
 */

/** Distinct texts kept; past it the oldest goes. */
const ENTRIES = 256;
/** Texts longer than this are not kept. */
const MAX_LENGTH = 4096;

export function byText<T>(read: (sql: string) => T): (sql: string) => T {
  const kept = new Map<string, T>();
  return (sql) => {
    if (sql.length > MAX_LENGTH) return read(sql);
    const hit = kept.get(sql);
    if (hit !== undefined) return hit;
    const value = read(sql);
    if (kept.size >= ENTRIES) kept.delete(kept.keys().next().value!);
    kept.set(sql, value);
    return value;
  };
}
