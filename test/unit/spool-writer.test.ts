import { describe, it, expect } from 'vitest';
import { buildRecord, encodeWithinLimit } from '../../src/spool/writer.js';
import { resolveConfig } from '../../src/config.js';
import { decodeParams, decodeRecord, encodeRecord } from '../../src/spool/record.js';
import type { ResolvedConfig, SpoolOptions } from '../../src/interfaces.js';
import { expectError } from './thrown.js';

const ID = '01JD7Z3K2M4N5P6Q7R8S9TVWXY';
const NOW = new Date('2026-11-22T08:30:00.123Z');
const URL = 'mysql://app:secret@127.0.0.1:3306/test';

function config(overrides: { datasources?: Record<string, string>; maxSqlBytes?: number; maxParamsBytes?: number; maxFileBytes?: number; defaultDatasource?: string } = {}): ResolvedConfig {
  return resolveConfig({
    configFile: false,
    home: '/nonexistent/querybatch-unit',
    datasources: overrides.datasources ?? { main: URL },
    ...(overrides.defaultDatasource !== undefined && { defaultDatasource: overrides.defaultDatasource }),
    limits: {
      ...(overrides.maxSqlBytes !== undefined && { maxSqlBytes: overrides.maxSqlBytes }),
      ...(overrides.maxParamsBytes !== undefined && { maxParamsBytes: overrides.maxParamsBytes }),
      ...(overrides.maxFileBytes !== undefined && { maxFileBytes: overrides.maxFileBytes }),
    },
  });
}

function build(cfg: ResolvedConfig, sql: unknown, params: unknown, options: SpoolOptions = {}) {
  return buildRecord(cfg, sql, params, options, ID, NOW);
}

describe('buildRecord builds a record', () => {
  it('with every required field, params in wire form and no optional fields', () => {
    expect(build(config(), 'INSERT INTO t VALUES (?, ?, ?)', [1, new Date(0), 5n])).toEqual({
      format: 'querybatch/1',
      id: ID,
      datasource: 'main',
      sql: 'INSERT INTO t VALUES (?, ?, ?)',
      params: [1, { $date: '1970-01-01T00:00:00.000Z' }, { $bigint: '5' }],
      createdAt: '2026-11-22T08:30:00.123Z',
      attempts: 0,
    });
  });

  it('with no params as []', () => {
    expect(build(config(), 'SELECT 1', undefined).params).toEqual([]);
    expect(build(config(), 'SELECT 1', null).params).toEqual([]);
  });

  it('with named params', () => {
    expect(build(config(), 'UPDATE c SET n = n + :by WHERE name = :name', { by: 1, name: 'logins' }).params).toEqual({ by: 1, name: 'logins' });
  });

  it('on the datasource asked for, or else the default one', () => {
    const cfg = config({ datasources: { main: URL, reporting: URL } });
    expect(build(cfg, 'SELECT 1', []).datasource).toBe('main');
    expect(build(cfg, 'SELECT 1', [], { datasource: 'reporting' }).datasource).toBe('reporting');
    const only = config({ datasources: { reporting: URL } });
    expect(build(only, 'SELECT 1', []).datasource).toBe('reporting');
  });

  it('with priority and timeoutMs when given', () => {
    const record = build(config(), 'SELECT 1', [], { priority: 'immediate', timeoutMs: 5000 });
    expect(record.priority).toBe('immediate');
    expect(record.timeoutMs).toBe(5000);
    expect('priority' in build(config(), 'SELECT 1', [])).toBe(false);
    expect('timeoutMs' in build(config(), 'SELECT 1', [])).toBe(false);
  });

  it('that survives encodeRecord/decodeRecord with its params intact', () => {
    const params = [new Date('2026-01-01T00:00:00.001Z'), Buffer.from('bytes'), 2n ** 64n, '🎉', null, true];
    const record = build(config(), 'INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)', params, { priority: 'normal' });
    const back = decodeRecord(encodeRecord(record));
    expect(back).toEqual(record);
    expect(decodeParams(back.params)).toEqual(params);
  });

  it('with SQL exactly at the byte limit, counting UTF-8 bytes', () => {
    expect(build(config({ maxSqlBytes: 10 }), 'SELECT 1;;', []).sql).toBe('SELECT 1;;');
    // 10 characters, 11 bytes
    expect(build(config({ maxSqlBytes: 11 }), "SELECT 'é'", []).sql).toBe("SELECT 'é'");
    expectError(() => build(config({ maxSqlBytes: 10 }), "SELECT 'é'", []), 'SQL_TOO_LARGE', 'got 11 bytes');
  });

  it('with SQL over 1 MiB when limits.maxSqlBytes is not set (the default): the server\'s max_allowed_packet bounds it when it runs', () => {
    const sql = `INSERT INTO t VALUES ('${'x'.repeat(1536 * 1024)}')`;
    expect(build(config(), sql, []).sql).toBe(sql);
  });

  it('with params exactly at the byte limit', () => {
    // JSON.stringify(['abcdefghij']) is 14 bytes
    expect(build(config({ maxParamsBytes: 14 }), 'SELECT ?', ['abcdefghij']).params).toEqual(['abcdefghij']);
  });
});

