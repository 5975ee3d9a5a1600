/**
 * The progress bar `querybatch run` draws on a terminal. Pure: formats one line; the CLI
 * decides when (a TTY, not --json, a run that takes more than a moment) and where (stderr).
 */
export interface ProgressState {
  readonly done: number;
  readonly total: number;
  /** Milliseconds since the run began. */
  readonly elapsedMs: number;
  /** A script running now: the statement that just ran, of how many. */
  readonly script?: { readonly statement: number; readonly statements: number };
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * `[##########··········] 1000/2000  50%  812/s  ETA 1s`, at most `columns` characters
 * (the bar shrinks first, then goes).
 */
export function formatProgress(p: ProgressState, columns = 80): string {
  const total = Math.max(p.total, p.done);
  const fraction = total > 0 ? p.done / total : 1;
  const seconds = p.elapsedMs / 1000;
  const rate = seconds > 0 ? p.done / seconds : 0;
  const eta = rate > 0 ? (total - p.done) / rate : Number.POSITIVE_INFINITY;
  const script = p.script ? `  script ${p.script.statement}/${p.script.statements}` : '';
  const text = `${p.done}/${total}  ${Math.floor(fraction * 100)}%  ${rate >= 10 ? Math.round(rate) : rate.toFixed(1)}/s  ETA ${p.done >= total ? '0s' : duration(eta)}${script}`;
  const room = columns - text.length - 3;
  if (room < 10) return text.slice(0, Math.max(0, columns));
  const width = Math.min(30, room);
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`;
}
