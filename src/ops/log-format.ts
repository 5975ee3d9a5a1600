import { FAILURE_CLASSES } from '../spool/failure.js';
import type { LastRunLine } from '../interfaces.js';

/**
 * The two log line formats (docs/logs.md). Pure: builds and parses lines.
 *
 *   logs/querybatch.log:
 *   2026-11-22T08:30:00.123Z runSQL: success=6; SQLFailed=0; ConnectedFailed=0; SQL=32ms; avg=5ms
 *
 *   logs/querybatch-error.log:
 *   2026-11-22T08:30:00.120Z sql id=01J… file="01J….batchsql" datasource=main code=ER_NO_SUCH_TABLE errno=1146 attempts=1 moved="failed/failed-01J….batchsql" message="…" sql="…" params="2[number,string]"
 *
 * Free text (file names, messages, SQL, params) is always a JSON string, so a newline or
 * control character in it is escaped and can never start a forged line.
 */
export interface SummaryCounts {
  readonly success: number;
  readonly sqlFailed: number;
  readonly connectionFailed: number;
  readonly totalMs: number;
  readonly avgMs: number;
}

export function formatSummaryLine(time: Date, s: SummaryCounts): string {
  return `${time.toISOString()} runSQL: success=${s.success}; SQLFailed=${s.sqlFailed}; ConnectedFailed=${s.connectionFailed}; SQL=${Math.round(s.totalMs)}ms; avg=${Math.round(s.avgMs)}ms`;
}

const SUMMARY_PATTERN = /^(\S+) runSQL: success=(\d+); SQLFailed=(\d+); ConnectedFailed=(\d+); SQL=(\d+)ms; avg=(\d+)ms$/;

export function parseSummaryLine(line: string): LastRunLine | null {
  const m = SUMMARY_PATTERN.exec(line.trimEnd());
  if (!m) return null;
  return {
    time: m[1]!,
    success: Number(m[2]),
    sqlFailed: Number(m[3]),
    connectionFailed: Number(m[4]),
    totalMs: Number(m[5]),
    avgMs: Number(m[6]),
  };
}

export interface FailureEntry {
  /** A failure class (connection | sql | invalid | timeout | uncertain), or `retry`: a try that met a transient error and runs again (not a failure), or `cancelled`: a queued job removed by `querybatch cancel`. */
  readonly class: string;
  readonly id: string | null;
  readonly file: string;
  readonly datasource: string | null;
  readonly code: string;
  readonly errno?: number;
  readonly attempts?: number;
  /** Where the file went: a path relative to home (failed/…, or spool/… when it stays). */
  readonly moved: string;
  readonly message: string;
  /** The statement, or its first LOG_SQL_BYTES bytes when it is longer (then `sqlBytes` is set). */
  readonly sql?: string;
  /** The statement's whole length in bytes, when `sql` holds only its start (failed/ keeps it whole). */
  readonly sqlBytes?: number;
  /** Params as "count[types]" (or their values when logParams is on). */
  readonly params?: string;
}

/** The most of a statement's text an error-log line carries: a script of megabytes is logged by its start and its length. */
export const LOG_SQL_BYTES = 4096;

/** The SQL as an error-log entry carries it: whole, or its first LOG_SQL_BYTES bytes (never a character cut in two) and its length. */
export function loggedSql(sql: string): { sql: string; sqlBytes?: number } {
  const bytes = Buffer.byteLength(sql);
  if (bytes <= LOG_SQL_BYTES) return { sql };
  const { read } = new TextEncoder().encodeInto(sql, new Uint8Array(LOG_SQL_BYTES));
  return { sql: sql.slice(0, read), sqlBytes: bytes };
}

const BARE = /^[A-Za-z0-9_.:-]+$/;

function value(v: string): string {
  return BARE.test(v) ? v : JSON.stringify(v);
}

function text(v: string): string {
  return JSON.stringify(v);
}

export function formatErrorLine(time: Date, e: FailureEntry): string {
  const parts = [
    time.toISOString(),
    value(e.class),
    `id=${e.id ?? '-'}`,
    `file=${text(e.file)}`,
    `datasource=${e.datasource ? value(e.datasource) : '-'}`,
    `code=${value(e.code)}`,
  ];
  if (e.errno !== undefined) parts.push(`errno=${e.errno}`);
  if (e.attempts !== undefined) parts.push(`attempts=${e.attempts}`);
  parts.push(`moved=${text(e.moved)}`, `message=${text(e.message)}`);
  if (e.sql !== undefined) parts.push(`sql=${text(e.sql)}`);
  if (e.sqlBytes !== undefined) parts.push(`sqlBytes=${e.sqlBytes}`);
  if (e.params !== undefined) parts.push(`params=${text(e.params)}`);
  return parts.join(' ');
}

/**
 * A run that stopped on file I/O (RUN_IO_FAILED), in the error log as a line of its own
 * class `run`: it is not a job's failure (no file moved, nothing counted, no failed/ prefix),
 * so it is not one of spool/failure.ts's classes.
 *
 *   2026-11-22T08:30:00.120Z run datasource=main code=RUN_IO_FAILED message="…"
 */
export interface RunFailureEntry {
  readonly datasource: string;
  readonly code: string;
  readonly message: string;
}

export function formatRunErrorLine(time: Date, e: RunFailureEntry): string {
  return `${time.toISOString()} run datasource=${value(e.datasource)} code=${value(e.code)} message=${text(e.message)}`;
}

const RUN_LINE_HEAD = /^(\S+) (run)(?=\s)/;

/** An error line starts with its time and its failure class, or `retry`. */
const ERROR_LINE_HEAD = new RegExp(`^(\\S+) (${[...FAILURE_CLASSES, 'retry', 'cancelled'].join('|')})(?=\\s)`);

const FIELD = /\s([A-Za-z]+)=("(?:[^"\\]|\\.)*"|\S+)/g;

/** Parses an error log line back into its fields (strings unquoted); null for other lines. */
export function parseErrorLine(line: string): ({ time: string } & Record<string, string>) | null {
  const head = ERROR_LINE_HEAD.exec(line) ?? RUN_LINE_HEAD.exec(line);
  if (!head) return null;
  const out: { time: string } & Record<string, string> = { time: head[1]!, class: head[2]! };
  for (const m of line.slice(head[0].length).matchAll(FIELD)) {
    const raw = m[2]!;
    out[m[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  return out;
}
