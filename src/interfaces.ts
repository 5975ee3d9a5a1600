import type { FailureClass } from './spool/failure.js';
import type { Priority } from './spool/record.js';

/** One database to run spooled statements on. A plain string is taken as `{ url }`. */
export interface DatasourceOptions {
  /**
   * Its scheme picks the driver: `mysql://user:password@host:port/database` (or `mariadb://`),
   * whose query parameters are passed to mysql2.
   */
  readonly url: string;
  /**
   * Driver options, checked by the driver: for mysql:// and mariadb://, mysql2 pool options
   * (e.g. `{ "connectTimeout": 5000 }`), which win over the URL's.
   */
  readonly options?: Readonly<Record<string, unknown>>;
  /** An http(s) URL that receives a signed JSON POST when a job of this datasource succeeds or fails (a job's own `webhook` wins). */
  readonly webhook?: string;
  /**
   * Exactly-once: each job's id is recorded in this table (created if missing) in the same
   * transaction as its statement, so a job that committed never runs again after a crash.
   * `false` turns it off (at-least-once). See docs/guarantees.md.
   * @default { table: 'querybatch_ledger' }
   */
  readonly ledger?: boolean | {
    readonly table?: string;
    /**
     * Group commit: up to this many consecutive transactional jobs' statements go in one
     * ledger transaction and one round trip (1: one job per transaction). Consecutive
     * single-row INSERTs merged into one count as one statement, up to 1,000 jobs a
     * transaction (docs/guarantees.md, "Coalesced INSERTs"). @default 32
     */
    readonly batch?: number;
    /**
     * Consecutive single-row INSERTs of a group commit run as one multi-row INSERT
     * (docs/guarantees.md, "Coalesced INSERTs"); false: each job's statement runs as it is
     * (statement triggers fire once per job, a statement's time is each job's own). @default true
     */
    readonly coalesce?: boolean;
  };
  /**
   * Statements run on every new connection and after every session reset (a job that may
   * change the session, such as `SET AUTOCOMMIT=0`, is followed by a reset), e.g.
   * `["SET SESSION innodb_lock_wait_timeout = 5", "SET time_zone = '+00:00'"]`. @default []
   */
  readonly init?: readonly string[];
  /**
   * Transient errors (a deadlock, a lock wait timeout: what the database says to retry) run
   * the statement again within the run, on the same session, after a backoff with full
   * jitter; after the last try the job fails as an SQL error. `false` (or maxAttempts 1)
   * turns it off. See docs/guarantees.md.
   * @default { maxAttempts: 5, backoffMs: 100 }
   */
  readonly retry?: false | RetryOptions;
  /**
   * A statement the database refuses (or stops for its time limit, or that may or may not
   * have run: `uncertain`) goes to failed/ as always, and then this datasource drains
   * nothing more while a `failed-…` or `uncertain-…` file of it is in failed/: respooling
   * it (it keeps its place at the head) or deleting it lets the drain go on. See
   * docs/guarantees.md.
   * @default false
   */
  readonly strictOrder?: boolean;
}

/** How a datasource retries a transient error. */
export interface RetryOptions {
  /** Tries of a statement in one run, the first included. @default 5 */
  readonly maxAttempts?: number;
  /** The wait before try n+1 is a random time below backoffMs * 2^(n-1) (capped at 30 s, or backoffMs when larger). @default 100 */
  readonly backoffMs?: number;
}

export interface WebhookOptions {
  /** Secret for the `x-querybatch-signature` HMAC header (or `QUERYBATCH_WEBHOOK_SECRET`). @default none: requests are unsigned */
  readonly secret?: string;
  /** Tries per delivery, the first included. @default 5 */
  readonly maxAttempts?: number;
  /** Wait before the second try, doubled for each further one. @default 1000 */
  readonly backoffMs?: number;
  /** Time limit per request. @default 10000 */
  readonly timeoutMs?: number;
  /** Requests in flight at once. @default 4 */
  readonly concurrency?: number;
  /** Deliveries waiting at most; beyond it the oldest waiting one is dropped and reported. @default 10000 */
  readonly maxQueued?: number;
  /** How long close() waits for deliveries still going (retries included) before giving up on them. @default 30000 */
  readonly closeWaitMs?: number;
}

