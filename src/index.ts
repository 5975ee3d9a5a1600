export { QueryBatch, type QueryBatchEvents } from './querybatch.js';
export type { Outcome } from './ops/outcomes.js';
export type { ResultManifest, ResultPage, PageInfo } from './ops/results.js';
export { verifySignature, signPayload, SIGNATURE_HEADER, type WebhookPayload, type DeliveryFailure } from './ops/webhooks.js';
export { QueryBatchError, isQueryBatchError, type ErrorCode } from './errors.js';
export type {
  DatasourceOptions,
  DatasourceSummary,
  JobStatus,
  WebhookOptions,
  DashboardOptions,
  LastRunLine,
  Limits,
  LogOptions,
  QueryBatchOptions,
  ResolvedSchedule,
  RetryOptions,
  RunProgress,
  ScheduleOptions,
  ResolvedConfig,
  RunOptions,
  RunSummary,
  SpoolOptions,
  StatusReport,
} from './interfaces.js';
export type { Params, ParamValue, Priority, SpoolRecord, LastError } from './spool/record.js';
export { FORMAT, encodeRecord, decodeRecord, encodeParams, decodeParams } from './spool/record.js';
export { formatSummaryLine, parseSummaryLine, formatErrorLine, parseErrorLine } from './ops/log-format.js';
export { classifyError } from './db/mysql/classify.js';
export { registerDriver, type DriverFactory } from './db/registry.js';
export { CoalescedBatchError } from './db/driver.js';
export type {
  BatchJob,
  BatchOptions,
  Dialect,
  Driver,
  DriverCapabilities,
  DriverSettings,
  ErrorClass,
  ExecuteResult,
  LedgerSettings,
  LockKey,
  OnceResult,
  Session,
  StatementParams,
  StatementTraits,
} from './db/driver.js';
export { resolveConfig } from './config.js';
export type { ScheduleHandle, ScheduleHooks, RunReason } from './daemon/schedule.js';
export type { FailedFile, FailedFileDetail, FailedClass, RespoolSelection, RespoolResult, DeleteFailedResult } from './ops/failed-files.js';
export type { CancelResult } from './ops/cancel.js';
export type { LogEntry, LogFilter, LogRecord, RunLogRecord, ErrorLogRecord } from './ops/log-reader.js';
export { parseLogLine, parseTime } from './ops/log-reader.js';
export { formatProgress } from './cli/progress.js';
export type { DashboardHandle, ServeDashboardOptions } from './http/server.js';
