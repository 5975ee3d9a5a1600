import { describe, expect, it } from 'vitest';
import { delayedPathFor, parseDelayedName } from '../../src/spool/delayed.js';
import { layoutOf } from '../../src/spool/layout.js';
import { decodeRecord, encodeRecord, type SpoolRecord } from '../../src/spool/record.js';
import { buildRecord } from '../../src/spool/writer.js';
import { resolveConfig } from '../../src/config.js';

const ID = '01M817KTSQ7N4DAW2H0B5YVCXE';
const config = resolveConfig({ configFile: false, home: '/tmp/qb-jobopts-unit', datasources: { main: 'mysql://root@127.0.0.1:3306/test' } });
const NOW = new Date('2026-11-29T10:00:00.000Z');

describe('job options in the spool file', () => {
  it('key and runAt round-trip through the file, covered by the checksum, in canonical order', () => {
    const record = buildRecord(config, 'SELECT 1', [], { key: 'order-42', delayMs: 1500 }, ID, NOW);
    expect(record).toMatchObject({ key: 'order-42', runAt: '2026-11-29T10:00:01.500Z' });
    const text = encodeRecord(record);
    expect(text).toContain('"attempts":0,"key":"order-42","runAt":"2026-11-29T10:00:01.500Z","checksum"');
    expect(decodeRecord(text)).toEqual(record);
    // Edited after the fact: the checksum no longer matches.
    expect(() => decodeRecord(text.replace('order-42', 'order-43'))).toThrow(/Checksum mismatch/);
  });

  it('a bad key or runAt in a file makes it invalid, saying what was expected', () => {
    const base: SpoolRecord = buildRecord(config, 'SELECT 1', [], {}, ID, NOW);
    const withField = (field: string, value: unknown) => encodeRecord(base).replace('"attempts":0', `"attempts":0,"${field}":${JSON.stringify(value)}`);
    expect(() => decodeRecord(withField('key', ''))).toThrow('Expected key to be a string of 1 to 256 characters; found ""');
    expect(() => decodeRecord(withField('key', 5))).toThrow('Expected key to be a string of 1 to 256 characters; found 5');
    expect(() => decodeRecord(withField('runAt', 'tomorrow'))).toThrow('Expected runAt to be an ISO 8601 time; found "tomorrow"');
  });

  it('runAt is stored as given; a time in the past is allowed (the job is simply due)', () => {
    expect(buildRecord(config, 'SELECT 1', [], { runAt: new Date('2026-12-01T08:00:00+01:00') }, ID, NOW).runAt).toBe('2026-12-01T07:00:00.000Z');
    expect(buildRecord(config, 'SELECT 1', [], { delayMs: 0 }, ID, NOW).runAt).toBe(NOW.toISOString());
    expect(() => buildRecord(config, 'SELECT 1', [], { delayMs: Number.MAX_SAFE_INTEGER }, ID, NOW)).toThrow(/Expected delayMs to be a whole number of milliseconds >= 0/);
  });
});

describe('delayed file names', () => {
  it('sort by due time and give back the due time and the id', () => {
    const layout = layoutOf('/h');
    const early = delayedPathFor(layout, 'main', '7ZZZZZZZZZZZZZZZZZZZZZZZZZ', 999);
    const late = delayedPathFor(layout, 'main', ID, 1_795_970_786_947);
    expect(early).toBe('/h/spool/.delayed/main/000000000000999-7ZZZZZZZZZZZZZZZZZZZZZZZZZ.batchsql');
    expect([late, early].sort()).toEqual([early, late]);
    expect(parseDelayedName(late.split('/').at(-1)!)).toEqual({ dueMs: 1_795_970_786_947, id: ID });
    for (const name of ['.wake', `${ID}.batchsql`, `00000000000099-${ID}.batchsql`, `000000000000999-${ID}.sql`]) expect(parseDelayedName(name)).toBeUndefined();
  });
});
