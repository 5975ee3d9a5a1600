import { describe, it, expect } from 'vitest';
import {
  FORMAT,
  SPOOL_EXTENSION,
  DATASOURCE_NAME_PATTERN,
  checksumOf,
  decodeParams,
  decodeRecord,
  describeParams,
  encodeParams,
  encodeRecord,
  type ParamValue,
  type SpoolRecord,
  type WireParams,
} from '../../src/spool/record.js';
import { QueryBatchError } from '../../src/errors.js';
import { thrown } from './thrown.js';

const ID = '01JD0000000000000000000000';
const ID2 = '01JD7Z3K2M4N5P6Q7R8S9TVWXY';

/** Encodes then decodes as a file would: through JSON text. */
function roundTrip(params: unknown): ParamValue[] | Record<string, ParamValue> {
  const wire = encodeParams(params);
  return decodeParams(JSON.parse(JSON.stringify(wire)) as WireParams);
}

function baseRecord(overrides: Partial<SpoolRecord> = {}): SpoolRecord {
  return {
    format: FORMAT,
    id: ID,
    datasource: 'main',
    sql: 'INSERT INTO t (a, b) VALUES (?, ?)',
    params: [1, 'two'],
    createdAt: '2026-11-22T08:30:00.123Z',
    attempts: 0,
    ...overrides,
  };
}

/** The JSON object of a valid file, for editing. */
function fileObject(record: SpoolRecord = baseRecord()): Record<string, unknown> {
  return JSON.parse(encodeRecord(record)) as Record<string, unknown>;
}

function expectInvalid(text: string, fragment: string | RegExp): QueryBatchError {
  const error = thrown(() => decodeRecord(text));
  expect(error.code).toBe('INVALID_SPOOL_FILE');
  if (typeof fragment === 'string') expect(error.message).toContain(fragment);
  else expect(error.message).toMatch(fragment);
  return error;
}

describe('constants', () => {
  it('names the format and extension', () => {
    expect(FORMAT).toBe('querybatch/1');
    expect(SPOOL_EXTENSION).toBe('.batchsql');
  });

  it('DATASOURCE_NAME_PATTERN accepts names of letters, digits, _ and - up to 64 characters', () => {
    expect(DATASOURCE_NAME_PATTERN.test('main')).toBe(true);
    expect(DATASOURCE_NAME_PATTERN.test('_a-b_9')).toBe(true);
    expect(DATASOURCE_NAME_PATTERN.test('a'.repeat(64))).toBe(true);
    expect(DATASOURCE_NAME_PATTERN.test('a'.repeat(65))).toBe(false);
    expect(DATASOURCE_NAME_PATTERN.test('-main')).toBe(false);
    expect(DATASOURCE_NAME_PATTERN.test('')).toBe(false);
    expect(DATASOURCE_NAME_PATTERN.test('ma in')).toBe(false);
    expect(DATASOURCE_NAME_PATTERN.test('../x')).toBe(false);
    expect(DATASOURCE_NAME_PATTERN.test('a/b')).toBe(false);
  });
});

