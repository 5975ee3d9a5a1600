export { QueryBatch, type QueryBatchEvents } from './querybatch.js';
export type { Outcome } from './outcomes.js';
export type { ResultManifest, ResultPage, PageInfo } from './results.js';
export { verifySignature, signPayload, SIGNATURE_HEADER, type WebhookPayload, type DeliveryFailure } from './webhooks.js';
export { QueryBatchError, isQueryBatchError, type ErrorCode } from './errors.js';
export type {
  DatasourceOptions,
  DatasourceSummary,
  JobStatus,
  WebhookOptions,
  LastRunLine,
  Limits,
  LogOptions,
  QueryBatchOptions,
  ResolvedSchedule,
  RunProgress,
  ScheduleOptions,
  ResolvedConfig,
  RunOptions,
  RunSummary,
  SpoolOptions,
  StatusReport,
} from './interfaces.js';
export type { Params, ParamValue, Priority, SpoolRecord, LastError } from './spool-file.js';
export { FORMAT, encodeRecord, decodeRecord, encodeParams, decodeParams } from './spool-file.js';
export { formatSummaryLine, parseSummaryLine, formatErrorLine, parseErrorLine } from './log-format.js';
export { classifyError } from './classify.js';
export { resolveConfig } from './config.js';
export type { ScheduleHandle, ScheduleHooks, RunReason } from './schedule.js';
export type { FailedFile, FailedFileDetail, FailedClass, RespoolSelection, RespoolResult } from './failed-files.js';
export type { LogEntry, LogFilter, LogRecord, RunLogRecord, ErrorLogRecord } from './log-reader.js';
export { parseLogLine, parseTime } from './log-reader.js';
export { formatProgress } from './progress.js';