export interface DashboardOptions {
  /**
   * Token the dashboard and /metrics ask for (`Authorization: Bearer <token>`, or `?token=`
   * once on a page, which sets a cookie); or `QUERYBATCH_DASHBOARD_TOKEN`. Required to bind
   * any host but loopback. @default none: no token asked (loopback only)
   */
  readonly token?: string;
}

export interface Limits {
  /**
   * Largest SQL text spool() (and a `.sql` drop-in) accepts, in UTF-8 bytes. Unset by
   * default: SQL is then accepted as long as its spool file fits in `maxFileBytes`, and the
   * bound that matters is the server's max_allowed_packet, read at connect: a statement
   * that can't fit goes to failed/ when it runs. @default unset
   */
  readonly maxSqlBytes?: number;
  /** Largest params spool() accepts, in bytes of their JSON encoding. @default 16777216 (16 MiB) */
  readonly maxParamsBytes?: number;
  /** Largest file the runner reads from spool/; larger ones go to failed/. @default 33554432 (32 MiB) */
  readonly maxFileBytes?: number;
  /**
   * Largest SQL script (spoolScript(), `spool --file`, a `.sql` drop-in of several
   * statements), in bytes. Scripts are streamed, never read whole into memory; each of their
   * statements is bounded by the server's max_allowed_packet. @default 268435456 (256 MiB)
   */
  readonly maxScriptBytes?: number;
}

export interface LogOptions {
  /** Rotate a log file when it reaches this many bytes. @default 10485760 (10 MiB) */
  readonly maxSize?: number;
  /** Rotated files kept per log. @default 5 */
  readonly maxFiles?: number;
  /** Write param values into the error log (otherwise only their count and types). @default false */
  readonly logParams?: boolean;
}

export interface ScheduleOptions {
  /** When to run: a cron expression, 5 fields or 6 with seconds first. @default '*\/5 * * * *' (every 5 minutes) */
  readonly cron?: string;
  /** IANA time zone the cron expression is read in (e.g. "Europe/Berlin"). @default the machine's */
  readonly timezone?: string | null;
  /** The first run starts this long after start() (OpenBD drained about 10 s after boot). @default 10000 */
  readonly startDelayMs?: number;
  /** Watch spool/ for drop-ins and take them into the spool as they settle. @default true */
  readonly watch?: boolean;
  /** Run a batch soon after a drop-in instead of waiting for the schedule. @default false */
  readonly runOnDrop?: boolean;
  /** Drop-in events within this long are handled together. @default 200 */
  readonly dropDebounceMs?: number;
  /**
   * Continuous mode: run as soon as a job is spooled, by any process (the shard tree is watched), instead of
   * waiting for the cron. After a run that stopped on a connection failure, jobs wait for the next cron run. @default false
   */
  readonly continuous?: boolean;
  /**
   * Continuous mode: a datasource's session and drain lock stay held between its runs, and are given back after this long
   * without a run (another runner, `querybatch run`, is refused as busy until then); also by every run with the upkeep
   * (at least once a minute), on pause, stop() and close(). 0: given back after every run. @default 1000
   */
  readonly keepLockMs?: number;
  /** The CLI's `start` gives up waiting for the statement in flight after this long on SIGINT/SIGTERM and exits 1. @default 30000 */
  readonly stopTimeoutMs?: number;
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
  /** Temp files in spool/.tmp older than this (left by a killed producer or runner) are removed at the start of a run. @default 3600000 (1 hour) */
  readonly tmpMaxAgeMs?: number;
  readonly limits?: Limits;
  readonly logs?: LogOptions;
  /** How `start()` / `querybatch start` schedules runs. */
  readonly schedule?: ScheduleOptions;
  /**
   * Longest a statement may run before it is stopped on the server (KILL QUERY) and moved to
   * failed/ with class `timeout`; a job's own `timeoutMs` wins. 0: no limit. @default 300000 (5 min, as Halo)
   */
  readonly timeoutMs?: number;
  /** How long status(id) remembers a finished job (logs/outcomes/). @default 86400000 (24 h) */
  readonly retentionMs?: number;
  /**
   * How long a job's idempotency key (`spool(…, { key })`) stays taken after the job
   * succeeded: spooling the key again within it returns the first job's id. At most
   * `retentionMs`. @default 86400000 (24 h), or `retentionMs` when that is shorter
   */
  readonly keyRetentionMs?: number;
  readonly webhooks?: WebhookOptions;
  /** `querybatch dashboard` and `start --http` (docs/dashboard.md). */
  readonly dashboard?: DashboardOptions;
  /** Read `<home>/querybatch.config.json` (options given here win over it). @default true */
  readonly configFile?: string | false;
}

