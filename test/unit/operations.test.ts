import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfigFile, resolveConfig, stripComments } from '../../src/config.js';
import { matches, parseLogLine, parseTime } from '../../src/ops/log-reader.js';
import { formatErrorLine, formatSummaryLine } from '../../src/ops/log-format.js';
import { formatProgress } from '../../src/cli/progress.js';
import { isIgnoredBySpoolWatcher, isImmediateMarkerPath } from '../../src/daemon/watcher.js';
import { sampleConfig } from '../../src/ops/init.js';
import { thrown } from './thrown.js';

function expectError(fn: () => unknown, code: string, pattern: RegExp): void {
  const error = thrown(fn);
  expect(error.code).toBe(code);
  expect(error.message).toMatch(pattern);
}

describe('formatProgress', () => {
  it('shows done/total, percent, rate and ETA, within the width', () => {
    expect(formatProgress({ done: 500, total: 2000, elapsedMs: 1000 }, 80)).toBe('[########......................] 500/2000  25%  500/s  ETA 3s');
    expect(formatProgress({ done: 2000, total: 2000, elapsedMs: 4000 }, 80)).toBe('[##############################] 2000/2000  100%  500/s  ETA 0s');
    expect(formatProgress({ done: 3, total: 1000, elapsedMs: 2000 }, 80)).toMatch(/ 3\/1000  0%  1\.5\/s  ETA 11m05s$/);
    expect(formatProgress({ done: 0, total: 10, elapsedMs: 0 }, 80)).toMatch(/0\/10  0%  0\.0\/s  ETA \?$/);
    for (const columns of [20, 40, 60]) expect(formatProgress({ done: 123, total: 4567, elapsedMs: 999 }, columns).length).toBeLessThanOrEqual(columns);
    // More done than counted at the start (jobs spooled meanwhile): never over 100%.
    expect(formatProgress({ done: 12, total: 10, elapsedMs: 1000 }, 80)).toContain('12/12  100%');
  });

  it('shows how far a running script is', () => {
    expect(formatProgress({ done: 3, total: 5, elapsedMs: 1000, script: { statement: 40, statements: 152 } }, 80)).toBe('[##################............] 3/5  60%  3.0/s  ETA 1s  script 40/152');
  });
});

describe('parseTime', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');
  it('takes ISO times and ages', () => {
    expect(parseTime('2026-11-23T10:00:00Z', '--since', now).toISOString()).toBe('2026-11-23T10:00:00.000Z');
    expect(parseTime('2026-11-23', '--since', now).toISOString()).toBe('2026-11-23T00:00:00.000Z');
    expect(parseTime('90s', '--since', now).toISOString()).toBe('2026-11-23T11:58:30.000Z');
    expect(parseTime('15m', '--since', now).toISOString()).toBe('2026-11-23T11:45:00.000Z');
    expect(parseTime('2h', '--since', now).toISOString()).toBe('2026-11-23T10:00:00.000Z');
    expect(parseTime('7d', '--since', now).toISOString()).toBe('2026-11-16T12:00:00.000Z');
  });
  it('refuses anything else, saying what it expected', () => {
    for (const bad of ['yesterday', '', '2026-13-45', '5 weeks', '-2h']) {
      expectError(() => parseTime(bad, '--until', now), 'CONFIG_INVALID', /^Expected --until to be an ISO time like .* or an age like 15m, 2h, 7d; got /);
    }
  });
});

describe('parseLogLine and matches', () => {
  const run = formatSummaryLine(new Date('2026-01-01T00:00:00Z'), { success: 3, sqlFailed: 1, connectionFailed: 0, totalMs: 12.4, avgMs: 3.1 });
  const err = formatErrorLine(new Date('2026-01-02T00:00:00Z'), { class: 'invalid', id: null, file: 'spool/x y', datasource: null, code: 'INVALID_SPOOL_FILE', moved: 'failed/failed-x', message: 'bad\nrunSQL: success=1' });
  it('types the fields: numbers as numbers, "-" as null', () => {
    expect(parseLogLine(run)).toEqual({ log: 'run', time: '2026-01-01T00:00:00.000Z', success: 3, sqlFailed: 1, connectionFailed: 0, totalMs: 12, avgMs: 3 });
    expect(parseLogLine(err)).toEqual({ log: 'error', time: '2026-01-02T00:00:00.000Z', class: 'invalid', id: null, file: 'spool/x y', datasource: null, code: 'INVALID_SPOOL_FILE', moved: 'failed/failed-x', message: 'bad\nrunSQL: success=1' });
    expect(parseLogLine('garbage')).toBeNull();
    expect(parseLogLine('')).toBeNull();
  });
  it('filters by log, time and datasource', () => {
    const r = parseLogLine(run)!;
    const e = parseLogLine(err)!;
    expect(matches(r, { errors: true })).toBe(false);
    expect(matches(e, { errors: true })).toBe(true);
    expect(matches(r, { since: new Date('2026-01-01T00:00:00Z') })).toBe(true);
    expect(matches(r, { since: new Date('2026-01-01T00:00:00.001Z') })).toBe(false);
    expect(matches(e, { until: new Date('2026-01-01T23:59:59Z') })).toBe(false);
    expect(matches(r, { datasource: 'main' })).toBe(false);
    expect(matches(e, { datasource: 'main' })).toBe(false);
  });
});

