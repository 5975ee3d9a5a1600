/**
 * What the command line prints, as text. Pure: each formatter takes plain data and returns
 * lines; free text (SQL, messages, file names) is escaped so it cannot drive the terminal.
 */
import { codeAndMessage } from '../errors.js';
import type { JobStatus, RunSummary, StatusReport } from '../interfaces.js';
import type { DeleteFailedResult, FailedFile, FailedFileDetail, RespoolResult } from '../ops/failed-files.js';
import type { ResultManifest } from '../ops/results.js';

/** An age or delay in the largest unit that keeps it readable: 90s, 5m, 3h, 2d; null is "-". */
export function ago(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** A delay as exactly as a person reads it: 500ms, 1.5s, 10s; from two minutes on as ago() does. */
export function delayText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 120_000 && ms % 1000 !== 0) return `${(ms / 1000).toFixed(1)}s`;
  return ago(ms);
}

/** Control characters (but newline and tab) shown as \u escapes: SQL or a message can't drive the terminal. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One line of free text: newlines too are escaped (as JSON does). */
export function oneLine(text: string): string {
  return printable(JSON.stringify(text).slice(1, -1));
}

/** A run: the totals line, then what happened per datasource and what the run tidied up. */
export function formatSummary(s: RunSummary): string {
  const lines = [`runSQL: success=${s.success}; SQLFailed=${s.sqlFailed}; ConnectedFailed=${s.connectionFailed}; SQL=${Math.round(s.totalMs)}ms; avg=${Math.round(s.avgMs)}ms`];
  for (const [name, d] of Object.entries(s.datasources)) {
    if (d.paused) {
      lines.push(`  ${name}: paused, skipped (its jobs stay in spool: querybatch resume ${name})`);
      continue;
    }
    const parts = [`${d.success} ok`];
    if (d.sqlFailed > 0) parts.push(`${d.sqlFailed} failed (see failed/ and logs/querybatch-error.log)`);
    if (d.connectionError) parts.push(`stopped: cannot reach the database (${d.connectionError})`);
    if (d.connectionMoved) parts.push(`${d.connectionMoved} out of connection attempts moved to failed/connection-… (respool --connection once it is back)`);
    if (d.busy) parts.push('skipped: another runner is draining it');
    if (d.blocked !== undefined) parts.push(`blocked by failed/${oneLine(d.blocked)} (strictOrder): respool or delete it to go on`);
    if (d.deferred > 0) parts.push(`${d.deferred} left in spool`);
    lines.push(`  ${name}: ${parts.join(', ')}`);
  }
  if (s.invalid > 0) lines.push(`  ${s.invalid} file(s) that are not valid jobs set aside in failed/failed-… (why: querybatch failed list)`);
  if (s.adopted > 0) lines.push(`  ${s.adopted} dropped-in file(s) queued`);
  if (s.recovered > 0) lines.push(`  ${s.recovered} claim(s) of a dead runner given back to the spool`);
  if (s.retried > 0) lines.push(`  ${s.retried} time(s) a statement ran again after a deadlock or lock wait timeout (retry lines in logs/querybatch-error.log)`);
  if (s.settled > 0) lines.push(`  ${s.settled} job(s) the ledger showed had run before a crash: removed, not run again`);
  if (s.uncertain > 0) lines.push(`  ${s.uncertain} statement(s) that commit implicitly were cut short: see failed/uncertain-… (docs/guarantees.md)`);
  if (s.tmpRemoved > 0) lines.push(`  ${s.tmpRemoved} stale temp file(s) removed from spool/.tmp`);
  if (s.delayed !== undefined && s.delayed > 0) lines.push(`  ${s.delayed} delayed job(s) waiting, not due yet (the first at ${s.nextDueAt ?? '-'})`);
  return lines.join('\n');
}

