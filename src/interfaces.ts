import type { PoolOptions } from 'mysql2';
import type { Priority } from './spool-file.js';

/** One database to run spooled statements on. A plain string is taken as `{ url }`. */
export interface DatasourceOptions {
  /** `mysql://user:password@host:port/database` (or `mariadb://`); query parameters are passed to mysql2. */
  readonly url: string;
  /** Extra mysql2 pool options (e.g. `{ "connectTimeout": 5000 }`); they win over the URL's. */
  readonly options?: Omit<PoolOptions, 'uri'>;
}

export interface Limits {
  /** Largest SQL text spool() accepts, in UTF-8 bytes. @default 1048576 (1 MiB) */
  readonly maxSqlBytes?: number;
  /** Largest params spool() accepts, in bytes of their JSON encoding. @default 16777216 (16 MiB) */
  readonly maxParamsBytes?: number;
  /** Largest file the runner reads from spool/; larger ones go to failed/. @default 33554432 (32 MiB) */
  readonly maxFileBytes?: number;
}

export interface LogOptions {
  /** Rotate a log file when it reaches this many bytes. @default 10485760 (10 MiB) */
  readonly maxSize?: number;
  /** Rotated files kept per log. @default 5 */
  readonly maxFiles?: number;
  /** Write param values into the error log (otherwise only their count and types). @default false */
  readonly logParams?: boolean;
}

/** What the constructor, querybatch.config.json and the CLI accept. Every field is optional. */
export interface QueryBatchOptions {
  /** Directory holding spool/, failed/, logs/ and querybatch.config.json. @default process.cwd() */
  readonly home?: string;
  /** Datasources by name. */
  readonly datasources?: Readonly<Record<string, DatasourceOptions | string>>;
  /** Datasource for spool() calls and .sql drop-ins that name none. @default the only datasource, else "main" */
  readonly defaultDatasource?: string;
  /** Runs a statement may fail to connect before it moves to failed/connection-…. @default 3 */
  readonly maxConnectionAttempts?: number;
  /** `'fsync'` makes spool() durable before it resolves; `'none'` skips the fsyncs. @default 'fsync' */
  readonly durability?: 'fsync' | 'none';
  /** A dropped-in file is taken once it has not changed for this long (so a half-copied file is not read). @default 1000 */
  readonly dropInSettleMs?: number;
  readonly limits?: Limits;
  readonly logs?: LogOptions;
  /** Read `<home>/querybatch.config.json` (options given here win over it). @default true */
  readonly configFile?: string | false;
}

/** Everything resolved: no optional fields left. */
export interface ResolvedConfig {
  readonly home: string;
  readonly datasources: Readonly<Record<string, { readonly url: string; readonly options: Omit<PoolOptions, 'uri'> }>>;
  readonly defaultDatasource: string;
  readonly maxConnectionAttempts: number;
  readonly durability: 'fsync' | 'none';
  readonly dropInSettleMs: number;
  readonly limits: Required<Limits>;
  readonly logs: Required<LogOptions>;
}

export interface SpoolOptions {
  /** @default the configured default datasource */
  readonly datasource?: string;
  /** Stored with the job for the runner (see docs/spool-format.md). */
  readonly priority?: Priority;
  readonly timeoutMs?: number;
}

export interface RunOptions {
  /** Only this datasource (others are left in spool). */
  readonly datasource?: string;
  /** At most this many statements per datasource in this run. */
  readonly limit?: number;
  /** Aborting lets the statement in flight finish and leaves the rest in spool. */
  readonly signal?: AbortSignal;
}

export interface DatasourceSummary {
  success: number;
  sqlFailed: number;
  connectionFailed: number;
  invalid: number;
  /** Left in spool: the datasource stopped after a connection failure, the limit was reached or the run was stopped. */
  deferred: number;
  /** Milliseconds spent executing statements. */
  sqlMs: number;
  /** Set when the datasource stopped on a connection failure. */
  connectionError?: string;
  /** Set when another runner (another process or host) was draining this datasource: it was skipped. */
  busy?: boolean;
}

export interface RunSummary {
  readonly runner: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** Executed successfully (files removed). */
  readonly success: number;
  /** Failed with an SQL error, or were not valid spool files (both in failed/failed-…). */
  readonly sqlFailed: number;
  /** Could not be run because the database could not be reached (still in spool, or failed/connection-…). */
  readonly connectionFailed: number;
  /** Of sqlFailed: files that were not valid (unreadable, damaged, wrong format). */
  readonly invalid: number;
  /** Left in spool for a later run. */
  readonly deferred: number;
  /** Drop-ins moved into their shards at the start of the run. */
  readonly adopted: number;
  /** Claims of dead runners given back to the spool at the start of the run. */
  readonly recovered: number;
  /** Milliseconds spent executing statements. */
  readonly totalMs: number;
  /** totalMs / statements executed. */
  readonly avgMs: number;
  /** Wall-clock duration of the whole run. */
  readonly wallMs: number;
  readonly datasources: Readonly<Record<string, DatasourceSummary>>;
}

export interface StatusReport {
  readonly home: string;
  readonly pending: Readonly<Record<string, { count: number; oldestId: string | null; oldestAgeMs: number | null }>>;
  readonly pendingTotal: number;
  /** Files waiting as drop-ins (not yet moved into a shard). */
  readonly dropIns: number;
  /** Files claimed by runners right now. */
  readonly active: number;
  readonly failed: { readonly connection: number; readonly failed: number; readonly other: number };
  /** The last summary line of logs/querybatch.log, parsed. */
  readonly lastRun: LastRunLine | null;
}

export interface LastRunLine {
  readonly time: string;
  readonly success: number;
  readonly sqlFailed: number;
  readonly connectionFailed: number;
  readonly totalMs: number;
  readonly avgMs: number;
}