/** Everything resolved: no optional fields left. */
export interface ResolvedConfig {
  readonly home: string;
  readonly datasources: Readonly<Record<string, ResolvedDatasource>>;
  readonly defaultDatasource: string;
  readonly maxConnectionAttempts: number;
  readonly durability: 'fsync' | 'none';
  readonly dropInSettleMs: number;
  readonly tmpMaxAgeMs: number;
  /** maxSqlBytes is null when it is not set (bounded by maxFileBytes and the server's max_allowed_packet). */
  readonly limits: Required<Omit<Limits, 'maxSqlBytes'>> & { readonly maxSqlBytes: number | null };
  readonly logs: Required<LogOptions>;
  readonly schedule: ResolvedSchedule;
  readonly timeoutMs: number;
  readonly retentionMs: number;
  readonly keyRetentionMs: number;
  readonly webhooks: Required<Omit<WebhookOptions, 'secret'>> & { readonly secret: string | null };
  readonly dashboard: { readonly token: string | null };
}

export interface ResolvedSchedule {
  readonly cron: string;
  readonly timezone: string | null;
  readonly startDelayMs: number;
  readonly watch: boolean;
  readonly runOnDrop: boolean;
  readonly dropDebounceMs: number;
  readonly continuous: boolean;
  readonly keepLockMs: number;
  readonly stopTimeoutMs: number;
}

/**
 * Why a schedule's run started (daemon/schedule.ts). `adopt`: the watcher took drop-ins into the spool and ran nothing.
 * `immediate`: an immediate-priority job was spooled. `continuous`: a job was spooled (schedule.continuous).
 * `due`: a delayed job came due.
 */
export type RunReason = 'start' | 'schedule' | 'drop' | 'adopt' | 'immediate' | 'continuous' | 'due';

export interface ResolvedDatasource {
  readonly url: string;
  /** Driver options, as the driver's check returned them: for mysql:// and mariadb://, mysql2 pool options. */
  readonly options: Readonly<Record<string, unknown>>;
  readonly webhook: string | null;
  /** Statements run on every new connection and after every session reset. */
  readonly init: readonly string[];
  /** The ledger table, group-commit size and whether a group's INSERTs merge, or null when the ledger is off. */
  readonly ledger: { readonly table: string; readonly batch: number; readonly coalesce: boolean } | null;
  /** Transient errors: tries per statement in a run (1: no retry) and the base backoff. */
  readonly retry: Required<RetryOptions>;
  /** Drains nothing while a failed-… or uncertain-… file of this datasource is in failed/. */
  readonly strictOrder: boolean;
}

