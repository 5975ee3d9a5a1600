import type { ErrorClass } from '../driver.js';
import { errorInfo } from '../error-info.js';

/**
 * Is a MySQL/MariaDB error about the connection (the statement never got a fair chance: retry
 * later), a transient one (a deadlock, a lock wait: run it again now), or about the statement
 * itself (it would fail again: move it to failed/)? Pure.
 */

const CONNECTION_CODES: ReadonlySet<string> = new Set([
  // Node socket errors
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN',
  'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ENOENT', // ENOENT: a unix socket path that is not there
  // mysql2 protocol states
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR', 'PROTOCOL_ENQUEUE_AFTER_QUIT',
  'POOL_CLOSED', 'HANDSHAKE_NO_SSL_SUPPORT',
  // Server errors that say "not now" or "not you", not "not this statement"
  'ER_ACCESS_DENIED_ERROR', 'ER_CON_COUNT_ERROR', 'ER_TOO_MANY_USER_CONNECTIONS',
  'ER_SERVER_SHUTDOWN', 'ER_NORMAL_SHUTDOWN', 'ER_SHUTDOWN_COMPLETE', 'ER_HOST_IS_BLOCKED', 'ER_HOST_NOT_PRIVILEGED',
  'ER_CONNECTION_KILLED', 'ER_NET_READ_ERROR', 'ER_NET_READ_INTERRUPTED', 'ER_NET_ERROR_ON_WRITE', 'ER_NET_WRITE_INTERRUPTED',
  'ER_NET_PACKETS_OUT_OF_ORDER', 'ER_OUT_OF_RESOURCES', 'ER_CANT_CREATE_THREAD', 'ER_OPTION_PREVENTS_STATEMENT',
  'ER_READ_ONLY_MODE',
]);

const CONNECTION_ERRNOS: ReadonlySet<number> = new Set([
  1040, // ER_CON_COUNT_ERROR
  1045, // ER_ACCESS_DENIED_ERROR
  1053, // ER_SERVER_SHUTDOWN
  1077, 1079, 1080, // shutdown in progress / complete
  1129, 1130, // host blocked / not privileged
  1152, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161, // network read/write errors (not 1153: see below)
  1203, // ER_TOO_MANY_USER_CONNECTIONS
  1927, // MariaDB ER_CONNECTION_KILLED
  2002, 2003, 2006, 2013, // client: can't connect, server gone away, lost connection
  4031, // MariaDB: disconnected for inactivity
]);

/**
 * Errors about the statement even when the server then drops the connection: retrying
 * can't help. A packet over max_allowed_packet (a huge param) is the statement's fault.
 */
const STATEMENT_CODES: ReadonlySet<string> = new Set(['ER_NET_PACKET_TOO_LARGE']);

/**
 * Errors the MySQL/MariaDB manuals answer with "try restarting transaction" / "please retry
 * transaction": the server rolled back the statement (1205, 1412) or the whole transaction
 * (1213), so nothing of it remains and running it again is safe.
 * - 1213 ER_LOCK_DEADLOCK, SQLSTATE 40001: "Deadlock found when trying to get lock; try
 *   restarting transaction" (InnoDB rolls back the victim's whole transaction).
 * - 1205 ER_LOCK_WAIT_TIMEOUT: "Lock wait timeout exceeded; try restarting transaction"
 *   (innodb_lock_wait_timeout, a metadata lock's lock_wait_timeout, or MariaDB's
 *   `FOR UPDATE WAIT n` / `NOWAIT`). Only the statement is rolled back unless
 *   innodb_rollback_on_timeout is on: the session rolls the rest of its transaction back
 *   (session.ts executeOnce), the ledger row with it.
 * - 1412 ER_TABLE_DEF_CHANGED: "Table definition has changed, please retry transaction".
 * Not here: 1614 ER_XA_RBDEADLOCK (XA transactions only, whose statements a job can't be
 * retried as), 1637 ER_TOO_MANY_CONCURRENT_TRXS (no advice to retry).
 */
const TRANSIENT_ERRNOS: ReadonlySet<number> = new Set([1205, 1213, 1412]);
const TRANSIENT_CODES: ReadonlySet<string> = new Set(['ER_LOCK_WAIT_TIMEOUT', 'ER_LOCK_DEADLOCK', 'ER_TABLE_DEF_CHANGED']);

/**
 * Classifies a failure. `phase` is where it happened: an error while connecting is always
 * a connection failure (access denied, unknown database included: the statement never got
 * a chance); during a statement it depends on the error. ER_BAD_DB_ERROR or
 * ER_DBACCESS_DENIED_ERROR from a statement (`CREATE TABLE otherdb.t`) is the statement's.
 */
export function classifyError(error: unknown, phase: 'connect' | 'execute'): ErrorClass {
  if (phase === 'connect') return 'connection';
  const info = errorInfo(error);
  if (STATEMENT_CODES.has(info.code) || info.errno === 1153) return 'sql';
  if (info.fatal) return 'connection';
  if (CONNECTION_CODES.has(info.code)) return 'connection';
  if (info.errno !== undefined && CONNECTION_ERRNOS.has(info.errno)) return 'connection';
  // SQLSTATE class 08 is "connection exception".
  if (info.sqlState?.startsWith('08')) return 'connection';
  // SQLSTATE 40001 is "serialization failure" (the transaction was rolled back).
  if (TRANSIENT_CODES.has(info.code) || (info.errno !== undefined && TRANSIENT_ERRNOS.has(info.errno)) || info.sqlState === '40001') return 'transient';
  return 'sql';
}
