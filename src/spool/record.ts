import { createHash } from 'node:crypto';
import { QueryBatchError, describeValue } from '../errors.js';
import { isId } from './id.js';
import { RECORDED_FAILURE_CLASSES, type Failure, type RecordedFailureClass } from './failure.js';

/**
 * The spool file format querybatch/1 (docs/spool-format.md): one JSON object, UTF-8, with
 * a sha256 checksum over the canonical encoding of every other field. Pure: no disk, no
 * database.
 */
export const FORMAT = 'querybatch/1';
export const SPOOL_EXTENSION = '.batchsql';

/** A value a statement can be bound to. */
export type ParamValue = null | boolean | number | string | bigint | Date | Buffer | Uint8Array;
/** Positional (`?`) or named (`:name`) params. */
export type Params = readonly ParamValue[] | { readonly [name: string]: ParamValue };

/** A param as stored in the file: JSON, with Date, bytes and bigint tagged. */
export type WireValue = null | boolean | number | string | { $date: string } | { $bytes: string } | { $bigint: string };
export type WireParams = WireValue[] | { [name: string]: WireValue };

export type Priority = 'normal' | 'immediate';

/**
 * A script job (spool/script-file.ts): its statements are the file's body, after the
 * header (this record) and the progress line; the record's `sql` is empty.
 */
export interface ScriptMeta {
  /** The body's size in bytes. */
  readonly bytes: number;
  /** sha256 of the body, "sha256:<hex>". */
  readonly sha256: string;
  /** How many statements the body holds. */
  readonly statements: number;
}

/** What the runner recorded about the last failure of a job. */
export interface LastError extends Failure {
  readonly class: RecordedFailureClass;
}

/** The fields of a spool file, params in their wire form. */
export interface SpoolRecord {
  readonly format: typeof FORMAT;
  readonly id: string;
  readonly datasource: string;
  readonly sql: string;
  readonly params: WireParams;
  readonly createdAt: string;
  readonly attempts: number;
  readonly priority?: Priority;
  readonly timeoutMs?: number;
  /** An http(s) URL told when the job succeeds or fails. */
  readonly webhook?: string;
  /** Store the statement's result rows as pages (ops/results.ts); always `true` when present. */
  readonly captureResult?: true;
  /** The idempotency key it was spooled with (spool/keys.ts), for information: the key's marker is what dedups. */
  readonly key?: string;
  /** Not to run before this ISO time (spool/delayed.ts): while not due, the file waits in spool/.delayed/. */
  readonly runAt?: string;
  /** Set for a script: the statements are in the file's body (spool/script-file.ts). */
  readonly script?: ScriptMeta;
  readonly lastError?: LastError;
}

/** The longest idempotency key, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 256;

/** An idempotency key: a string of 1 to MAX_KEY_LENGTH characters, well-formed UTF-16 (the file is UTF-8). */
export function isKey(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= MAX_KEY_LENGTH && !LONE_SURROGATE.test(value);
}

export const DATASOURCE_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;
const PARAM_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Names that would collide with JavaScript object internals ("constructor", "__proto__", …). */
function isObjectProperty(name: string): boolean {
  return name in Object.prototype || name === '__proto__' || name === 'prototype';
}

/** A datasource name: letters, digits, _ and -, at most 64, not an object property name. */
export function isDatasourceName(name: unknown): name is string {
  return typeof name === 'string' && DATASOURCE_NAME_PATTERN.test(name) && !isObjectProperty(name);
}

/** A named param: letters, digits and _, not starting with a digit; not __proto__ (it would set the params object's prototype). */
function isParamName(name: string): boolean {
  return PARAM_NAME_PATTERN.test(name) && name !== '__proto__';
}
const ISO_TIME_PATTERN = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

const FIELDS = new Set([
  'format', 'id', 'datasource', 'sql', 'params', 'createdAt', 'attempts', 'priority', 'timeoutMs', 'webhook', 'captureResult', 'key', 'runAt', 'script', 'lastError', 'checksum',
]);