describe('encodeParams', () => {
  it('treats undefined and null params as no params', () => {
    expect(encodeParams(undefined)).toEqual([]);
    expect(encodeParams(null)).toEqual([]);
    expect(encodeParams([])).toEqual([]);
    expect(encodeParams({})).toEqual({});
  });

  it('passes JSON scalars through unchanged', () => {
    expect(encodeParams([null, true, false, 0, -3, 1.5, 2 ** 53 - 1, '', 'x'])).toEqual([
      null, true, false, 0, -3, 1.5, 2 ** 53 - 1, '', 'x',
    ]);
  });

  it('tags Date, bytes and bigint', () => {
    expect(encodeParams([
      new Date('2026-01-02T03:04:05.678Z'),
      Buffer.from([0, 1, 2, 255]),
      123n,
      -5n,
    ])).toEqual([
      { $date: '2026-01-02T03:04:05.678Z' },
      { $bytes: 'AAEC/w==' },
      { $bigint: '123' },
      { $bigint: '-5' },
    ]);
  });

  it('encodes only the viewed bytes of a Uint8Array that is a slice of a larger buffer', () => {
    const whole = new Uint8Array([10, 20, 30, 40, 50]);
    const slice = whole.subarray(1, 3);
    expect(encodeParams([slice])).toEqual([{ $bytes: Buffer.from([20, 30]).toString('base64') }]);
  });

  it('encodes named params by name', () => {
    expect(encodeParams({ name: 'alice', _n2: 2, at: new Date(0) })).toEqual({
      name: 'alice',
      _n2: 2,
      at: { $date: '1970-01-01T00:00:00.000Z' },
    });
  });

  it('accepts a null-prototype object as named params', () => {
    const params = Object.create(null) as Record<string, unknown>;
    params.x = 1;
    expect(encodeParams(params)).toEqual({ x: 1 });
  });

  it.each([
    ['undefined', [1, undefined], 'params[1]', 'got undefined'],
    ['NaN', [NaN], 'params[0]', 'got NaN'],
    ['Infinity', [Infinity], 'params[0]', 'got Infinity'],
    ['-Infinity', ['a', 'b', -Infinity], 'params[2]', 'got -Infinity'],
    ['an invalid Date', [new Date('nope')], 'params[0]', 'got an invalid Date'],
    ['a plain object', [{ a: 1 }], 'params[0]', 'got a plain object'],
    ['a nested array', [[1, 2]], 'params[0]', 'got an array'],
    ['a function', [() => 1], 'params[0]', 'got a function'],
    ['a symbol', [Symbol('s')], 'params[0]', 'got a symbol'],
    ['a Map', [new Map()], 'params[0]', 'got an instance of Map'],
  ])('rejects %s as a positional param with UNSERIALIZABLE_PARAM', (_label, params, where, got) => {
    const error = thrown(() => encodeParams(params));
    expect(error.code).toBe('UNSERIALIZABLE_PARAM');
    expect(error.message).toContain(`Expected ${where} to be`);
    expect(error.message).toContain(got);
    expect(error.isUsageError).toBe(true);
  });

  it.each([
    ['undefined', undefined, 'got undefined'],
    ['NaN', NaN, 'got NaN'],
    ['an invalid Date', new Date(Number.NaN), 'got an invalid Date'],
    ['a plain object', { nested: true }, 'got a plain object'],
    ['an array', [1], 'got an array'],
  ])('rejects %s as a named param, naming it', (_label, value, got) => {
    const error = thrown(() => encodeParams({ ok: 1, bad: value }));
    expect(error.code).toBe('UNSERIALIZABLE_PARAM');
    expect(error.message).toContain('params.bad');
    expect(error.message).toContain(got);
  });

  it.each(['1abc', 'a-b', 'a b', '', 'na.me', 'é', ':name'])('rejects the named param name %j', (name) => {
    const error = thrown(() => encodeParams({ [name]: 1 }));
    expect(error.code).toBe('UNSERIALIZABLE_PARAM');
    expect(error.message).toContain('Expected named param names like :name');
    expect(error.message).toContain(`got ${JSON.stringify(name)}`);
  });

  it.each([
    ['a string', 'abc'],
    ['a number', 1],
    ['a Map', new Map([['a', 1]])],
    ['a Date', new Date(0)],
    ['a Buffer', Buffer.from('x')],
  ])('rejects %s as the params container', (_label, params) => {
    const error = thrown(() => encodeParams(params));
    expect(error.code).toBe('UNSERIALIZABLE_PARAM');
    expect(error.message).toContain('Expected params to be an array (for ?) or a plain object (for :name)');
  });

  it('says what kind of container it got', () => {
    expect(thrown(() => encodeParams('abc')).message).toContain('got a string');
    expect(thrown(() => encodeParams(new Map())).message).toContain('got an instance of Map');
  });
});

