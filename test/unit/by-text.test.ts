import { describe, expect, it } from 'vitest';
import { byText } from '../../src/db/by-text.js';

/** A reading of a statement's text remembered per text (issue 15): read once, bounded. */
describe('byText', () => {
  it('reads each text once, null results included', () => {
    const read: string[] = [];
    const shape = byText((sql) => (read.push(sql), sql.startsWith('INSERT') ? { sql } : null));
    const a = shape('INSERT INTO t VALUES (?)');
    expect(shape('INSERT INTO t VALUES (?)')).toBe(a);
    expect(shape('UPDATE t SET a = 1')).toBeNull();
    expect(shape('UPDATE t SET a = 1')).toBeNull();
    expect(read).toEqual(['INSERT INTO t VALUES (?)', 'UPDATE t SET a = 1']);
  });
  it('keeps the last 256 texts, and never a text over 4,096 characters', () => {
    let reads = 0;
    const length = byText((sql) => (reads++, sql.length));
    for (let i = 0; i < 300; i++) length(`SELECT ${i}`);
    reads = 0;
    for (let i = 299; i >= 44; i--) length(`SELECT ${i}`); // the last 256: all kept
    expect(reads).toBe(0);
    length('SELECT 0'); // the oldest went
    expect(reads).toBe(1);
    const long = `SELECT '${'x'.repeat(5000)}'`;
    length(long);
    length(long);
    expect(reads).toBe(3);
  });
});
