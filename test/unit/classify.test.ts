import { describe, it, expect } from 'vitest';
import { classifyError } from '../../src/db/mysql/classify.js';
import { errorInfo } from '../../src/db/error-info.js';

/** An error shaped like the ones mysql2 and node:net throw. */
function dbError(message: string, fields: { code?: string; errno?: number; sqlState?: string; fatal?: boolean }): Error {
  return Object.assign(new Error(message), fields);
}

const NO_SUCH_TABLE = dbError("Table 'test.nope' doesn't exist", { code: 'ER_NO_SUCH_TABLE', errno: 1146, sqlState: '42S02' });
const PARSE_ERROR = dbError('You have an error in your SQL syntax', { code: 'ER_PARSE_ERROR', errno: 1064, sqlState: '42000' });
const DUP_ENTRY = dbError("Duplicate entry '1' for key 'PRIMARY'", { code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000' });

describe('classifyError in the connect phase', () => {
  it.each([
    ['a refused connection', dbError('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED', errno: -111 })],
    ['access denied', dbError('Access denied', { code: 'ER_ACCESS_DENIED_ERROR', errno: 1045, sqlState: '28000' })],
    ['an SQL error', NO_SUCH_TABLE],
    ['a parse error', PARSE_ERROR],
    ['a plain Error', new Error('boom')],
    ['a string', 'boom'],
    ['null', null],
    ['undefined', undefined],
  ])('is always connection: %s', (_label, error) => {
    expect(classifyError(error, 'connect')).toBe('connection');
  });
});

describe('classifyError in the execute phase', () => {
  it.each([
    ['ECONNREFUSED', dbError('connect ECONNREFUSED', { code: 'ECONNREFUSED' })],
    ['ECONNRESET', dbError('read ECONNRESET', { code: 'ECONNRESET' })],
    ['ETIMEDOUT', dbError('connect ETIMEDOUT', { code: 'ETIMEDOUT' })],
    ['EPIPE', dbError('write EPIPE', { code: 'EPIPE' })],
    ['PROTOCOL_CONNECTION_LOST', dbError('Connection lost: The server closed the connection.', { code: 'PROTOCOL_CONNECTION_LOST' })],
    ['PROTOCOL_SEQUENCE_TIMEOUT', dbError('Query inactivity timeout', { code: 'PROTOCOL_SEQUENCE_TIMEOUT' })],
    ['fatal: true with an SQL code', dbError('fatal', { code: 'ER_PARSE_ERROR', errno: 1064, fatal: true })],
    ['fatal: true with no code', dbError('fatal', { fatal: true })],
    ['ER_ACCESS_DENIED_ERROR', dbError('Access denied', { code: 'ER_ACCESS_DENIED_ERROR', errno: 1045, sqlState: '28000' })],
    ['errno 2013 alone', dbError('Lost connection to server during query', { errno: 2013 })],
    ['errno 2006 alone', dbError('server has gone away', { errno: 2006 })],
    ['errno 1927 alone', dbError('Connection was killed', { errno: 1927 })],
    ['errno 4031 alone', dbError('disconnected for inactivity', { errno: 4031 })],
    ['sqlState 08S01 alone', dbError('Communication link failure', { sqlState: '08S01' })],
    ['sqlState 08004 alone', dbError('rejected', { sqlState: '08004' })],
    ['ER_CON_COUNT_ERROR', dbError('Too many connections', { code: 'ER_CON_COUNT_ERROR', errno: 1040, sqlState: '08004' })],
    ['ER_CON_COUNT_ERROR by code only', dbError('Too many connections', { code: 'ER_CON_COUNT_ERROR' })],
    ['ER_SERVER_SHUTDOWN', dbError('Server shutdown in progress', { code: 'ER_SERVER_SHUTDOWN', errno: 1053, sqlState: '08S01' })],
    ['ER_SERVER_SHUTDOWN by code only', dbError('Server shutdown in progress', { code: 'ER_SERVER_SHUTDOWN' })],
    ['ER_CONNECTION_KILLED', dbError('Connection was killed', { code: 'ER_CONNECTION_KILLED', errno: 1927, sqlState: '70100' })],
    ['ER_CONNECTION_KILLED by code only', dbError('Connection was killed', { code: 'ER_CONNECTION_KILLED' })],
    ['ER_READ_ONLY_MODE', dbError('read only', { code: 'ER_READ_ONLY_MODE' })],
    ['a plain object with a connection code', { code: 'ECONNREFUSED', message: 'x' }],
  ])('is connection: %s', (_label, error) => {
    expect(classifyError(error, 'execute')).toBe('connection');
  });

  it.each([
    ['ER_NO_SUCH_TABLE', NO_SUCH_TABLE],
    ['ER_PARSE_ERROR', PARSE_ERROR],
    ['ER_DUP_ENTRY', DUP_ENTRY],
    ['ER_BAD_FIELD_ERROR', dbError("Unknown column 'x'", { code: 'ER_BAD_FIELD_ERROR', errno: 1054, sqlState: '42S22' })],
    // The statement's own fault, even though the words sound like the connection's:
    ['ER_BAD_DB_ERROR (CREATE TABLE typo_db.t)', dbError('Unknown database', { code: 'ER_BAD_DB_ERROR', errno: 1049, sqlState: '42000' })],
    ['ER_DBACCESS_DENIED_ERROR (CREATE DATABASE without the grant)', dbError('Access denied for user to database', { code: 'ER_DBACCESS_DENIED_ERROR', errno: 1044, sqlState: '42000' })],
    ['ER_NET_PACKET_TOO_LARGE, fatal', dbError('Got a packet bigger than max_allowed_packet', { code: 'ER_NET_PACKET_TOO_LARGE', errno: 1153, sqlState: '08S01', fatal: true })],
    ['fatal: false', dbError('x', { code: 'ER_PARSE_ERROR', fatal: false })],
    ['a sqlState that merely contains 08', dbError('x', { code: 'ER_X', sqlState: '42080' })],
    ['a plain Error', new Error('boom')],
    ['a string', 'boom'],
    ['null', null],
    ['a fatal flag that is a string, not true', { code: 'ER_X', fatal: 'true' }],
  ])('is sql: %s', (_label, error) => {
    expect(classifyError(error, 'execute')).toBe('sql');
  });

  it.each([
    ['ER_LOCK_DEADLOCK', dbError('Deadlock found when trying to get lock; try restarting transaction', { code: 'ER_LOCK_DEADLOCK', errno: 1213, sqlState: '40001' })],
    ['ER_LOCK_WAIT_TIMEOUT', dbError('Lock wait timeout exceeded; try restarting transaction', { code: 'ER_LOCK_WAIT_TIMEOUT', errno: 1205, sqlState: 'HY000' })],
    ['ER_TABLE_DEF_CHANGED', dbError('Table definition has changed, please retry transaction', { code: 'ER_TABLE_DEF_CHANGED', errno: 1412, sqlState: 'HY000' })],
    ['errno 1213 without a code', dbError('Deadlock', { errno: 1213 })],
    ['SQLSTATE 40001 (serialization failure)', dbError('x', { code: 'ER_X', sqlState: '40001' })],
  ])('is transient: %s', (_label, error) => {
    expect(classifyError(error, 'execute')).toBe('transient');
  });

  it('is connection, not transient, for a deadlock error while connecting or on a dead connection', () => {
    const deadlock = dbError('Deadlock', { code: 'ER_LOCK_DEADLOCK', errno: 1213, sqlState: '40001' });
    expect(classifyError(deadlock, 'connect')).toBe('connection');
    expect(classifyError({ ...deadlock, fatal: true }, 'execute')).toBe('connection');
  });
});

describe('errorInfo', () => {
  it('takes code, errno, sqlState, message and fatal from a database error', () => {
    expect(errorInfo(NO_SUCH_TABLE)).toEqual({
      code: 'ER_NO_SUCH_TABLE',
      errno: 1146,
      sqlState: '42S02',
      message: "Table 'test.nope' doesn't exist",
      fatal: false,
    });
    expect(errorInfo(dbError('gone', { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }))).toEqual({
      code: 'PROTOCOL_CONNECTION_LOST',
      message: 'gone',
      fatal: true,
    });
  });

  it('leaves out node errnos (negative) and zero', () => {
    const info = errorInfo(dbError('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED', errno: -111 }));
    expect(info).toEqual({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1', fatal: false });
    expect('errno' in info).toBe(false);
    expect('errno' in errorInfo({ errno: 0 })).toBe(false);
  });

  it('ignores a non-string sqlState and a non-number errno', () => {
    const info = errorInfo({ code: 'X', errno: '1146', sqlState: 8, message: 'm' });
    expect(info).toEqual({ code: 'X', message: 'm', fatal: false });
  });

  it('uses UNKNOWN for a missing or empty code', () => {
    expect(errorInfo(new Error('x')).code).toBe('UNKNOWN');
    expect(errorInfo(dbError('x', { code: '' })).code).toBe('UNKNOWN');
    expect(errorInfo({ code: 42, message: 'x' }).code).toBe('UNKNOWN');
  });

  it('joins the messages of an AggregateError whose own message is empty', () => {
    const aggregate = Object.assign(
      new AggregateError([
        dbError('connect ECONNREFUSED ::1:3306', { code: 'ECONNREFUSED' }),
        dbError('connect ECONNREFUSED 127.0.0.1:3306', { code: 'ECONNREFUSED' }),
      ], ''),
      { code: 'ECONNREFUSED' },
    );
    expect(aggregate.message).toBe('');
    const info = errorInfo(aggregate);
    expect(info.message).toBe('connect ECONNREFUSED ::1:3306; connect ECONNREFUSED 127.0.0.1:3306');
    expect(info.code).toBe('ECONNREFUSED');
    expect(classifyError(aggregate, 'execute')).toBe('connection');
  });

  it('uses non-Error members of an AggregateError as they are', () => {
    const info = errorInfo(new AggregateError(['first', 2], ''));
    expect(info.message).toBe('first; 2');
  });

  it('keeps the message of an AggregateError that has one', () => {
    expect(errorInfo(new AggregateError([new Error('inner')], 'outer')).message).toBe('outer');
  });

  it('falls back to "unknown error" when nothing says what happened', () => {
    expect(errorInfo(new Error('')).message).toBe('unknown error');
    expect(errorInfo(new AggregateError([], '')).message).toBe('unknown error');
  });

  it('describes thrown non-errors', () => {
    expect(errorInfo('boom')).toEqual({ code: 'UNKNOWN', message: 'boom', fatal: false });
    expect(errorInfo(42).message).toBe('42');
    expect(errorInfo(null)).toEqual({ code: 'UNKNOWN', message: 'null', fatal: false });
    expect(errorInfo(undefined)).toEqual({ code: 'UNKNOWN', message: 'undefined', fatal: false });
  });
});
