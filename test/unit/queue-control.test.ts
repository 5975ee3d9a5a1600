import { describe, expect, it } from 'vitest';
import { formatDeleteFailed, formatJobStatus, formatStatus, formatSummary } from '../../src/cli/format.js';
import type { RunSummary, StatusReport } from '../../src/interfaces.js';
import { formatErrorLine, parseErrorLine } from '../../src/ops/log-format.js';
import { parseLogLine } from '../../src/ops/log-reader.js';
import { emptyDatasourceSummary, summarize } from '../../src/run/tally.js';

const ID = '01JD7Z3K2M4N5P6Q7R8S9TVWXY';

describe('queue control, as printed and logged', () => {
  it('a run summary says a paused datasource was skipped, and nothing else about it', () => {
    const summary: RunSummary = summarize('r', { main: { ...emptyDatasourceSummary(), paused: true }, other: { ...emptyDatasourceSummary(), success: 2 } }, {
      started: new Date(0), finished: new Date(1), wallMs: 1, tmpRemoved: 0,
      recovery: { recovered: 0, uncertain: [] }, adoption: { adopted: 0, invalid: 0, settling: 0 },
    });
    expect(formatSummary(summary).split('\n').slice(1)).toEqual(['  main: paused, skipped (its jobs stay in spool: querybatch resume main)', '  other: 2 ok']);
  });

  it('status marks paused datasources', () => {
    const report: StatusReport = {
      home: '/h', pending: { main: { count: 2, oldestId: ID, oldestAgeMs: 5000 }, other: { count: 0, oldestId: null, oldestAgeMs: null } }, pendingTotal: 2,
      dropIns: 0, active: 0, abandoned: 0, failed: { connection: 0, failed: 0, uncertain: 0, other: 0 }, blocked: {}, paused: ['main'], lastRun: null,
    };
    const lines = formatStatus(report).split('\n');
    expect(lines).toContain(`  main: 2 (oldest 5s ago, ${ID}), paused (runs skip it: querybatch resume main)`);
    expect(lines).toContain('  other: 0');
  });

  it('a cancelled job and failed delete are printed', () => {
    expect(formatJobStatus({ id: ID, state: 'cancelled', datasource: 'main', cancelledAt: '2026-11-29T15:00:00.000Z' })).toBe(`${ID}: cancelled on main at 2026-11-29T15:00:00.000Z (removed from the spool before it ran)`);
    expect(formatDeleteFailed({ deleted: ['failed-a.batchsql'], skipped: [{ name: 'b\n', reason: 'no such file in failed/' }] }))
      .toBe('deleted: 1\n  failed-a.batchsql\nskipped: 1\n  b\\n: no such file in failed/');
  });

  it('a cancelled line of the error log is read back', () => {
    const line = formatErrorLine(new Date('2026-11-29T15:00:00.000Z'), { class: 'cancelled', id: ID, file: 'spool/main/x.batchsql', datasource: 'main', code: 'CANCELLED', moved: '-', message: 'm', sql: 'SELECT 1', params: '0[]' });
    expect(parseErrorLine(line)).toMatchObject({ class: 'cancelled', id: ID, code: 'CANCELLED', moved: '-' });
    expect(parseLogLine(line)).toMatchObject({ log: 'error', class: 'cancelled', id: ID, datasource: 'main' });
  });
});