/** The home: pending per datasource, drop-ins, claims, failed counts, the last run. */
export function formatStatus(r: StatusReport): string {
  const lines = [`home: ${r.home}`, `pending: ${r.pendingTotal}`];
  for (const [name, p] of Object.entries(r.pending)) {
    const blocked = r.blocked[name];
    const paused = r.paused.includes(name) ? `, paused (runs skip it: querybatch resume ${name})` : '';
    lines.push(`  ${name}: ${p.count}${p.count > 0 ? ` (oldest ${ago(p.oldestAgeMs)} ago, ${p.oldestId})` : ''}${paused}${blocked ? `, blocked by failed/${oneLine(blocked)} (strictOrder): respool or delete it to go on` : ''}`);
  }
  const delayed = Object.entries(r.delayed ?? {});
  if (delayed.length > 0) {
    lines.push(`delayed (not due yet): ${delayed.reduce((n, [, d]) => n + d.count, 0)}`);
    for (const [name, d] of delayed) lines.push(`  ${name}: ${d.count} (the first due at ${d.nextRunAt})`);
  }
  if (r.dropIns > 0) lines.push(`dropped-in, not yet queued: ${r.dropIns}`);
  if (r.active > 0) lines.push(`claimed by a runner now: ${r.active}`);
  if (r.abandoned > 0) lines.push(`left claimed by a runner that died: ${r.abandoned} (the next run gives them back to the spool)`);
  lines.push(`failed: ${r.failed.connection} connection-, ${r.failed.failed} failed-${r.failed.uncertain > 0 ? `, ${r.failed.uncertain} uncertain- (check by hand: docs/guarantees.md)` : ''}${r.failed.other > 0 ? `, ${r.failed.other} other` : ''}`);
  const l = r.lastRun;
  lines.push(l
    ? `last run: ${l.time} success=${l.success}; SQLFailed=${l.sqlFailed}; ConnectedFailed=${l.connectionFailed}; SQL=${l.totalMs}ms; avg=${l.avgMs}ms`
    : 'last run: none logged');
  return lines.join('\n');
}

/** What became of one job, by its state. */
export function formatJobStatus(s: JobStatus): string {
  switch (s.state) {
    case 'queued':
      return `${s.id}: queued in ${s.datasource}, position ${s.position}${s.attempts > 0 ? `, ${s.attempts} attempt(s) so far` : ''}${s.priority === 'immediate' ? ', immediate' : ''}`;
    case 'delayed':
      return `${s.id}: delayed in ${s.datasource} until ${s.runAt} (it joins the queue, in id order, at the first run from then on)${s.attempts > 0 ? `, ${s.attempts} attempt(s) so far` : ''}`;
    case 'running':
      return s.runnerDead
        ? `${s.id}: claimed on ${s.datasource} by runner ${s.runner}, which has died: not running; the next run gives it back to its place in the spool`
        : `${s.id}: running on ${s.datasource} (runner ${s.runner})${s.script ? `, script at statement ${Math.min(s.script.done + 1, s.script.statements)} of ${s.script.statements} (${s.script.done} committed)` : ''}`;
    case 'succeeded':
      return `${s.id}: succeeded on ${s.datasource} at ${s.finishedAt} in ${s.durationMs}ms, ${s.affectedRows} row(s) affected`;
    case 'failed':
      return [
        `${s.id}: failed (${s.class}) on ${s.datasource ?? 'an unknown datasource'}${s.finishedAt ? ` at ${s.finishedAt}` : ''}`,
        `  error: ${s.message === null ? `${s.code ?? '-'}: -` : oneLine(codeAndMessage(s.code ?? '-', s.message))}`,
        s.file ? `  file: failed/${oneLine(s.file)} (copy it back under spool/ or use respool to run it again)` : '  file: no longer in failed/',
      ].join('\n');
    case 'cancelled':
      return `${s.id}: cancelled on ${s.datasource} at ${s.cancelledAt} (removed from the spool before it ran)`;
    case 'unknown':
      return `${s.id}: unknown (never spooled here, or finished longer ago than retentionMs)`;
  }
}

