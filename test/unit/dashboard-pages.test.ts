import { describe, expect, it } from 'vitest';
import { csrfMatches, isCsrfToken, newCsrfToken } from '../../src/http/csrf.js';
import { ageBucketOf } from '../../src/http/overview.js';
import { esc, failedDetailPage, failedListPage, failedListView, filterFailed, formatAge, jobTimeline } from '../../src/http/pages.js';
import type { FailedFile, FailedFileDetail } from '../../src/ops/failed-files.js';

const file = (over: Partial<FailedFile>): FailedFile => ({
  name: 'failed-01ABCDEFGHJKMNPQRSTVWXYZ01.batchsql', class: 'failed', id: '01ABCDEFGHJKMNPQRSTVWXYZ01', datasource: 'a', createdAt: null,
  ageMs: 1000, attempts: 1, lastError: { class: 'sql', code: 'ER_DUP_ENTRY', message: 'Duplicate entry', at: '2026-01-01T00:00:00Z' }, valid: true, dropIn: false, ...over,
});

describe('dashboard pages (pure)', () => {
  it('esc escapes the five HTML characters', () => {
    expect(esc(`<script>"x" & 'y'</script>`)).toBe('&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;');
    expect(esc(null)).toBe('');
  });

  it('ages fall in qshape-like buckets', () => {
    expect([0, 299, 300, 1799, 1800, 7199, 7200, 86_399, 86_400, 1e9].map(ageBucketOf)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    expect(formatAge(42)).toBe('42s');
    expect(formatAge(3 * 3600 + 5 * 60)).toBe('3h 5m');
    expect(formatAge(2 * 86_400 + 4 * 3600)).toBe('2d 4h');
  });

  it('filters failed files by class, datasource and text', () => {
    const files = [file({}), file({ name: 'connection-x', class: 'connection', datasource: 'b', lastError: null })];
    expect(filterFailed(files, { class: 'connection' }).map((f) => f.name)).toEqual(['connection-x']);
    expect(filterFailed(files, { datasource: 'a' })).toHaveLength(1);
    expect(filterFailed(files, { text: 'dup_entry' })).toHaveLength(1);
    expect(filterFailed(files, {})).toHaveLength(2);
  });

  it('renders what it is given escaped, and no action in read-only mode', () => {
    const evil = file({ datasource: '<img src=x onerror=alert(1)>', lastError: { class: 'sql', code: 'E', message: '<b>boom</b>', at: 'now' } });
    const list = failedListPage(failedListView([evil], { text: '' }, 1), false, 'tok');
    expect(failedListPage(failedListView([evil], { text: '"><script>' }, 1), false, 'tok')).not.toContain('"><script>');
    expect(list).not.toContain('<img src=x');
    expect(list).not.toContain('<b>boom</b>');
    expect(list).not.toContain('"><script>');
    const detail: FailedFileDetail = { ...evil, sql: 'SELECT "</pre><script>alert(1)</script>"', script: null, params: null, paramsSummary: '1[string]' };
    const page = failedDetailPage(detail, false, 'tok', false);
    expect(page).not.toContain('<script>alert(1)');
    expect(page).toContain('name="csrf" value="tok"');
    expect(failedDetailPage(detail, false, 'tok', true)).not.toContain('<form');
  });

  it('a finished job\'s timeline has its claim time from the outcome; an outcome without one (recorded before it was kept) has no claimed step', () => {
    const id = '01ABCDEFGHJKMNPQRSTVWXYZ01';
    const times = { spooledAt: '2026-01-01T00:00:00.000Z', claimedAt: null };
    const ok = { id, state: 'succeeded', datasource: 'a', claimedAt: '2026-01-01T00:00:05.000Z', finishedAt: '2026-01-01T00:00:07.000Z', durationMs: 1000, affectedRows: 1 } as const;
    expect(jobTimeline(ok, times).map((s) => [s.label, s.at])).toEqual([
      ['spooled', '2026-01-01T00:00:00.000Z'], ['claimed', '2026-01-01T00:00:05.000Z'], ['ran', '2026-01-01T00:00:06.000Z'], ['succeeded', '2026-01-01T00:00:07.000Z'],
    ]);
    const { claimedAt: _, ...older } = ok;
    expect(jobTimeline(older, times).map((s) => s.label)).toEqual(['spooled', 'ran', 'succeeded']);
    const failed = { id, state: 'failed', datasource: 'a', class: 'sql', code: 'ER_DUP_ENTRY', message: 'Duplicate entry', file: null, claimedAt: '2026-01-01T00:00:05.000Z', finishedAt: '2026-01-01T00:00:06.000Z', attempts: null } as const;
    expect(jobTimeline(failed, times).map((s) => [s.label, s.at])).toEqual([['spooled', '2026-01-01T00:00:00.000Z'], ['claimed', '2026-01-01T00:00:05.000Z'], ['failed', '2026-01-01T00:00:06.000Z']]);
  });

  it('a CSRF field must equal its cookie', () => {
    const token = newCsrfToken();
    expect(isCsrfToken(token)).toBe(true);
    expect(csrfMatches(token, token)).toBe(true);
    expect(csrfMatches(token, newCsrfToken())).toBe(false);
    expect(csrfMatches(undefined, token)).toBe(false);
    expect(csrfMatches(token, undefined)).toBe(false);
  });
});