export interface SpoolOptions {
  /** @default the configured default datasource */
  readonly datasource?: string;
  /** Stored with the job for the runner (see docs/spool-format.md). */
  readonly priority?: Priority;
  readonly timeoutMs?: number;
  /** An http(s) URL told when this job succeeds or fails (instead of its datasource's). */
  readonly webhook?: string;
  /** Store the result rows as pages of about 1 MB, for qb.result(id) / qb.resultPage(id, n). @default false */
  readonly captureResult?: boolean;
  /**
   * An idempotency key (1-256 characters), per datasource: while a job spooled with this key
   * is delayed, queued, running or in failed/, and for `keyRetentionMs` after it succeeded,
   * spooling the key again writes nothing and returns that job's id (docs/api.md#idempotency-keys).
   */
  readonly key?: string;
  /** The job does not run before this time (docs/api.md#delayed-jobs). Not with `delayMs`. */
  readonly runAt?: Date;
  /** The job does not run before this many milliseconds from now. Not with `runAt`. */
  readonly delayMs?: number;
}

export interface RunOptions {
  /** Only this datasource (others are left in spool). */
  readonly datasource?: string;
  /** At most this many statements per datasource in this run. */
  readonly limit?: number;
  /** Aborting lets the statement in flight finish and leaves the rest in spool. */
  readonly signal?: AbortSignal;
  /** Called after each statement executed (or refused): how many are done of how many were pending when the run began. */
  readonly onProgress?: (progress: RunProgress) => void;
  /**
   * false: skip the upkeep a later run does as well (adopting drop-ins, pruning the ledger,
   * expired results and key markers); dead runners' claims are still given back. Continuous
   * mode's runs pass false, cron and start runs do it all (docs/decisions.md). @default true
   */
  readonly upkeep?: boolean;
  /**
   * Over 0: a datasource drained to the end keeps its session and its lock for this
   * process's next run (which then skips connecting and locking) for up to this many ms;
   * another runner finds it busy meanwhile. Continuous mode's runs pass schedule.keepLockMs;
   * the lock goes at the next run without it, on pause, stop() and close() (docs/decisions.md). @default 0
   */
  readonly keepLockMs?: number;
}

export interface RunProgress {
  /** Statements executed or refused so far in this run, all datasources together. */
  readonly done: number;
  /** Jobs pending when the drain began (at least `done`). */
  readonly total: number;
  /** The script running now, if one is: its id, the statement that just ran, of how many. */
  readonly script?: { readonly id: string; readonly statement: number; readonly statements: number };
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
  /** Of connectionFailed, the jobs out of attempts (maxConnectionAttempts): moved to failed/connection-…; the others kept their place in spool. */
  connectionMoved?: number;
  /** Jobs found in the ledger (they ran before a crash): removed without running again. */
  settled: number;
  /** Other hosts' dead claims given back once this runner held the datasource's lock. */
  recovered?: number;
  /** Ledger rows deleted at the end of the drain (their jobs' files are gone). */
  pruned?: number;
  /** Jobs whose statement commits implicitly and whose run was cut short: moved to failed/uncertain-…. */
  uncertain: number;
  /** Set when another runner (another process or host) was draining this datasource: it was skipped. */
  busy?: boolean;
  /** Statements run again after a transient error (a deadlock, a lock wait timeout): each retry counts. */
  retried: number;
  /** strictOrder: the name in failed/ of the file that blocks this datasource (it drained nothing after it). */
  blocked?: string;
  /** Set when the datasource is paused (`querybatch pause`): it was skipped, its jobs stay in spool until resumed. */
  paused?: boolean;
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
  /** Claims of dead runners given back to the spool (this host's at the start of the run, other hosts' once their datasource lock is taken). */
  readonly recovered: number;
  /** Jobs the ledger showed had run already (before a crash): removed without running again. */
  readonly settled: number;
  /** Jobs moved to failed/uncertain-… (a statement that commits implicitly was cut short by a crash or a lost connection). */
  readonly uncertain: number;
  /** Temp files older than tmpMaxAgeMs removed from spool/.tmp. */
  readonly tmpRemoved: number;
  /** Statements run again after a transient error (a deadlock, a lock wait timeout) within the run: each retry counts. */
  readonly retried: number;
  /** Milliseconds spent executing statements. */
  readonly totalMs: number;
  /** totalMs / statements executed. */
  readonly avgMs: number;
  /** Wall-clock duration of the whole run. */
  readonly wallMs: number;
  readonly datasources: Readonly<Record<string, DatasourceSummary>>;
  /** Delayed jobs not yet due, left waiting (not failures): their run comes at their runAt. Always set by run(). */
  readonly delayed?: number;
  /** When the first of them is due, or null when none waits. Always set by run(). */
  readonly nextDueAt?: string | null;
}

