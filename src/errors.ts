/**
 * Every error querybatch throws on purpose is a QueryBatchError with a stable `code`.
 * Messages say what was expected and what was found.
 */
export type ErrorCode =
  /** The configuration (file, environment, flags or constructor options) is not usable. */
  | 'CONFIG_INVALID'
  /** The home directory does not exist or cannot be written. */
  | 'HOME_UNUSABLE'
  /** A datasource name that is not configured. */
  | 'UNKNOWN_DATASOURCE'
  /** A datasource URL that cannot be parsed, has no registered driver for its scheme (mysql://, mariadb://), or that its driver refuses. */
  | 'INVALID_DATASOURCE_URL'
  /** spool() was given empty or non-string SQL. */
  | 'EMPTY_SQL'
  /** The SQL text is larger than `limits.maxSqlBytes` (when set), or its spool file would be larger than `limits.maxFileBytes`; a script larger than `limits.maxScriptBytes`. */
  | 'SQL_TOO_LARGE'
  /** The encoded params are larger than `limits.maxParamsBytes`. */
  | 'PARAMS_TOO_LARGE'
  /** A param that cannot be carried exactly in a spool file (object, function, NaN, ...). */
  | 'UNSERIALIZABLE_PARAM'
  /** A script holds what querybatch can't send to its database (a psql meta-command like \connect). */
  | 'UNSUPPORTED_SCRIPT'
  /** A script file given to spoolScriptFile() (`spool --file`) could not be read. */
  | 'SPOOL_READ_FAILED'
  /**
   * spool() with a key whose first job only the ledger can tell about (its outcome record is
   * gone) while the ledger's database can't be asked: nothing was spooled, try again.
   */
  | 'KEY_UNVERIFIED'
  /** Writing the spool file failed (disk full, permissions, ...); nothing was left behind. */
  | 'SPOOL_WRITE_FAILED'
  /** A spool file that is not a valid querybatch/1 file. */
  | 'INVALID_SPOOL_FILE'
  /** The runner could not move a file (disk full, permissions); the job stays claimed and the next run gives it back. */
  | 'RUN_IO_FAILED'
  /** `failed show` / `respool` named a file that is not in failed/. */
  | 'FAILED_FILE_NOT_FOUND'
  /** Something that is not a job id where one was expected. */
  | 'INVALID_ID'
  /** A webhook URL that is not http:// or https://. */
  | 'INVALID_WEBHOOK_URL'
  /** No captured result for that job (not captured, not run yet, failed or expired), or no such page. */
  | 'RESULT_NOT_FOUND'
  /** A statement ran past its timeoutMs and was stopped on the server. */
  | 'STATEMENT_TIMEOUT'
  /** cancel() of a job that is not queued: running (claimed by a runner), finished, failed, cancelled already, or unknown. */
  | 'JOB_NOT_CANCELLABLE'
  /** The QueryBatch instance was closed. */
  | 'CLOSED'
  /** The dashboard was asked to listen on a host other than loopback without a token. */
  | 'DASHBOARD_TOKEN_REQUIRED'
  /** The dashboard's HTTP server could not listen (address in use, no permission). */
  | 'HTTP_LISTEN_FAILED';

/** Codes a user fixes in the configuration or the call itself (the CLI exits 2 on these). */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CONFIG_INVALID',
  'HOME_UNUSABLE',
  'UNKNOWN_DATASOURCE',
  'INVALID_DATASOURCE_URL',
  'EMPTY_SQL',
  'SQL_TOO_LARGE',
  'PARAMS_TOO_LARGE',
  'UNSERIALIZABLE_PARAM',
  'FAILED_FILE_NOT_FOUND',
  'INVALID_ID',
  'INVALID_WEBHOOK_URL',
  'RESULT_NOT_FOUND',
  'DASHBOARD_TOKEN_REQUIRED',
]);

export class QueryBatchError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QueryBatchError';
    this.code = code;
  }

  /** True for errors a user fixes in configuration or on the command line (CLI exit code 2). */
  get isUsageError(): boolean {
    return USAGE_CODES.has(this.code);
  }
}

export function isQueryBatchError(error: unknown, code?: ErrorCode): error is QueryBatchError {
  return error instanceof QueryBatchError && (code === undefined || error.code === code);
}

/** A short description of any thrown value, for messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : 'a Date';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'object') {
    const name = value.constructor?.name;
    return name && name !== 'Object' ? `an instance of ${name}` : 'a plain object';
  }
  return `a ${typeof value}`;
}

/** `CODE: message`, the code said once: Node's system errors start their message with it already (`EACCES: permission denied, open '…'`). */
export function codeAndMessage(code: string | null | undefined, message: string): string {
  return code && !message.startsWith(`${code}:`) ? `${code}: ${message}` : message;
}

/** A thrown error's message with its code in front, once (codeAndMessage). */
export function withCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return codeAndMessage(typeof code === 'string' ? code : null, error instanceof Error ? error.message : String(error));
}