function invalid(message: string): QueryBatchError {
  return new QueryBatchError('INVALID_SPOOL_FILE', message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------------------
// Params

/**
 * The `{"$date"|"$bytes"|"$bigint": string}` tag of a value JSON can't carry (a valid Date,
 * bytes, a bigint), or undefined for anything else. Shared with result pages (ops/results.ts).
 */
export function tagOf(value: unknown): { $date: string } | { $bytes: string } | { $bigint: string } | undefined {
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : { $date: value.toISOString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  return undefined;
}

/** The value a well-formed tag stands for, or undefined when `value` is not one. */
export function untag(value: unknown): Date | Buffer | bigint | undefined {
  if (!isPlainObject(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const tag = value[keys[0]!];
  if (typeof tag !== 'string') return undefined;
  if (keys[0] === '$date') {
    const date = new Date(tag);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  if (keys[0] === '$bytes' && /^[A-Za-z0-9+/]*={0,2}$/.test(tag)) return Buffer.from(tag, 'base64');
  if (keys[0] === '$bigint' && /^-?\d+$/.test(tag)) return BigInt(tag);
  return undefined;
}

/** A UTF-16 surrogate not part of a pair (with the u flag, a well-formed pair is one code point). */
const LONE_SURROGATE = /\p{Cs}/u;

function encodeValue(value: unknown, where: string): WireValue {
  if (typeof value === 'string') {
    // UTF-8 can't hold a lone surrogate: the file would bring back U+FFFD instead.
    const lone = LONE_SURROGATE.exec(value);
    if (lone === null) return value;
    const unit = lone[0].charCodeAt(0).toString(16).toUpperCase();
    throw new QueryBatchError('UNSERIALIZABLE_PARAM', `Expected ${where} to be well-formed UTF-16 (a string UTF-8 can hold); got a lone surrogate U+${unit} at index ${lone.index}`);
  }
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  const tag = tagOf(value);
  if (tag !== undefined) return tag;
  throw new QueryBatchError(
    'UNSERIALIZABLE_PARAM',
    `Expected ${where} to be a string, finite number, bigint, boolean, null, valid Date or Buffer; got ${describeValue(value)}`,
  );
}

/** Params into their wire form. Throws UNSERIALIZABLE_PARAM naming the offending param. */
export function encodeParams(params: unknown): WireParams {
  if (params === undefined || params === null) return [];
  if (Array.isArray(params)) return params.map((value, i) => encodeValue(value, `params[${i}]`));
  if (isPlainObject(params)) {
    const out: Record<string, WireValue> = {};
    for (const [name, value] of Object.entries(params)) {
      if (!isParamName(name)) {
        throw new QueryBatchError('UNSERIALIZABLE_PARAM', `Expected named param names like :name (letters, digits, _); got ${JSON.stringify(name)}`);
      }
      out[name] = encodeValue(value, `params.${name}`);
    }
    return out;
  }
  throw new QueryBatchError('UNSERIALIZABLE_PARAM', `Expected params to be an array (for ?) or a plain object (for :name); got ${describeValue(params)}`);
}

function decodeValue(value: unknown, where: string): ParamValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  const untagged = untag(value);
  if (untagged !== undefined) return untagged;
  // JSON.parse reads a number past a double's range (1e400) as Infinity, which JSON would show as null.
  const found = typeof value === 'number' ? `${value}, a number out of range of a double` : JSON.stringify(value)?.slice(0, 80);
  throw invalid(`Expected ${where} to be null, a boolean, a number, a string or a {"$date"|"$bytes"|"$bigint": string} tag; found ${found}`);
}

/** Wire params back into values to bind. Throws INVALID_SPOOL_FILE. */
export function decodeParams(params: WireParams): ParamValue[] | Record<string, ParamValue> {
  if (Array.isArray(params)) return params.map((value, i) => decodeValue(value, `params[${i}]`));
  const out: Record<string, ParamValue> = {};
  for (const [name, value] of Object.entries(params)) {
    if (!isParamName(name)) throw invalid(`Expected named param names like :name (letters, digits, _); found ${JSON.stringify(name)}`);
    out[name] = decodeValue(value, `params.${name}`);
  }
  return out;
}

/** Count and types only: what the error log shows of params unless told otherwise. */
export function describeParams(params: WireParams): string {
  const typeOf = (v: WireValue): string => {
    if (v === null) return 'null';
    if (typeof v === 'object') return Object.keys(v)[0]!.slice(1);
    return typeof v;
  };
  if (Array.isArray(params)) return `${params.length}[${params.map(typeOf).join(',')}]`;
  const entries = Object.entries(params);
  return `${entries.length}{${entries.map(([k, v]) => `${k}:${typeOf(v)}`).join(',')}}`;
}

// ---------------------------------------------------------------------------------------
// Records

/**
 * The canonical encoding the checksum covers: fields in this order, optional ones only when
 * set. Built field by field, which gives exactly JSON.stringify of the ordered object, so
 * that the params' JSON, already made once to check their size, is not made again.
 */
function canonical(record: SpoolRecord, paramsJson: string = JSON.stringify(record.params)): string {
  let out = `{"format":${JSON.stringify(record.format)},"id":${JSON.stringify(record.id)},"datasource":${JSON.stringify(record.datasource)}` +
    `,"sql":${JSON.stringify(record.sql)},"params":${paramsJson},"createdAt":${JSON.stringify(record.createdAt)},"attempts":${JSON.stringify(record.attempts)}`;
  if (record.priority !== undefined) out += `,"priority":${JSON.stringify(record.priority)}`;
  if (record.timeoutMs !== undefined) out += `,"timeoutMs":${JSON.stringify(record.timeoutMs)}`;
  if (record.webhook !== undefined) out += `,"webhook":${JSON.stringify(record.webhook)}`;
  if (record.captureResult !== undefined) out += ',"captureResult":true';
  if (record.key !== undefined) out += `,"key":${JSON.stringify(record.key)}`;
  if (record.runAt !== undefined) out += `,"runAt":${JSON.stringify(record.runAt)}`;
  if (record.script !== undefined) out += `,"script":{"bytes":${record.script.bytes},"sha256":${JSON.stringify(record.script.sha256)},"statements":${record.script.statements}}`;
  if (record.lastError !== undefined) out += `,"lastError":${JSON.stringify(record.lastError)}`;
  return out + '}';
}

export function checksumOf(canonicalJson: string): string {
  return 'sha256:' + createHash('sha256').update(canonicalJson, 'utf8').digest('hex');
}

/**
 * The file's text: the canonical JSON with the checksum as its last field, and a newline.
 * `paramsJson`, when given, must be JSON.stringify(record.params) (spool() has it already).
 */
export function encodeRecord(record: SpoolRecord, paramsJson?: string): string {
  const body = canonical(record, paramsJson);
  return `${body.slice(0, -1)},"checksum":"${checksumOf(body)}"}\n`;
}

function checkScript(value: unknown): ScriptMeta {
  if (!isPlainObject(value) || Object.keys(value).length !== 3 || !Number.isSafeInteger(value.bytes) || (value.bytes as number) < 1 ||
      typeof value.sha256 !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(value.sha256) || !Number.isSafeInteger(value.statements) || (value.statements as number) < 1) {
    throw invalid(`Expected script to be {"bytes": n > 0, "sha256": "sha256:<hex>", "statements": n > 0}; found ${JSON.stringify(value)?.slice(0, 120)}`);
  }
  return { bytes: value.bytes as number, sha256: value.sha256, statements: value.statements as number };
}

function checkLastError(value: unknown): LastError {
  if (!isPlainObject(value) || typeof value.class !== 'string' || !RECORDED_FAILURE_CLASSES.has(value.class) || typeof value.code !== 'string' ||
      typeof value.message !== 'string' || typeof value.at !== 'string') {
    throw invalid('Expected lastError to be an object with class (connection, sql, invalid or timeout), code, message and at strings');
  }
  return value as unknown as LastError;
}

/** Parses and checks a spool file's text. Throws INVALID_SPOOL_FILE saying what is wrong. */
export function decodeRecord(text: string): SpoolRecord {
  if (text.trim() === '') throw invalid('Expected a querybatch/1 JSON object; found an empty file');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw invalid(`Expected a querybatch/1 JSON object; found text that is not valid JSON (${(error as Error).message}), e.g. a truncated file`);
  }
  if (!isPlainObject(data)) throw invalid(`Expected a querybatch/1 JSON object; found ${describeValue(data)}`);
  if (data.format !== FORMAT) {
    throw invalid(`Expected format ${JSON.stringify(FORMAT)}; found ${data.format === undefined ? 'no format field' : JSON.stringify(data.format)}`);
  }
  for (const key of Object.keys(data)) {
    if (!FIELDS.has(key)) throw invalid(`Unexpected field ${JSON.stringify(key)} in a ${FORMAT} file`);
  }
  if (!isId(data.id)) throw invalid(`Expected id to be a 26-character ULID; found ${JSON.stringify(data.id)}`);
  if (!isDatasourceName(data.datasource)) {
    throw invalid(`Expected datasource to be a name (letters, digits, _ and -); found ${JSON.stringify(data.datasource)}`);
  }
  if (data.script !== undefined) {
    if (data.sql !== '') throw invalid(`Expected sql to be "" in a script's header (its statements follow it); found ${JSON.stringify(data.sql)?.slice(0, 80)}`);
  } else if (typeof data.sql !== 'string' || data.sql.trim() === '') {
    throw invalid(`Expected sql to be a non-empty string; found ${JSON.stringify(data.sql)}`);
  }
  if (!Array.isArray(data.params) && !isPlainObject(data.params)) {
    throw invalid(`Expected params to be an array or an object; found ${describeValue(data.params)}`);
  }
  if (typeof data.createdAt !== 'string' || !ISO_TIME_PATTERN.test(data.createdAt) || Number.isNaN(Date.parse(data.createdAt))) {
    throw invalid(`Expected createdAt to be an ISO 8601 time; found ${JSON.stringify(data.createdAt)}`);
  }
  if (!Number.isSafeInteger(data.attempts) || (data.attempts as number) < 0) {
    throw invalid(`Expected attempts to be a whole number >= 0; found ${JSON.stringify(data.attempts)}`);
  }
  if (data.priority !== undefined && data.priority !== 'normal' && data.priority !== 'immediate') {
    throw invalid(`Expected priority to be "normal" or "immediate"; found ${JSON.stringify(data.priority)}`);
  }
  if (data.timeoutMs !== undefined && (!Number.isSafeInteger(data.timeoutMs) || (data.timeoutMs as number) <= 0)) {
    throw invalid(`Expected timeoutMs to be a whole number > 0; found ${JSON.stringify(data.timeoutMs)}`);
  }
  if (data.webhook !== undefined && (typeof data.webhook !== 'string' || !/^https?:\/\/./.test(data.webhook))) {
    throw invalid(`Expected webhook to be an http:// or https:// URL; found ${JSON.stringify(data.webhook)?.slice(0, 80)}`);
  }
  if (data.captureResult !== undefined && data.captureResult !== true) {
    throw invalid(`Expected captureResult to be true when present; found ${JSON.stringify(data.captureResult)}`);
  }
  if (data.key !== undefined && !isKey(data.key)) {
    throw invalid(`Expected key to be a string of 1 to ${MAX_KEY_LENGTH} characters; found ${JSON.stringify(data.key)?.slice(0, 80)}`);
  }
  if (data.runAt !== undefined && (typeof data.runAt !== 'string' || !ISO_TIME_PATTERN.test(data.runAt) || Number.isNaN(Date.parse(data.runAt)))) {
    throw invalid(`Expected runAt to be an ISO 8601 time; found ${JSON.stringify(data.runAt)?.slice(0, 80)}`);
  }
  const record: SpoolRecord = {
    format: FORMAT,
    id: data.id,
    datasource: data.datasource,
    sql: data.sql,
    params: data.params as WireParams,
    createdAt: data.createdAt,
    attempts: data.attempts as number,
    ...(data.priority !== undefined && { priority: data.priority }),
    ...(data.timeoutMs !== undefined && { timeoutMs: data.timeoutMs as number }),
    ...(data.webhook !== undefined && { webhook: data.webhook }),
    ...(data.captureResult === true && { captureResult: true as const }),
    ...(data.key !== undefined && { key: data.key }),
    ...(data.runAt !== undefined && { runAt: data.runAt }),
    ...(data.script !== undefined && { script: checkScript(data.script) }),
    ...(data.lastError !== undefined && { lastError: checkLastError(data.lastError) }),
  };
  if (typeof data.checksum !== 'string') throw invalid('Expected a checksum field ("sha256:<hex>"); found none');
  const expected = checksumOf(canonical(record));
  if (data.checksum !== expected) {
    throw invalid(`Checksum mismatch: the file says ${data.checksum.slice(0, 20)}…, its content hashes to ${expected.slice(0, 20)}… (edited or damaged)`);
  }
  decodeParams(record.params); // every param must decode
  return record;
}

// ---------------------------------------------------------------------------------------
// Segments

/**
 * A job file's records, whatever its name (a drop-in, a file in failed/): one JSON object,
 * pretty-printed or not, or else a segment's lines (when its first line is a JSON object of
 * its own). Throws INVALID_SPOOL_FILE.
 */
export function decodeJobText(text: string): SpoolRecord[] {
  try {
    return [decodeRecord(text)];
  } catch (error) {
    const lines = linesOf(text);
    if (lines.length < 2 || !isJsonObject(lines[0]!)) throw error;
    return decodeSegment(text, lines.length);
  }
}

/** A segment's lines: split at newlines, without the empty string after the last one. */
function linesOf(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function isJsonObject(text: string): boolean {
  try {
    return isPlainObject(JSON.parse(text));
  } catch {
    return false;
  }
}

/**
 * Parses and checks a segment file's text: exactly `count` lines, each a valid record,
 * ids strictly increasing, one datasource. Throws INVALID_SPOOL_FILE naming the line.
 */
export function decodeSegment(text: string, count: number): SpoolRecord[] {
  const lines = linesOf(text);
  if (lines.length !== count) {
    throw invalid(`Expected a segment of ${count} jobs, one JSON object a line (the count its name gives); found ${lines.length} line${lines.length === 1 ? '' : 's'}`);
  }
  const records: SpoolRecord[] = [];
  for (const [i, line] of lines.entries()) {
    let record: SpoolRecord;
    try {
      record = decodeRecord(line);
    } catch (error) {
      throw invalid(`Line ${i + 1} of ${count} of the segment: ${(error as Error).message}`);
    }
    const previous = records.at(-1);
    if (previous !== undefined && (record.id <= previous.id || record.datasource !== previous.datasource)) {
      throw invalid(`Line ${i + 1} of ${count} of the segment: expected a job of datasource "${previous.datasource}" with an id after ${previous.id}; found ${record.id} of "${record.datasource}"`);
    }
    records.push(record);
  }
  return records;
}