export interface StatusReport {
  readonly home: string;
  readonly pending: Readonly<Record<string, { count: number; oldestId: string | null; oldestAgeMs: number | null }>>;
  readonly pendingTotal: number;
  /** Files waiting as drop-ins (not yet moved into a shard). */
  readonly dropIns: number;
  /** Files claimed by running runners (another host's claims count here: this host can't tell whether its runner lives). */
  readonly active: number;
  /** Files claimed by runners of this host that died: the next run (or the next drain of their datasource) gives them back to the spool. */
  readonly abandoned: number;
  /** uncertain: statements that commit implicitly cut short by a crash (docs/guarantees.md). */
  readonly failed: { readonly connection: number; readonly failed: number; readonly uncertain: number; readonly other: number };
  /** Per strictOrder datasource: the name in failed/ of the file that blocks it, or null when it is not blocked. */
  readonly blocked: Readonly<Record<string, string | null>>;
  /** Paused datasources (`querybatch pause`), by name: runs skip them until they are resumed. */
  readonly paused: readonly string[];
  /** Delayed jobs (not yet due) per datasource that has any: how many, and when the first is due. */
  readonly delayed?: Readonly<Record<string, { count: number; nextRunAt: string }>>;
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

/** What became of a job, by id: `qb.status(id)`. */
export type JobStatus =
  | { readonly id: string; readonly state: 'queued'; readonly datasource: string; /** 1: runs next in its datasource. */ readonly position: number; readonly attempts: number; readonly priority: Priority }
  /** Spooled with `runAt`/`delayMs` and not yet due: it joins the queue, in id order, at the first run at or after `runAt`. */
  | { readonly id: string; readonly state: 'delayed'; readonly datasource: string; readonly runAt: string; readonly attempts: number }
  | {
    readonly id: string;
    readonly state: 'running';
    readonly datasource: string;
    readonly runner: string;
    /** Set when that runner has died (on this host): the job is not running; the next run gives it back to its place in the spool. */
    readonly runnerDead?: true;
    /** A script's: statements committed so far, of how many. */
    readonly script?: { readonly done: number; readonly statements: number };
  }
  | {
    readonly id: string;
    readonly state: 'succeeded';
    readonly datasource: string;
    /** When the runner that ran it claimed it (absent in outcome records kept from before it was recorded). */
    readonly claimedAt?: string;
    readonly finishedAt: string;
    readonly durationMs: number;
    readonly affectedRows: number;
  }
  | {
    readonly id: string;
    readonly state: 'failed';
    readonly datasource: string | null;
    readonly class: FailureClass;
    readonly code: string | null;
    readonly message: string | null;
    /** Its name in failed/, or null when it is no longer there (respooled or removed). */
    readonly file: string | null;
    /** When the runner that failed it claimed it, when its outcome record says (not for a file that was not a valid job). */
    readonly claimedAt?: string;
    readonly finishedAt: string | null;
    readonly attempts: number | null;
  }
  /** Removed from the spool before it ran (`querybatch cancel`). */
  | { readonly id: string; readonly state: 'cancelled'; readonly datasource: string; readonly cancelledAt: string }
  | { readonly id: string; readonly state: 'unknown' };
