/**
 * What a thrown value says about itself, read the same way for any driver: mysql2's and
 * node:net's errors (code, errno, sqlState, fatal), and anything else thrown. Pure.
 */

export interface DatabaseErrorInfo {
  readonly code: string;
  readonly errno?: number;
  readonly sqlState?: string;
  readonly message: string;
  readonly fatal: boolean;
}

/** The fields of a thrown value that classification looks at. */
export function errorInfo(error: unknown): DatabaseErrorInfo {
  const e = (error ?? {}) as { code?: unknown; errno?: unknown; sqlState?: unknown; message?: unknown; fatal?: unknown };
  const errno = typeof e.errno === 'number' && e.errno > 0 ? e.errno : undefined;
  const sqlState = typeof e.sqlState === 'string' ? e.sqlState : undefined;
  let message = typeof e.message === 'string' ? e.message : String(error);
  // AggregateError (e.g. ECONNREFUSED on both ::1 and 127.0.0.1) has an empty message.
  if (message === '' && error instanceof AggregateError) message = error.errors.map((x) => String((x as Error).message ?? x)).join('; ');
  return {
    code: typeof e.code === 'string' && e.code !== '' ? e.code : 'UNKNOWN',
    ...(errno !== undefined && { errno }),
    ...(sqlState !== undefined && { sqlState }),
    message: message || 'unknown error',
    fatal: e.fatal === true,
  };
}