/** failed/, oldest first: a line per file, then its last error indented. */
export function formatFailedList(files: readonly FailedFile[]): string {
  if (files.length === 0) return 'failed/ is empty';
  const lines = [`${files.length} file(s) in failed/ (oldest first):`];
  for (const f of files) {
    const head = `${oneLine(f.name)}  ${f.class}  ${f.id ?? '-'}  ${f.datasource ?? '-'}  age ${ago(f.ageMs)}  attempts ${f.attempts ?? '-'}`;
    const error = f.lastError ? oneLine(codeAndMessage(f.lastError.code, f.lastError.message)) : '-';
    lines.push(head, `    ${f.valid ? '' : f.dropIn ? '(plain SQL: respool puts it back under spool/) ' : '(not a valid job file) '}${error}`);
  }
  return lines.join('\n');
}

/** One file of failed/: its fields, the full error, the params (hidden unless asked for), the SQL. */
export function formatFailedDetail(f: FailedFileDetail): string {
  const lines = [
    `name:       ${oneLine(f.name)}`,
    `class:      ${f.class}${f.valid ? '' : f.dropIn ? ' (plain SQL: respool puts it back under spool/ as a drop-in)' : ' (not a valid job file: cannot be respooled)'}`,
    `id:         ${f.id ?? '-'}`,
    `datasource: ${f.datasource ?? '-'}`,
    `created:    ${f.createdAt ?? '-'} (${ago(f.ageMs)} ago)`,
    `attempts:   ${f.attempts ?? '-'}`,
  ];
  if (f.lastError) {
    lines.push(`error:      ${f.lastError.class} ${f.lastError.code}${f.lastError.errno !== undefined ? ` errno=${f.lastError.errno}` : ''}${f.lastError.sqlState ? ` sqlState=${f.lastError.sqlState}` : ''} at ${f.lastError.at}`);
    lines.push(`message:    ${oneLine(f.lastError.message)}`);
    if (f.lastError.statement) lines.push(`statement:  ${f.lastError.statement.index} (line ${f.lastError.statement.line}): ${oneLine(f.lastError.statement.text)}`);
  }
  if (f.script) lines.push(`script:     ${f.script.statements} statements, ${f.script.bytes} bytes; ${f.script.done} committed (respool resumes at statement ${f.script.done + 1})`);
  lines.push(`params:     ${f.params !== null ? printable(JSON.stringify(f.params)) : `${f.paramsSummary ?? '-'}${f.paramsSummary ? ' (values hidden; --show-params shows them)' : ''}`}`);
  if (f.sql !== null) lines.push('sql:', printable(f.sql));
  return lines.join('\n');
}

/** What respool moved back, and what it skipped and why. */
export function formatRespool(r: RespoolResult): string {
  const lines = [`respooled: ${r.respooled.length}`];
  for (const j of r.respooled) lines.push(`  ${oneLine(j.name)} -> ${j.datasource} ${j.id}`);
  if (r.skipped.length > 0) lines.push(`skipped: ${r.skipped.length}`);
  for (const k of r.skipped) lines.push(`  ${oneLine(k.name)}: ${oneLine(k.reason)}`);
  return lines.join('\n');
}

/** What `failed delete` deleted, and what it skipped and why. */
export function formatDeleteFailed(r: DeleteFailedResult): string {
  const lines = [`deleted: ${r.deleted.length}`];
  for (const name of r.deleted) lines.push(`  ${oneLine(name)}`);
  if (r.skipped.length > 0) lines.push(`skipped: ${r.skipped.length}`);
  for (const k of r.skipped) lines.push(`  ${oneLine(k.name)}: ${oneLine(k.reason)}`);
  return lines.join('\n');
}

/** A captured result: row and page counts, the columns, a line per page. */
export function formatResult(manifest: ResultManifest): string {
  const lines = [`${manifest.id}: ${manifest.totalRows} row(s) in ${manifest.pages.length} page(s), finished ${manifest.finishedAt}`, `columns: ${manifest.columns.map(oneLine).join(', ')}`];
  for (const p of manifest.pages) lines.push(`  page ${p.page}: rows ${p.firstRow}-${p.lastRow} (${p.rowCount} rows, ${p.bytes} bytes)`);
  return lines.join('\n');
}