describe('encodeParams/decodeParams round trip', () => {
  it('brings back a Date to the millisecond', () => {
    const date = new Date('2026-03-04T05:06:07.891Z');
    const [back] = roundTrip([date]) as ParamValue[];
    expect(back).toBeInstanceOf(Date);
    expect((back as Date).getTime()).toBe(date.getTime());
    expect((back as Date).getUTCMilliseconds()).toBe(891);
  });

  it('brings back dates before the epoch and far in the future', () => {
    const dates = [new Date(-1), new Date('1900-01-01T00:00:00.001Z'), new Date('9999-12-31T23:59:59.999Z')];
    const back = roundTrip(dates) as Date[];
    expect(back.map((d) => d.getTime())).toEqual(dates.map((d) => d.getTime()));
  });

  it('brings back a Buffer byte for byte, including every byte value', () => {
    const bytes = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    const [back, empty] = roundTrip([bytes, Buffer.alloc(0)]) as ParamValue[];
    expect(Buffer.isBuffer(back)).toBe(true);
    expect((back as Buffer).equals(bytes)).toBe(true);
    expect(Buffer.isBuffer(empty)).toBe(true);
    expect((empty as Buffer).length).toBe(0);
  });

  it('brings back a Uint8Array as a Buffer holding the same bytes', () => {
    const [back] = roundTrip([new Uint8Array([1, 2, 3])]) as ParamValue[];
    expect(Buffer.isBuffer(back)).toBe(true);
    expect([...(back as Buffer)]).toEqual([1, 2, 3]);
  });

  it('brings back bigints beyond 2^53 exactly, positive and negative', () => {
    const values = [2n ** 53n + 1n, 2n ** 64n + 12345n, -(2n ** 63n), -(2n ** 100n) - 7n, 0n, -1n];
    const back = roundTrip(values) as ParamValue[];
    expect(back).toEqual(values);
    for (const v of back) expect(typeof v).toBe('bigint');
  });

  it('brings back null, booleans and numbers', () => {
    const values = [null, true, false, 0, 42, -42.25, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE];
    expect(roundTrip(values)).toEqual(values);
  });

  it('brings back unicode text, including emoji, combining marks and ZWJ sequences', () => {
    const values = ['héllo wörld', '日本語のテキスト', '🎉', '👨‍👩‍👧‍👦', 'e\u0301', 'tab\tnl\nquote"backslash\\', '\u0000\u001f', '{"$date":"2026-01-01"}'];
    expect(roundTrip(values)).toEqual(values);
  });

  it('does not mistake a string that looks like a tag for a tag', () => {
    const [back] = roundTrip(['{"$bigint":"1"}']) as ParamValue[];
    expect(back).toBe('{"$bigint":"1"}');
  });

  it('brings back named params of every type', () => {
    const params = {
      s: 'ünï',
      n: 1.25,
      b: false,
      z: null,
      d: new Date('2026-12-31T23:59:59.999Z'),
      big: 9007199254740993n,
      bytes: Buffer.from('hello'),
    };
    const back = roundTrip(params) as Record<string, ParamValue>;
    expect(Object.keys(back)).toEqual(['s', 'n', 'b', 'z', 'd', 'big', 'bytes']);
    expect(back.s).toBe('ünï');
    expect(back.n).toBe(1.25);
    expect(back.b).toBe(false);
    expect(back.z).toBeNull();
    expect((back.d as Date).toISOString()).toBe('2026-12-31T23:59:59.999Z');
    expect(back.big).toBe(9007199254740993n);
    expect((back.bytes as Buffer).toString()).toBe('hello');
  });
});

describe('decodeParams rejects bad wire values', () => {
  it.each([
    ['an unknown tag', [{ $foo: 'x' }]],
    ['a tag with two keys', [{ $date: '2026-01-01T00:00:00Z', $bytes: '' }]],
    ['a $date that is not a date', [{ $date: 'nope' }]],
    ['a $date that is not a string', [{ $date: 0 }]],
    ['a $bigint with letters', [{ $bigint: '12a' }]],
    ['a $bigint that is a number', [{ $bigint: 12 }]],
    ['a $bigint with a decimal point', [{ $bigint: '1.5' }]],
    ['a $bytes that is not base64', [{ $bytes: 'not base64!' }]],
    ['a nested array', [[1]]],
    ['an empty object', [{}]],
  ])('rejects %s with INVALID_SPOOL_FILE', (_label, params) => {
    const error = thrown(() => decodeParams(params as unknown as WireParams));
    expect(error.code).toBe('INVALID_SPOOL_FILE');
    expect(error.message).toContain('Expected params[0] to be null, a boolean, a number, a string or a {"$date"|"$bytes"|"$bigint": string} tag');
    expect(error.message).toContain(`found ${JSON.stringify(params[0])}`);
  });

  it('names the bad named param', () => {
    const error = thrown(() => decodeParams({ when: { $date: 'nope' } }));
    expect(error.code).toBe('INVALID_SPOOL_FILE');
    expect(error.message).toContain('Expected params.when to be');
    expect(error.message).toContain('found {"$date":"nope"}');
  });

  it('cuts a long bad value to 80 characters in the message', () => {
    const long = { $foo: 'x'.repeat(500) };
    const error = thrown(() => decodeParams([long] as unknown as WireParams));
    expect(error.message).toContain(`found ${JSON.stringify(long).slice(0, 80)}`);
    expect(error.message).not.toContain('x'.repeat(100));
  });
});

