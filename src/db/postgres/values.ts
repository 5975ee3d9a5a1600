import type { ParamValue } from '../../spool/record.js';

/**
 * How a param's value goes to PostgreSQL: bound (`$n`, the extended protocol) or written
 * into the text as a literal (the group commit's one round trip). Both send the same text
 * with no type, which the server types from where the value stands: a literal is written
 * quoted (`'42'`, an untyped constant like an untyped param), never as a bare number, so
 * `text_col = ?` with 42 reads the same both ways. Pure.
 *
 * - Date: ISO 8601 in UTC (`…Z`): the instant for timestamptz, the UTC wall time for
 *   timestamp (as MySQL's `timezone: 'Z'`), whatever the runner's time zone;
 * - bigint: its decimal digits (int8, numeric: never rounded through a double);
 * - Buffer/Uint8Array: bytea (bound as bytes; as a literal in bytea's hex form);
 * - booleans `true`/`false`; numbers as JavaScript writes them (1e+21 reads as numeric).
 */

/** A value as pg binds it. */
export function boundValue(value: ParamValue): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return value;
}

/**
 * A string as an SQL literal whatever standard_conforming_strings says: quotes doubled,
 * and with a backslash, backslashes doubled in an E'' string (pg's escapeLiteral). The
 * leading space keeps an E from joining a word before it.
 */
export function quoteLiteral(text: string): string {
  let hasBackslash = false;
  let out = "'";
  for (const c of text) {
    if (c === "'") out += "''";
    else if (c === '\\') {
      out += '\\\\';
      hasBackslash = true;
    } else out += c;
  }
  out += "'";
  return hasBackslash ? ` E${out}` : out;
}

/** A value as an untyped SQL literal; null when it can't be written as one (a NUL in a string: the bound path reports it). */
export function literalOf(value: ParamValue): string | null {
  if (value === null) return 'NULL';
  if (value instanceof Uint8Array) return quoteLiteral(`\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`);
  const text = String(boundValue(value));
  return text.includes('\0') ? null : quoteLiteral(text);
}
