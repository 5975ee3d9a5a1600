import type { ErrorClass } from '../driver.js';
import { errorInfo } from '../error-info.js';

/**
 * Is a PostgreSQL failure about the connection (retry later), transient (the server rolled
 * the statement back for a passing reason: run it again now), or the statement's own? pg
 * puts the SQLSTATE in `code`; a socket error keeps Node's code; a connection that ends
 * mid-query rejects with a plain Error ("Connection terminated unexpectedly"). Pure.
 */

const SOCKET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN',
  'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ENOENT',
]);

/**
 * SQLSTATEs that say "not now" or "not you", not "not this statement":
 * 57P01 admin_shutdown (also pg_terminate_backend), 57P02 crash_shutdown, 57P03
 * cannot_connect_now (starting up, recovery), 53300 too_many_connections, 53100 disk_full,
 * 28000/28P01 authentication, 3D000 the database does not exist, 25006 read-only
 * transaction (a standby: the primary moved), 58030 io_error.
 */
const CONNECTION_STATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '53300', '53100', '28000', '28P01', '3D000', '25006', '58030']);

/**
 * The server rolled the statement (and the transaction) back and says to try again:
 * 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available
 * (lock_timeout, NOWAIT).
 */
const TRANSIENT_STATES: ReadonlySet<string> = new Set(['40001', '40P01', '55P03']);

/** pg's own errors for a connection that is gone or going. */
const LOST = /^(Connection terminated|Client has encountered a connection error|Client was closed|Connection closed|timeout expired|Query read timeout)/i;

export function classifyError(error: unknown, phase: 'connect' | 'execute'): ErrorClass {
  if (phase === 'connect') return 'connection';
  const info = errorInfo(error);
  if (info.fatal) return 'connection';
  if (SOCKET_CODES.has(info.code)) return 'connection';
  // An SQLSTATE: five digits or capitals (classes 00-58, F0, HV, P0, XX: none starts with E, as Node's codes do).
  if (/^[0-9A-Z]{5}$/.test(info.code) && !info.code.startsWith('E')) {
    if (CONNECTION_STATES.has(info.code) || info.code.startsWith('08')) return 'connection';
    if (TRANSIENT_STATES.has(info.code)) return 'transient';
    return 'sql';
  }
  if (info.code === 'UNKNOWN' && LOST.test(info.message)) return 'connection';
  return 'sql';
}