describe('describeParams', () => {
  it('gives count and types of positional params', () => {
    const wire = encodeParams([1, 'a', null, true, new Date(0), Buffer.from('x'), 5n]);
    expect(describeParams(wire)).toBe('7[number,string,null,boolean,date,bytes,bigint]');
  });

  it('gives count, names and types of named params', () => {
    const wire = encodeParams({ by: 1, name: 'logins', at: new Date(0), big: 1n, raw: Buffer.alloc(1), none: null, yes: false });
    expect(describeParams(wire)).toBe('7{by:number,name:string,at:date,big:bigint,raw:bytes,none:null,yes:boolean}');
  });

  it('describes no params', () => {
    expect(describeParams([])).toBe('0[]');
    expect(describeParams({})).toBe('0{}');
  });

  it('never shows the values', () => {
    const text = describeParams(encodeParams(['secret-password', 123456789]));
    expect(text).toBe('2[string,number]');
    expect(text).not.toContain('secret');
    expect(text).not.toContain('123456789');
  });
});

describe('encodeRecord', () => {
  it('writes the canonical JSON with the checksum last and one trailing newline', () => {
    const record = baseRecord();
    const text = encodeRecord(record);
    const canonical = JSON.stringify({
      format: record.format,
      id: record.id,
      datasource: record.datasource,
      sql: record.sql,
      params: record.params,
      createdAt: record.createdAt,
      attempts: record.attempts,
    });
    expect(text).toBe(`${canonical.slice(0, -1)},"checksum":"${checksumOf(canonical)}"}\n`);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.indexOf('\n')).toBe(text.length - 1);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['format', 'id', 'datasource', 'sql', 'params', 'createdAt', 'attempts', 'checksum']);
  });

  it('builds the same text as JSON.stringify of the ordered fields, with or without the params JSON handed in', () => {
    const record = baseRecord({
      sql: 'INSERT INTO t VALUES (?, "\u2028é\\")',
      params: { a: { $date: '2026-11-22T08:30:00.000Z' }, b: null, c: 'x"y' },
      priority: 'immediate',
      timeoutMs: 5000,
      lastError: { class: 'sql', code: 'ER_DUP_ENTRY', message: 'dup "x"', errno: 1062, at: '2026-11-22T08:31:00.000Z' },
    });
    const canonical = JSON.stringify({
      format: record.format, id: record.id, datasource: record.datasource, sql: record.sql, params: record.params,
      createdAt: record.createdAt, attempts: record.attempts, priority: record.priority, timeoutMs: record.timeoutMs, lastError: record.lastError,
    });
    const expected = `${canonical.slice(0, -1)},"checksum":"${checksumOf(canonical)}"}\n`;
    expect(encodeRecord(record)).toBe(expected);
    expect(encodeRecord(record, JSON.stringify(record.params))).toBe(expected);
    expect(decodeRecord(expected)).toEqual(record);
  });

  it('uses a sha256 checksum in hex', () => {
    expect(checksumOf('')).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect((JSON.parse(encodeRecord(baseRecord())) as { checksum: string }).checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('writes optional fields only when set, in canonical order', () => {
    const text = encodeRecord(baseRecord({
      lastError: { class: 'connection', code: 'ECONNREFUSED', message: 'refused', at: '2026-11-22T08:31:00.000Z' },
      timeoutMs: 5000,
      webhook: 'https://hooks.example/qb',
      captureResult: true,
      priority: 'immediate',
    }));
    expect(Object.keys(JSON.parse(text) as object)).toEqual([
      'format', 'id', 'datasource', 'sql', 'params', 'createdAt', 'attempts', 'priority', 'timeoutMs', 'webhook', 'captureResult', 'lastError', 'checksum',
    ]);
  });

  it('gives different checksums for different content', () => {
    const a = JSON.parse(encodeRecord(baseRecord())) as { checksum: string };
    const b = JSON.parse(encodeRecord(baseRecord({ attempts: 1 }))) as { checksum: string };
    expect(a.checksum).not.toBe(b.checksum);
  });
});

describe('encodeRecord/decodeRecord round trip', () => {
  it('gives back the same record', () => {
    const record = baseRecord();
    expect(decodeRecord(encodeRecord(record))).toEqual(record);
  });

  it('gives back every optional field', () => {
    const record = baseRecord({
      id: ID2,
      datasource: 'reporting-2',
      attempts: 2,
      priority: 'normal',
      timeoutMs: 30_000,
      webhook: 'http://127.0.0.1:8080/done?x=1',
      captureResult: true,
      lastError: { class: 'sql', code: 'ER_NO_SUCH_TABLE', message: "Table 'x.t' doesn't exist", errno: 1146, sqlState: '42S02', at: '2026-11-22T08:31:00.000Z' },
    });
    expect(decodeRecord(encodeRecord(record))).toEqual(record);
  });

  it('gives back params of every kind, which then decode to the original values', () => {
    const values: ParamValue[] = [
      new Date('2026-05-06T07:08:09.010Z'), Buffer.from([0, 255, 128]), 2n ** 70n, -(2n ** 70n), null, true, false, '🎉 ünïcödé 日本', 3.5,
    ];
    const record = baseRecord({ sql: 'SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?', params: encodeParams(values) });
    const back = decodeRecord(encodeRecord(record));
    expect(back).toEqual(record);
    expect(decodeParams(back.params)).toEqual(values);
  });

  it('gives back named params', () => {
    const record = baseRecord({ sql: 'UPDATE c SET n = n + :by WHERE name = :name', params: encodeParams({ by: 1, name: 'logins' }) });
    const back = decodeRecord(encodeRecord(record));
    expect(back.params).toEqual({ by: 1, name: 'logins' });
    expect(decodeParams(back.params)).toEqual({ by: 1, name: 'logins' });
  });

  it('gives back unicode SQL with newlines and quotes', () => {
    const record = baseRecord({ sql: "INSERT INTO t VALUES ('😀 \"q\" \\ ')\n-- é\r\n;\u2028" });
    expect(decodeRecord(encodeRecord(record)).sql).toBe(record.sql);
  });

  it('accepts the same file hand-written with other field order, indentation and no trailing newline', () => {
    const data = fileObject(baseRecord({ priority: 'immediate' }));
    const reordered = {
      checksum: data.checksum, attempts: data.attempts, priority: data.priority, params: data.params, sql: data.sql,
      createdAt: data.createdAt, datasource: data.datasource, id: data.id, format: data.format,
    };
    expect(decodeRecord(JSON.stringify(reordered, null, 2))).toEqual(baseRecord({ priority: 'immediate' }));
  });
});

describe('decodeRecord rejects', () => {
  it('an empty file', () => {
    expectInvalid('', 'found an empty file');
  });

  it.each([' ', '\n', '\r\n\t  \n'])('a whitespace-only file %j', (text) => {
    expectInvalid(text, 'found an empty file');
  });

  it('every strict prefix of a valid file (a truncated write)', () => {
    const text = encodeRecord(baseRecord({
      params: encodeParams([new Date(1), Buffer.from('abc'), 10n ** 30n, 'ünï 🎉', null]),
      lastError: { class: 'connection', code: 'ECONNREFUSED', message: 'x', at: '2026-11-22T08:31:00.000Z' },
    }));
    // The JSON object ends at the closing brace; the newline after it is not content.
    const body = text.trimEnd();
    expect(body.length).toBe(text.length - 1);
    let checked = 0;
    for (let end = 0; end < body.length; end++) {
      const prefix = body.slice(0, end);
      let error: unknown;
      try {
        decodeRecord(prefix);
      } catch (e) {
        error = e;
      }
      expect(error, `prefix of length ${end} was accepted`).toBeInstanceOf(QueryBatchError);
      expect((error as QueryBatchError).code, `prefix of length ${end}`).toBe('INVALID_SPOOL_FILE');
      checked++;
    }
    expect(checked).toBe(body.length);
    expect(checked).toBeGreaterThan(300);
  });

  it('a truncated file with a message saying it is not valid JSON', () => {
    const text = encodeRecord(baseRecord());
    for (const end of [1, 10, Math.floor(text.length / 2), text.length - 2]) {
      expectInvalid(text.slice(0, end), 'found text that is not valid JSON');
    }
  });

  it('invalid JSON', () => {
    expectInvalid('{format: querybatch/1}', 'not valid JSON');
    expectInvalid('SELECT 1;', 'not valid JSON');
  });

  it.each([
    ['[]', 'found an array'],
    ['[{"format":"querybatch/1"}]', 'found an array'],
    ['null', 'found null'],
    ['"querybatch/1"', 'found a string'],
    ['42', 'found a number'],
    ['true', 'found a boolean'],
  ])('JSON that is not an object: %s', (text, found) => {
    expectInvalid(text, `Expected a querybatch/1 JSON object; ${found}`);
  });

  it('a wrong format version', () => {
    const data = fileObject();
    data.format = 'querybatch/2';
    expectInvalid(JSON.stringify(data), 'Expected format "querybatch/1"; found "querybatch/2"');
  });

  it('a missing format', () => {
    const data = fileObject();
    delete data.format;
    expectInvalid(JSON.stringify(data), 'Expected format "querybatch/1"; found no format field');
  });

  it('an unknown field', () => {
    const data = fileObject();
    data.extra = 1;
    expectInvalid(JSON.stringify(data), 'Unexpected field "extra" in a querybatch/1 file');
  });

  it.each([
    ['too short', '01JD000000000000000000000'],
    ['too long', '01JD00000000000000000000000'],
    ['lower case', '01jd0000000000000000000000'],
    ['with I, L, O or U', '01JD000000000000000000000U'],
    ['over the 48-bit time range', '81JD0000000000000000000000'],
    ['a number', 1],
    ['missing', undefined],
  ])('a bad id (%s)', (_label, id) => {
    const data = fileObject();
    if (id === undefined) delete data.id;
    else data.id = id;
    expectInvalid(JSON.stringify(data), `Expected id to be a 26-character ULID; found ${JSON.stringify(id)}`);
  });

  it.each([
    ['with a slash', '../etc'],
    ['empty', ''],
    ['starting with -', '-main'],
    ['with a space', 'ma in'],
    ['too long', 'a'.repeat(65)],
    ['a number', 7],
  ])('a bad datasource (%s)', (_label, datasource) => {
    const data = fileObject();
    data.datasource = datasource;
    expectInvalid(JSON.stringify(data), `Expected datasource to be a name (letters, digits, _ and -); found ${JSON.stringify(datasource)}`);
  });

  it.each([
    ['empty', ''],
    ['whitespace', ' \n\t'],
    ['not a string', 5],
    ['null', null],
  ])('a bad sql (%s)', (_label, sql) => {
    const data = fileObject();
    data.sql = sql;
    expectInvalid(JSON.stringify(data), `Expected sql to be a non-empty string; found ${JSON.stringify(sql)}`);
  });

  it('missing sql', () => {
    const data = fileObject();
    delete data.sql;
    expectInvalid(JSON.stringify(data), 'Expected sql to be a non-empty string');
  });

  it.each([
    ['a string', '1,2', 'a string'],
    ['a number', 1, 'a number'],
    ['null', null, 'null'],
    ['missing', undefined, 'undefined'],
  ])('bad params (%s)', (_label, params, found) => {
    const data = fileObject();
    if (params === undefined) delete data.params;
    else data.params = params;
    expectInvalid(JSON.stringify(data), `Expected params to be an array or an object; found ${found}`);
  });

  it('named params whose names spool() would refuse', () => {
    // Correctly checksummed, so only the name is wrong.
    expectInvalid(encodeRecord({ ...baseRecord(), params: { 'x-y': 1 } }), 'Expected named param names like :name (letters, digits, _); found "x-y"');
  });

  it.each([
    ['not a time', 'yesterday'],
    ['a number', 1700000000000],
    ['a date Date.parse reads but not ISO 8601', 'Nov 22 2026 08:30:00'],
  ])('a bad createdAt (%s)', (_label, createdAt) => {
    const data = fileObject();
    data.createdAt = createdAt;
    expectInvalid(JSON.stringify(data), `Expected createdAt to be an ISO 8601 time; found ${JSON.stringify(createdAt)}`);
  });

  it.each([
    ['negative', -1],
    ['fractional', 1.5],
    ['a string', '1'],
    ['null', null],
    ['beyond safe integers', 2 ** 53],
  ])('bad attempts (%s)', (_label, attempts) => {
    const data = fileObject();
    data.attempts = attempts;
    expectInvalid(JSON.stringify(data), `Expected attempts to be a whole number >= 0; found ${JSON.stringify(attempts)}`);
  });

  it('missing attempts', () => {
    const data = fileObject();
    delete data.attempts;
    expectInvalid(JSON.stringify(data), 'Expected attempts to be a whole number >= 0');
  });

  it('a bad priority', () => {
    const data = fileObject();
    data.priority = 'urgent';
    expectInvalid(JSON.stringify(data), 'Expected priority to be "normal" or "immediate"; found "urgent"');
  });

  it.each([false, 'yes', 1, null])('a captureResult other than true: %j', (captureResult) => {
    const data = fileObject();
    data.captureResult = captureResult;
    expectInvalid(JSON.stringify(data), `Expected captureResult to be true when present; found ${JSON.stringify(captureResult)}`);
  });

  it.each(['ftp://x/y', 'javascript:alert(1)', 42, ''])('a bad webhook %j', (webhook) => {
    const data = fileObject();
    data.webhook = webhook;
    expectInvalid(JSON.stringify(data), `Expected webhook to be an http:// or https:// URL; found ${JSON.stringify(webhook)}`);
  });

  it.each([0, -5, 1.5, '100'])('a bad timeoutMs %j', (timeoutMs) => {
    const data = fileObject();
    data.timeoutMs = timeoutMs;
    expectInvalid(JSON.stringify(data), `Expected timeoutMs to be a whole number > 0; found ${JSON.stringify(timeoutMs)}`);
  });

  it.each([
    ['a string', 'boom'],
    ['missing code', { class: 'sql', message: 'm', at: '2026-01-01T00:00:00Z' }],
    ['a numeric message', { class: 'sql', code: 'X', message: 1, at: '2026-01-01T00:00:00Z' }],
    ['an unknown class', { class: 'oops', code: 'X', message: 'm', at: '2026-01-01T00:00:00Z' }],
  ])('a bad lastError (%s)', (_label, lastError) => {
    const data = fileObject();
    data.lastError = lastError;
    expectInvalid(JSON.stringify(data), 'Expected lastError to be an object with class (connection, sql, invalid or timeout), code, message and at strings');
  });

  it('a missing checksum', () => {
    const data = fileObject();
    delete data.checksum;
    expectInvalid(JSON.stringify(data), 'Expected a checksum field ("sha256:<hex>"); found none');
  });

  it('a checksum that is not a string', () => {
    const data = fileObject();
    data.checksum = 12;
    expectInvalid(JSON.stringify(data), 'found none');
  });

  it('a file whose sql was edited after it was written', () => {
    const text = encodeRecord(baseRecord({ sql: 'DELETE FROM t WHERE id = 1' }));
    const edited = text.replace('id = 1', 'id > 0');
    expect(edited).not.toBe(text);
    const error = expectInvalid(edited, 'Checksum mismatch');
    expect(error.message).toContain('(edited or damaged)');
    const said = (JSON.parse(text) as { checksum: string }).checksum.slice(0, 20);
    expect(error.message).toContain(`the file says ${said}…`);
  });

  it('a file whose params or attempts were edited after it was written', () => {
    const data = fileObject();
    expectInvalid(JSON.stringify({ ...data, params: [1, 'three'] }), 'Checksum mismatch');
    expectInvalid(JSON.stringify({ ...data, attempts: 1 }), 'Checksum mismatch');
    expectInvalid(JSON.stringify({ ...data, priority: 'immediate' }), 'Checksum mismatch');
  });

  it('a checksum of the right shape but the wrong value', () => {
    const data = fileObject();
    data.checksum = 'sha256:' + '0'.repeat(64);
    expectInvalid(JSON.stringify(data), 'Checksum mismatch: the file says sha256:000000000000');
  });

  it.each([
    ['a $date that is not a date', [{ $date: 'nope' }], 'params[0]'],
    ['a $bigint that is not an integer', ['ok', { $bigint: '1e3' }], 'params[1]'],
    ['a $bytes that is not base64', [{ $bytes: '***' }], 'params[0]'],
    ['an unknown tag', [{ $regexp: 'a.*' }], 'params[0]'],
    ['a nested object', [{ a: 1, b: 2 }], 'params[0]'],
  ])('params with bad tags even when the checksum matches: %s', (_label, params, where) => {
    const text = encodeRecord(baseRecord({ params: params as unknown as WireParams }));
    expectInvalid(text, `Expected ${where} to be null, a boolean, a number, a string or a {"$date"|"$bytes"|"$bigint": string} tag`);
  });

  it('named params with a bad tag even when the checksum matches', () => {
    const text = encodeRecord(baseRecord({ params: { when: { $date: 'nope' } } as unknown as WireParams }));
    expectInvalid(text, 'Expected params.when to be');
  });
});