describe('buildRecord rejects', () => {
  it.each([
    ['an empty string', '', 'got an empty string'],
    ['whitespace', ' \n\t ', 'got only whitespace (" \\n\\t ")'],
    ['undefined', undefined, 'got undefined'],
    ['null', null, 'got null'],
    ['a number', 42, 'got a number'],
    ['an array', ['SELECT 1'], 'got an array'],
  ])('SQL that is %s with EMPTY_SQL', (_label, sql, got) => {
    const error = expectError(() => build(config(), sql, []), 'EMPTY_SQL', 'Expected SQL to be a non-empty string', got);
    expect(error.isUsageError).toBe(true);
  });

  it('SQL over limits.maxSqlBytes with SQL_TOO_LARGE, saying the limit and the size', () => {
    expectError(
      () => build(config({ maxSqlBytes: 10 }), 'SELECT 12345', []),
      'SQL_TOO_LARGE',
      'Expected SQL of at most 10 bytes (limits.maxSqlBytes)',
      'got 12 bytes',
    );
  });

  it('SQL over the limit in UTF-8 bytes though not in characters', () => {
    // 10 characters, 13 bytes
    expectError(() => build(config({ maxSqlBytes: 10 }), "SELECT '🎉'", []), 'SQL_TOO_LARGE', 'at most 10 bytes', 'got 13 bytes');
  });

  it('SQL larger than a spool file may be with SQL_TOO_LARGE, when limits.maxSqlBytes is not set', () => {
    expectError(
      () => build(config({ maxFileBytes: 100 }), `SELECT '${'x'.repeat(100)}'`, []),
      'SQL_TOO_LARGE',
      'Expected SQL of at most 100 bytes (limits.maxFileBytes: its spool file must fit; limits.maxSqlBytes is not set)',
      'got 109 bytes',
    );
  });

  it('a record whose file would pass limits.maxFileBytes, naming the SQL or the params, whichever takes more of it', () => {
    const cfg = config({ maxFileBytes: 300 });
    const sql = `SELECT '${'"'.repeat(90)}'`; // within 300 bytes, but each quote takes two as JSON
    expect(encodeWithinLimit(config(), build(cfg, sql, [])).length).toBeGreaterThan(300);
    expectError(() => encodeWithinLimit(cfg, build(cfg, sql, [])), 'SQL_TOO_LARGE', 'Expected a spool file of at most 300 bytes (limits.maxFileBytes); this job would take');
    expectError(() => encodeWithinLimit(cfg, build(cfg, 'SELECT ?', ['y'.repeat(250)])), 'PARAMS_TOO_LARGE', 'at most 300 bytes (limits.maxFileBytes)');
  });

  it('params over limits.maxParamsBytes with PARAMS_TOO_LARGE, saying the limit and the size', () => {
    expectError(
      () => build(config({ maxParamsBytes: 13 }), 'SELECT ?', ['abcdefghij']),
      'PARAMS_TOO_LARGE',
      'Expected params of at most 13 bytes encoded (limits.maxParamsBytes)',
      'got 14 bytes',
    );
  });

  it('params whose encoded form is over the limit (a Buffer grows by base64)', () => {
    // 30 bytes -> 40 base64 characters -> ["$bytes":"..."] of 53 bytes
    const wire = JSON.stringify([{ $bytes: Buffer.alloc(30).toString('base64') }]);
    expectError(
      () => build(config({ maxParamsBytes: 40 }), 'SELECT ?', [Buffer.alloc(30)]),
      'PARAMS_TOO_LARGE',
      'at most 40 bytes',
      `got ${Buffer.byteLength(wire)} bytes`,
    );
  });

  it('a datasource that is not configured with UNKNOWN_DATASOURCE, naming the configured ones', () => {
    expectError(
      () => build(config({ datasources: { main: URL, reporting: URL } }), 'SELECT 1', [], { datasource: 'other' }),
      'UNKNOWN_DATASOURCE',
      'Expected a configured datasource (main, reporting)',
      'got "other"',
    );
  });

  it('any datasource when none are configured', () => {
    expectError(
      () => build(config({ datasources: {} }), 'SELECT 1', []),
      'UNKNOWN_DATASOURCE',
      'none are configured',
      'got "main"',
    );
  });

  it.each([
    ['undefined', [1, undefined], 'params[1]', 'got undefined'],
    ['NaN', [NaN], 'params[0]', 'got NaN'],
    ['a plain object', [{ a: 1 }], 'params[0]', 'got a plain object'],
    ['a function', [() => 0], 'params[0]', 'got a function'],
    ['an invalid Date', [new Date('x')], 'params[0]', 'got an invalid Date'],
    ['a named undefined', { when: undefined }, 'params.when', 'got undefined'],
  ])('a param that is %s with UNSERIALIZABLE_PARAM', (_label, params, where, got) => {
    expectError(() => build(config(), 'SELECT ?', params), 'UNSERIALIZABLE_PARAM', `Expected ${where} to be`, got);
  });

  it.each([
    ['a lone high surrogate', ['ab\uD800'], 'params[0]', 'got a lone surrogate U+D800 at index 2'],
    ['a lone low surrogate', { name: '\uDC00x' }, 'params.name', 'got a lone surrogate U+DC00 at index 0'],
    ['a reversed pair', ['\uDE00\uD83D'], 'params[0]', 'got a lone surrogate U+DE00 at index 0'],
  ])('a string param with %s with UNSERIALIZABLE_PARAM (UTF-8 would bring back U+FFFD)', (_label, params, where, got) => {
    expectError(() => build(config(), 'SELECT ?', params), 'UNSERIALIZABLE_PARAM', `Expected ${where} to be well-formed UTF-16`, got);
  });

  it('nothing for a string param with a surrogate pair (kept as it is)', () => {
    expect(build(config(), 'SELECT ?', ['a\uD83D\uDE00b']).params).toEqual(['a\u{1F600}b']);
  });

  it('params that are neither an array nor a plain object with UNSERIALIZABLE_PARAM', () => {
    expectError(() => build(config(), 'SELECT ?', 'alice'), 'UNSERIALIZABLE_PARAM', 'Expected params to be an array', 'got a string');
  });

  it('a bad named param name with UNSERIALIZABLE_PARAM', () => {
    expectError(() => build(config(), 'SELECT :a-b', { 'a-b': 1 }), 'UNSERIALIZABLE_PARAM', 'Expected named param names like :name', 'got "a-b"');
  });

  it('a bad priority or timeoutMs with CONFIG_INVALID', () => {
    expectError(
      () => build(config(), 'SELECT 1', [], { priority: 'urgent' as 'normal' }),
      'CONFIG_INVALID',
      'Expected priority to be "normal" or "immediate"; got "urgent"',
    );
    expectError(() => build(config(), 'SELECT 1', [], { timeoutMs: 0 }), 'CONFIG_INVALID', 'Expected timeoutMs to be a whole number > 0; got 0');
    expectError(() => build(config(), 'SELECT 1', [], { timeoutMs: 2.5 }), 'CONFIG_INVALID', 'got 2.5');
  });
});

describe('buildRecord refuses names that are object internals', () => {
  it('an inherited property is not a datasource', () => {
    expectError(() => build(config(), 'SELECT 1', [], { datasource: 'constructor' }), 'UNKNOWN_DATASOURCE', 'got "constructor"');
    expectError(() => build(config(), 'SELECT 1', [], { datasource: 'toString' }), 'UNKNOWN_DATASOURCE');
  });

  it('a __proto__ named param is refused, not silently dropped', () => {
    const params = JSON.parse('{"__proto__": 1, "a": 2}') as Record<string, number>;
    expectError(() => build(config(), 'SELECT :a', params), 'UNSERIALIZABLE_PARAM', '"__proto__"');
  });
});
