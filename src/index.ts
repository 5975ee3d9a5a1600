export { QueryBatch } from './querybatch.js';
export { QueryBatchError, isQueryBatchError, type ErrorCode } from './errors.js';
export type {
  DatasourceOptions,
  DatasourceSummary,
  LastRunLine,
  Limits,
  LogOptions,
  QueryBatchOptions,
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