describe('the spool watcher', () => {
  const spool = '/h/spool';
  it('watches spool/, datasource directories and drop-in directories, not the shard buckets or hidden entries', () => {
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool')).toBe(false);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/main')).toBe(false);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/a/b/c')).toBe(false);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/a/b/c/x.batchsql')).toBe(false);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/main/dropped.sql')).toBe(false);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/main/01M818')).toBe(true);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/main/01M818/75/01M81875YNJMPGVYQNQ96CYM8R.batchsql')).toBe(true);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/.tmp')).toBe(true);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/.active/host.1.2/main/x.batchsql')).toBe(true);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/.id')).toBe(true);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/in/.x.sql.swp')).toBe(true);
    expect(isIgnoredBySpoolWatcher(spool, '/h/other')).toBe(true);
  });

  it('watches the immediate-priority markers, and tells them from drop-ins', () => {
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/.immediate')).toBe(false);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/.immediate/main')).toBe(false);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/.immediate/main/01M81875YNJMPGVYQNQ96CYM8R')).toBe(false);
    expect(isIgnoredBySpoolWatcher(spool, '/h/spool/.immediate/main/x/y')).toBe(true);
    expect(isImmediateMarkerPath(spool, '/h/spool/.immediate/main/01M81875YNJMPGVYQNQ96CYM8R')).toBe(true);
    expect(isImmediateMarkerPath(spool, '/h/spool/main/dropped.sql')).toBe(false);
  });
});

describe('config comments and schedule options', () => {
  it('drops "//" keys at any depth; the sample config init writes resolves', () => {
    expect(stripComments({ '//': 'x', a: { '// b': 1, c: [{ '//': 2, d: 3 }] } })).toEqual({ a: { c: [{ d: 3 }] } });
    const dir = mkdtempSync(join(tmpdir(), 'querybatch-unit-ops-'));
    try {
      writeFileSync(join(dir, 'querybatch.config.json'), sampleConfig('mysql://root@127.0.0.1:3306/test'));
      expect(readConfigFile(join(dir, 'querybatch.config.json'))).toEqual({ datasources: { main: 'mysql://root@127.0.0.1:3306/test' }, schedule: { cron: '*/5 * * * *' } });
      expect(resolveConfig({ home: dir }).schedule.cron).toBe('*/5 * * * *');
      // The limits shown, uncommented, are the defaults: maxSqlBytes stays unset.
      writeFileSync(join(dir, 'querybatch.config.json'), sampleConfig('mysql://root@127.0.0.1:3306/test').replace('"// limits"', '"limits"'));
      expect(resolveConfig({ home: dir }).limits).toEqual({ maxSqlBytes: null, maxParamsBytes: 16777216, maxFileBytes: 33554432, maxScriptBytes: 268435456 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('checks the schedule options, saying what was expected', () => {
    const base = { configFile: false as const };
    expect(resolveConfig({ ...base, schedule: { cron: '*/1 * * * * *', timezone: 'Europe/Berlin', runOnDrop: true } }).schedule).toMatchObject({ cron: '*/1 * * * * *', timezone: 'Europe/Berlin', runOnDrop: true, startDelayMs: 10000 });
    expectError(() => resolveConfig({ ...base, schedule: { cron: 'every minute' } }), 'CONFIG_INVALID', /^Expected `schedule.cron` to be a cron expression like "\*\/5 \* \* \* \*".*; got "every minute"$/);
    expectError(() => resolveConfig({ ...base, schedule: { timezone: 'Nowhere/Land' } }), 'CONFIG_INVALID', /^Expected `schedule.timezone` to be an IANA time zone/);
    expectError(() => resolveConfig({ ...base, schedule: { startDelayMs: -1 } }), 'CONFIG_INVALID', /^Expected `schedule.startDelayMs` to be a whole number >= 0; got -1$/);
    expectError(() => resolveConfig({ ...base, schedule: { runOnDrop: 'yes' as unknown as boolean } }), 'CONFIG_INVALID', /^Expected `schedule.runOnDrop` to be true or false; got "yes"$/);
    expect(resolveConfig({ ...base, schedule: { continuous: true } }).schedule.continuous).toBe(true);
    expectError(() => resolveConfig({ ...base, schedule: { continuous: 1 as unknown as boolean } }), 'CONFIG_INVALID', /^Expected `schedule.continuous` to be true or false; got 1$/);
    expectError(() => resolveConfig({ ...base, schedule: { crontab: 'x' } as never }), 'CONFIG_INVALID', /^Unknown option "crontab" in `schedule`; expected cron, timezone, /);
  });
});
