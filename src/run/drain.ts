import { basename, dirname, join, relative } from 'node:path';
import fs from 'fs-extra';
import { CoalescedBatchError, type Driver, type EachResult } from '../db/driver.js';
import { QueryBatchError, isQueryBatchError } from '../errors.js';
import type { DatasourceSummary, ResolvedConfig } from '../interfaces.js';
import { countJobs, jobsInLeaf, removeIfEmpty, type Leaf } from '../spool/listing.js';
import { drainOrder, dropStaleMarker } from '../spool/priority.js';
import type { Failure } from '../spool/failure.js';
import type { SpoolRecord } from '../spool/record.js';
import { compareNames, idOfFileName, jobFileName, parseJobFileName, spoolPathFor } from '../spool/shards.js';
import { Claims } from './claims.js';
import type { DrainOptions, RunnerDeps } from './context.js';
import { executeGroup, executeJob, executeUnderSavepoints, lostConnection, type Executed } from './execute.js';
import { describeFailure, failureOf, succeededOutcome } from './failure.js';
import { fillItemOf, groupSize, groupable, outsideLedger, traitsOf, type Job } from './job.js';
import { GroupFill } from './group-fill.js';
import { DatabaseHold } from './hold.js';
import { oldestLiveId } from './ledger-prune.js';
import { countFailure, emptyDatasourceSummary } from './tally.js';
import { hasForeignClaims, recoverForeignClaims, uncertainMarkerName } from './recovery.js';
import { Retrier } from './retry.js';
import { failedStatementOf, runScript, type ScriptResult } from './script.js';
import { blockingFile, blocks } from './strict-order.js';
import { invalidFile, logUncertainClaims, settleFailure, settleRefused, type Refused, type SettleContext, type SettleOptions } from './settle.js';

/** Why the drain stopped before the spool was empty. */
type StopReason = 'none' | 'limit' | 'aborted' | 'connection' | 'busy' | 'blocked';

/**
 * One datasource's drain in one run: its jobs, serially and in FIFO order, on one session
 * that holds the datasource's lock. Immediate jobs first, then every leaf oldest first
 * (spool/priority.ts). Each job is claimed, read, checked, then run alone or batched into a
 * group commit; a failure settles through settle.ts. A connection failure, a limit or an
 * abort stops the drain, and with strictOrder a blocking file in failed/ (strict-order.ts);
 * what was not reached stays in the spool.
 */
export class Drain {
  readonly summary = emptyDatasourceSummary();
  readonly #deps: RunnerDeps;
  readonly #config: ResolvedConfig;
  /** The configured default time limit of a statement (or a group), null for none. */
  readonly #limitMs: number | null;
  readonly #datasource: string;
  readonly #options: DrainOptions;
  readonly #driver: Driver;
  readonly #ledger: { readonly table: string; readonly batch: number; readonly coalesce: boolean } | null;
  readonly #claims: Claims;
  readonly #settling: SettleContext;
  #hold: DatabaseHold;
  readonly #retrier: Retrier;
  readonly #strictOrder: boolean;
  #stop: StopReason = 'none';
  /** The drain ended without an error of the spool's I/O (only then may its lock be kept for the next run). */
  #completed = false;
  /** Jobs claimed so far (what `limit` counts). */
  #taken = 0;
  /** Other hosts' claims went back to the spool once the lock was ours: the listing starts over. */
  #relist = false;
  /** Leaves listed again (#relistLeaf): each at most once before the walk leaves it. */
  readonly #relisted = new Set<string>();
  /** Claimed jobs waiting to run together in one ledger transaction (group commit). */
  #group: Job[] = [];
  /** How full #group is: `ledger.batch` statements, a merged run of INSERTs counting once (group-fill.ts). */
  readonly #fill: GroupFill;
  /** Refused jobs of the burst running one by one, settled together when it ends (#settleRefused). */
  #refused: { readonly job: Job; readonly refused: Refused }[] = [];

  constructor(deps: RunnerDeps, datasource: string, options: DrainOptions, settling: SettleContext, spoolId: string) {
    this.#deps = deps;
    this.#config = deps.config;
    this.#limitMs = deps.config.timeoutMs > 0 ? deps.config.timeoutMs : null;
    this.#datasource = datasource;
    this.#options = options;
    this.#driver = deps.driver(datasource);
    this.#hold = new DatabaseHold(this.#driver, this.#driver.dialect.lockKey(spoolId, datasource));
    this.#ledger = deps.config.datasources[datasource]?.ledger ?? null;
    this.#claims = new Claims(deps.layout, deps.name, datasource, deps.syncer);
    this.#settling = settling;
    this.#strictOrder = deps.config.datasources[datasource]?.strictOrder ?? false;
    this.#fill = new GroupFill(groupSize(this.#ledger), (this.#ledger?.batch ?? 1) > 1 && this.#ledger?.coalesce === true && this.#driver.capabilities.groupCommit);
    this.#retrier = new Retrier(deps.config.datasources[datasource]?.retry, this.#driver.dialect, settling, options.signal, this.summary);
  }

  get stopped(): boolean {
    return this.#stop !== 'none';
  }

  /** Drains the datasource; resolves with its summary. Rejects only on an I/O error of the spool itself. */
  async run(): Promise<DatasourceSummary> {
    let left: number | null;
    try {
      // Before connecting or claiming anything: a file in failed/ may block the datasource.
      const blocking = this.#strictOrder ? await blockingFile(this.#deps.layout, this.#config, this.#datasource) : undefined;
      if (blocking !== undefined) this.#block(blocking);
      if (!this.stopped && await hasForeignClaims(this.#deps.layout, this.#datasource)) {
        // Another host's runner died holding claims: with the lock ours they go back first, in their places.
        await this.#connect();
      }
      while (!this.stopped) {
        this.#relist = false;
        await this.#pass();
        if (!this.#relist) break;
      }
      // Jobs grouped when the listing ended or the drain stopped.
      await this.#flushGroup();
      await this.#claims.returnSegments();
      this.#completed = true;
    } finally {
      left = await this.#release();
    }
    if (this.stopped) this.summary.deferred = left ?? (await countJobs(join(this.#deps.layout.spoolDir, this.#datasource))).count;
    return this.summary;
  }

  /** One walk of the spool in drain order, until it ends, the drain stops, or the listing must start over. */
  async #pass(): Promise<void> {
    for await (const { leaf, names, marker } of drainOrder(this.#deps.layout, this.#datasource)) {
      if (this.stopped) return;
      for (let i = 0; i < names.length; i++) {
        if (!(await this.#takeNext(leaf, names, i, marker))) return;
        // Listed again once before the walk leaves it: jobs spooled into it meanwhile (the newest
        // leaf, in continuous mode) join this run's group instead of waiting for the next run.
        if (i === names.length - 1 && marker === undefined) await this.#relistLeaf(leaf, names, i, true);
      }
      if (await removeIfEmpty(leaf.path)) await removeIfEmpty(dirname(leaf.path));
    }
  }

  /** Stops for the run's limit or its abort signal; true when the drain is stopped. */
  #limitReached(): boolean {
    if (this.#stop === 'none') {
      if (this.#options.signal?.aborted) this.#stop = 'aborted';
      else if (this.#options.limit !== undefined && this.#taken >= this.#options.limit) this.#stop = 'limit';
    }
    return this.stopped;
  }

  /**
   * Claims the file `names[i]` of a leaf and sends its jobs on: run, grouped, or settled as
   * invalid, misplaced or a segment to split. False when the walk must end (stopped, or
   * the listing starts over).
   */
  async #takeNext(leaf: Leaf, names: string[], i: number, marker: string | undefined): Promise<boolean> {
    if (this.#limitReached()) return false;
    const name = names[i]!;
    const src = join(leaf.path, name);
    // Connect, and take the datasource's lock, before claiming anything: a runner that
    // finds another draining this datasource touches none of its files.
    if (this.#hold.link.state === 'closed' && (!(await this.#connect()) || this.#relist)) return false;
    const claimed = await this.#claims.take(src, name);
    if (claimed === null) {
      // Another runner took it; or, for a marker, its job is gone (ran, or moved).
      if (marker !== undefined) await dropStaleMarker(marker);
      // A segment may have been rewritten under another name (a job in it cancelled: ops/cancel.ts): its other jobs keep their place.
      else if ((parseJobFileName(name)?.count ?? 1) > 1) await this.#relistLeaf(leaf, names, i);
      return true;
    }
    // Taken: the marker has done its work (a crash before this keeps the job first in line).
    if (marker !== undefined) await fs.promises.unlink(marker).catch(() => {});
    this.#taken++;
    const count = parseJobFileName(name)?.count ?? 1;
    const read = await this.#readClaim(claimed, name, src, count);
    if (read === null || (await this.#relocateMisplaced(read[0]!.record, claimed, name, src, count))) return true;
    let jobs = read;
    if (jobs.length > 1) {
      if (jobs.some((j) => !j.once)) {
        await this.#expandSegment(jobs, claimed, names, i);
        return true;
      }
      jobs = [...this.#claims.openSegment(claimed, jobs)];
    }
    if (this.#hold.link.state !== 'open') {
      // The database could not be reached: the first job carries the failure, its attempt count grows, the rest stay untouched.
      await this.#settleJob(jobs[0]!, jobs[0]!.path, failureOf('connection', this.#hold.link.state === 'unreachable' ? this.#hold.link.error : null));
      this.#stop = 'connection';
      return false;
    }
    return this.#enqueue(jobs);
  }

  /** Connects and takes the datasource's lock; false when another runner holds it. Gives back other hosts' claims once the lock is ours. */
  async #connect(): Promise<boolean> {
    // The session and lock this process kept since its last run of the datasource (continuous mode), if it still holds the lock.
    const kept = await this.#deps.kept?.take(this.#datasource);
    if (kept !== undefined) this.#hold = kept;
    const opened = kept !== undefined ? 'held' : await this.#hold.open();
    if (opened === 'busy') {
      this.#stop = 'busy';
      this.summary.busy = true;
      return false;
    }
    if (opened === 'held') {
      const foreign = await recoverForeignClaims(this.#deps.layout, this.#datasource, this.#deps.syncer);
      logUncertainClaims(this.#settling, foreign);
      this.summary.recovered = (this.summary.recovered ?? 0) + foreign.recovered;
      this.summary.uncertain += foreign.uncertain.length;
      const [uncertain] = foreign.uncertain;
      if (this.#strictOrder && uncertain !== undefined) return this.#block(basename(uncertain.moved));
      this.#relist = foreign.recovered > 0;
    }
    return true;
  }

  /** Reads a claimed file's jobs (a segment's several); null when it is not valid (settled: failed/). */
  async #readClaim(claimed: string, name: string, src: string, count: number): Promise<Job[] | null> {
    try {
      return await this.#claims.read(claimed, src, count, this.#config.limits, (record) => traitsOf(this.#driver.dialect, this.#ledger !== null, record));
    } catch (error) {
      await this.#settleInvalid(claimed, name, error, { id: idOfFileName(name) ?? '', datasource: this.#datasource }, src);
      return null;
    }
  }

  /** A file copied into another datasource's tree, or renamed, goes to its own place (or to failed/ when it can't); true when it was not in its place. */
  async #relocateMisplaced(record: SpoolRecord, claimed: string, name: string, src: string, count: number): Promise<boolean> {
    if (record.datasource === this.#datasource && record.id === idOfFileName(name)) return false;
    const target = spoolPathFor(this.#deps.layout.spoolDir, record.datasource, record.id, count);
    if (Object.hasOwn(this.#config.datasources, record.datasource) && (await this.#claims.moveTo(claimed, target))) {
      this.#taken--;
    } else {
      const shown = (path: string) => relative(this.#deps.layout.home, path);
      const error = new QueryBatchError('INVALID_SPOOL_FILE', `Expected job ${record.id} of datasource "${record.datasource}" at ${shown(target)}; found it at ${shown(src)} and could not move it there`);
      await this.#settleInvalid(claimed, name, error, record, src);
    }
    return true;
  }

  /** Names that appeared in this leaf since it was listed join the rest of its listing, in order (`once`: only if it was not listed again before). */
  async #relistLeaf(leaf: Leaf, names: string[], i: number, once = false): Promise<void> {
    if (once) {
      if (this.#relisted.has(leaf.path)) return;
      this.#relisted.add(leaf.path);
    }
    const known = new Set(names);
    const fresh = (await jobsInLeaf(leaf)).filter((name) => !known.has(name));
    if (fresh.length > 0) names.push(...[...names.splice(i + 1), ...fresh].sort(compareNames));
  }

  /**
   * A segment whose jobs the ledger can't settle one by one (the ledger was turned off
   * since, or a file made by hand): its jobs become files of their own, which join the rest
   * of this leaf's listing in order.
   */
  async #expandSegment(jobs: readonly Job[], claimed: string, names: string[], i: number): Promise<void> {
    await this.#claims.split(claimed, jobs.map((j) => j.record));
    this.#taken--;
    names.push(...[...names.splice(i + 1), ...jobs.map((j) => jobFileName(j.record.id))].sort(compareNames));
  }

  /**
   * Sends a file's jobs on, in order: into the group commit, or run alone after the group
   * (FIFO). A segment's later jobs count toward the limit like files of their own; those not
   * reached go back at the end. False when the drain stopped.
   */
  async #enqueue(jobs: readonly Job[]): Promise<boolean> {
    for (const [k, job] of jobs.entries()) {
      if (k > 0) {
        if (this.#limitReached()) return false;
        this.#taken++;
      }
      if (job.script !== undefined) {
        // FIFO: what is grouped runs before the script.
        if (!(await this.#flushGroup())) {
          await this.#claims.returnUnrun([job]);
          return false;
        }
        if (!(await this.#runScript(job))) return false;
        continue;
      }
      if (groupable(job, this.#ledger)) {
        const item = fillItemOf(this.#driver.dialect, job);
        if (!this.#fill.fits(item) && !(await this.#flushGroup())) {
          await this.#claims.returnUnrun([job]);
          return false;
        }
        this.#group.push(job);
        this.#fill.add(item);
        if (this.#fill.full && !(await this.#flushGroup())) return false;
        continue;
      }
      // FIFO: what is grouped runs before this job.
      if (!(await this.#flushGroup())) {
        await this.#claims.returnUnrun([job]);
        return false;
      }
      if (!(await this.#runOne(job))) return false;
    }
    return true;
  }

  /**
   * Runs the grouped jobs in one ledger transaction and one round trip. On an SQL error
   * (all rolled back; a group grown past `batch`: in parts of `batch` first, #flushInParts)
   * they run again under savepoints in one transaction, so the refused ones
   * go to failed/ alone (#underSavepoints); when they can't, or with strictOrder (the drain
   * stops at the first refused job), one by one. False when the drain must stop; the jobs
   * that did not run are given back.
   */
  async #flushGroup(jobs: readonly Job[] = this.#takeGroup()): Promise<boolean> {
    if (jobs.length === 0) return true;
    if (this.#hold.link.state !== 'open') {
      await this.#claims.returnUnrun(jobs);
      if (this.#stop === 'none') this.#stop = 'connection';
      return false;
    }
    const t = performance.now();
    if (jobs.length > 1 && (this.#ledger?.batch ?? 1) > 1 && this.#driver.capabilities.groupCommit) {
      const counts = await this.#executeGroup(jobs, t);
      if (counts === 'lost') return false;
      if (counts !== null && counts !== 'timeout') {
        const ms = performance.now() - t;
        this.summary.sqlMs += ms;
        this.summary.success += jobs.length;
        jobs.forEach((job, k) => this.#succeeded(job, ms / jobs.length, counts[k] ?? 0));
        this.#claims.remove(...this.#claims.finishAll(jobs));
        return true;
      }
      // Refused, or over the group's time limit: a group grown past `batch` goes again in parts first.
      if (jobs.length > groupSize(this.#ledger)) return this.#flushInParts(jobs);
      // Refused: under savepoints. Over the time limit: one by one at once, each job under its
      // own limit (under savepoints the slow one would use up the group's limit again).
      if (counts === null && !this.#strictOrder) {
        const settled = await this.#underSavepoints(jobs, t);
        if (settled !== null) return settled;
      }
    }
    return this.#runEach(jobs);
  }

  /** The grouped jobs, the group emptied. */
  #takeGroup(): Job[] {
    const jobs = this.#group;
    this.#group = [];
    this.#fill.clear();
    return jobs;
  }

  /**
   * A group that grew past `ledger.batch` jobs through merged INSERTs (group-fill.ts) and
   * failed goes again in groups of `batch` jobs, so that a refused job sends no more jobs
   * one by one than before coalescing (a group of 1,000 would run 999 single commits).
   * False when the drain must stop; the parts not reached are given back.
   */
  async #flushInParts(jobs: readonly Job[]): Promise<boolean> {
    const size = groupSize(this.#ledger);
    for (let k = 0; k < jobs.length; k += size) {
      if (k > 0 && this.#options.signal?.aborted) {
        if (this.#stop === 'none') this.#stop = 'aborted';
        await this.#claims.returnUnrun(jobs.slice(k));
        return false;
      }
      if (!(await this.#flushGroup(jobs.slice(k, k + size)))) {
        await this.#claims.returnUnrun(jobs.slice(k + size));
        return false;
      }
    }
    return true;
  }

  /**
   * A refused group again, under savepoints (Session.executeEach, issue 15): its jobs in one
   * ledger transaction, each refused one rolled back alone, the rest committed once with
   * their ledger rows; the refused ones are settled together (#settleRefused). Null when the
   * jobs must run one by one instead (all rolled back: a transient error, a time limit, a
   * driver that can't); else as #flushGroup.
   */
  async #underSavepoints(jobs: readonly Job[], t: number): Promise<boolean | null> {
    let results: readonly EachResult[] | null;
    try {
      results = await executeUnderSavepoints(this.#hold.session, jobs, this.#limitMs);
    } catch (error) {
      if (!lostConnection(this.#driver.dialect, error)) return null;
      // Nothing committed unless the COMMIT was under way: the first job's ledger row tells
      // for it; the rest go back untouched (the ledger knows which of them ran).
      await this.#connectionLost([jobs[0]!], error, t, jobs[0]!.path);
      await this.#claims.returnUnrun(jobs.slice(1));
      return false;
    }
    if (results === null) return null;
    const ms = (performance.now() - t) / jobs.length;
    this.summary.sqlMs += ms * jobs.length;
    const ran: string[] = [];
    for (const [k, job] of jobs.entries()) {
      const result = results[k]!;
      if (result.status === 'refused') {
        this.#refused.push(this.#refusedOf(job, 'sql', result.error, ms));
        continue;
      }
      if (result.status === 'done') this.summary.success++;
      else this.summary.settled++;
      this.#succeeded(job, ms, result.status === 'done' ? result.affectedRows : 0);
      const done = this.#claims.finish(job);
      if (done !== null) ran.push(done);
    }
    try {
      await this.#settleRefused();
    } finally {
      this.#claims.remove(...ran);
    }
    return !this.stopped;
  }

  /**
   * Runs a group in one ledger transaction, its consecutive single-row INSERTs merged
   * (coalescing, issue 15); when a merged INSERT failed (all rolled back), the group goes
   * again unmerged. The group as a whole gets the default limit; on a timeout it runs again
   * one by one (a group grown past `batch`: in parts first), each job under its own limit, so
   * only the slow one fails. Resolves with each job's affected rows; null after an SQL error (a
   * duplicate ledger id included: then under savepoints) or when the driver can't group them;
   * 'timeout' when the group's time limit stopped it; 'lost' when the connection was lost (settled).
   */
  async #executeGroup(jobs: readonly Job[], t: number): Promise<readonly number[] | null | 'lost' | 'timeout'> {
    for (const coalesce of this.#ledger?.coalesce === true ? [true, false] : [false]) {
      try {
        return await executeGroup(this.#hold.session, jobs, this.#limitMs, coalesce);
      } catch (error) {
        if (lostConnection(this.#driver.dialect, error)) {
          await this.#connectionLost(jobs, error, t, jobs[0]!.path);
          return 'lost';
        }
        if (isQueryBatchError(error, 'STATEMENT_TIMEOUT')) return 'timeout';
        if (!(error instanceof CoalescedBatchError)) return null;
      }
    }
    return null;
  }

  /**
   * Runs jobs one by one (per-statement mode, or after a group's SQL error); the files of the
   * jobs that ran are removed together at the end (docs/decisions.md). False when the drain
   * must stop; the jobs not reached are given back.
   */
  async #runEach(jobs: readonly Job[]): Promise<boolean> {
    const ran: string[] = [];
    try {
      for (let k = 0; k < jobs.length; k++) {
        if (k > 0 && this.#options.signal?.aborted) {
          if (this.#stop === 'none') this.#stop = 'aborted';
          await this.#settleRefused();
          await this.#claims.returnUnrun(jobs.slice(k));
          return false;
        }
        if (!(await this.#runOne(jobs[k]!, ran))) {
          await this.#settleRefused();
          await this.#claims.returnUnrun(jobs.slice(k + 1));
          return false;
        }
      }
      await this.#settleRefused();
      return true;
    } finally {
      this.#claims.remove(...ran);
    }
  }

  /**
   * Runs one job. With the ledger, a statement that can share its transaction runs exactly
   * once; one that commits implicitly runs on its own, its claim renamed to <id>.uncertain
   * first so that a crash mid-statement sends it to failed/uncertain-… instead of running it
   * again. Its claim is removed before the next job starts (without the ledger a crash
   * repeats at most the one statement in flight), or, given `ran`, with the rest of its
   * burst (ledger: a leftover is settled). A transient error runs it again (retry.ts). False
   * when the connection was lost, or the run stopped during a retry's wait (the job goes back).
   */
  async #runOne(job: Job, ran?: string[]): Promise<boolean> {
    const { record } = job;
    const path = outsideLedger(this.#ledger, job) ? await this.#claims.rename(job.path, uncertainMarkerName(record.id)) : job.path;
    let t = performance.now();
    let executed: Executed;
    for (let tries = 1; ; tries++, t = performance.now()) {
      try {
        executed = await executeJob(this.#hold.session, job, record.timeoutMs ?? this.#limitMs, this.#deps.layout.resultsDir);
        break;
      } catch (error) {
        // A timeout whose cancel had to drop the connection is a lost connection too.
        if (lostConnection(this.#driver.dialect, error)) {
          // The burst's refused jobs first: a segment given back must not carry them.
          await this.#settleRefused();
          await this.#connectionLost([job], error, t, path);
          return false;
        }
        const ms = performance.now() - t;
        this.summary.sqlMs += ms;
        const next = await this.#retrier.after(job, path, error, tries);
        if (next === 'again') continue;
        if (next === 'aborted') {
          this.#stop = 'aborted';
          await this.#settleRefused();
          await this.#claims.returnUnrun([job]);
          return false;
        }
        // A statement stopped for its time limit fails like an SQL error, with its own class.
        const cls = isQueryBatchError(error, 'STATEMENT_TIMEOUT') ? 'timeout' : 'sql';
        if (ran !== undefined && !job.changesSession && !this.#strictOrder) {
          // In a burst: settled with the burst's other refused jobs when it ends (strictOrder stops at once instead).
          this.#refused.push(this.#refusedOf(job, cls, error, ms));
          return !this.stopped;
        }
        await this.#settleJob(job, path, failureOf(cls, error), { ms });
        return (!job.changesSession || (await this.#resetSession())) && !this.stopped;
      }
    }
    const ms = performance.now() - t;
    this.summary.sqlMs += ms;
    if (executed.doneBefore) this.summary.settled++;
    else this.summary.success++;
    this.#succeeded(job, ms, executed.doneBefore ? 0 : executed.affectedRows);
    // (A claim renamed <id>.uncertain is never a segment's: segments hold only ledger jobs.)
    const done = job.segment === undefined ? path : this.#claims.finish(job);
    if (done !== null) {
      if (ran) ran.push(done);
      else this.#claims.remove(done);
    }
    return !job.changesSession || this.#resetSession();
  }

  /**
   * Runs a script job (run/script.ts) and settles how it ended: committed whole; stopped by
   * an SQL error at a statement (failed/, naming it; its progress kept, so a respool resumes
   * there); cut short by a lost connection (back to the spool with one more attempt, or
   * failed/uncertain-… when the statement in flight may have committed by itself); a body
   * that is not what its header says (failed/, as invalid). The session is reset after it.
   * False when the drain must stop.
   */
  async #runScript(job: Job): Promise<boolean> {
    const { record } = job;
    let claim = job.path;
    const t = performance.now();
    let result: ScriptResult;
    try {
      result = await runScript({
        session: this.#hold.session,
        dialect: this.#driver.dialect,
        ledger: this.#ledger !== null,
        limitMs: record.timeoutMs ?? this.#limitMs,
        uncertain: async (on) => (claim = await this.#claims.rename(claim, on ? uncertainMarkerName(record.id) : basename(job.path))),
        onStatement: (index, total) => this.#options.scriptStep?.(record.id, index, total),
        ...(this.#options.signal !== undefined && { signal: this.#options.signal }),
      }, job.path, job.script!);
    } catch (error) {
      if (lostConnection(this.#driver.dialect, error)) {
        await this.#connectionLost([job], error, t, claim);
        return false;
      }
      if (!isQueryBatchError(error, 'INVALID_SPOOL_FILE')) throw error;
      await this.#settleInvalid(claim, basename(job.path), error, record, job.src);
      return true;
    }
    const ms = performance.now() - t;
    this.summary.sqlMs += ms;
    if (result.ok) {
      if (!(await this.#rememberKey(job, claim))) return false;
      if (result.doneBefore) this.summary.settled++;
      else this.summary.success++;
      this.#succeeded(job, ms, result.affectedRows);
      this.#claims.remove(claim);
      return this.#resetSession();
    }
    if (result.aborted) {
      this.#stop = 'aborted';
      await this.#claims.putBack(claim, record.id);
      return false;
    }
    if (lostConnection(this.#driver.dialect, result.error)) {
      this.#hold.lose();
      this.#stop = 'connection';
      if (result.uncertain) {
        const failure = failureOf('uncertain', result.error);
        const at = result.statement === null ? '' : ` (statement ${result.statement.index} of ${record.script!.statements}, line ${result.statement.line})`;
        const message = `The connection was lost while a script's statement that may commit by itself ran${at}: it may or may not have run, so the script is not resumed on its own; the ${result.done} statements before it committed (${describeFailure(failure)}). Check the database, then respool it (it resumes at that statement) or delete it`;
        await this.#settleJob(job, claim, failure, { ms, message, ...(result.statement !== null && { sql: result.statement.sql }) });
      } else {
        await this.#settleJob(job, claim, failureOf('connection', result.error), { ms });
      }
      return false;
    }
    const failure = this.#scriptFailure(result, record.script!.statements);
    await this.#settleJob(job, claim, failure, { ms, ...(result.statement !== null && { sql: result.statement.sql }) });
    return (await this.#resetSession()) && !this.stopped;
  }

  /**
   * A keyed script that ran to its end, with the ledger: its key row (db/driver.ts
   * keyLedgerId) is written before its file goes, so the key is remembered however its
   * outcome record fares. A crash before it leaves the file, which runs again as done before
   * and writes it then. A lost connection puts the script back in its place, no attempt
   * counted (the next run finds every statement done and writes the row); false then, the
   * drain stops. Any other error leaves the key to the outcome record alone.
   */
  async #rememberKey(job: Job, claim: string): Promise<boolean> {
    if (this.#ledger === null || job.record.key === undefined) return true;
    try {
      await this.#hold.session.rememberKey(job.record.id);
    } catch (error) {
      if (!lostConnection(this.#driver.dialect, error)) return true;
      this.#hold.lose();
      this.#stop = 'connection';
      this.summary.connectionError = describeFailure(failureOf('connection', error));
      await this.#claims.putBack(claim, job.record.id);
      return false;
    }
    return true;
  }

  /** The failure of a script stopped by a refused statement (or left in an open transaction): which statement, and what did not commit. */
  #scriptFailure(result: Extract<ScriptResult, { ok: false }>, total: number): Failure {
    const base = failureOf(isQueryBatchError(result.error, 'STATEMENT_TIMEOUT') ? 'timeout' : 'sql', result.error);
    const { statement, done } = result;
    if (statement === null) return base;
    const rolledBack = statement.index - 1 - done;
    const note = rolledBack > 0 ? `; statements ${done + 1} to ${statement.index - 1} were in its transaction and were rolled back with it` : '';
    return {
      ...base,
      message: `Statement ${statement.index} of ${total} (line ${statement.line}) failed: ${base.message}${note}. Fix the cause, then respool the file: it resumes at statement ${done + 1}`,
      statement: failedStatementOf(statement),
    };
  }

  /**
   * After a job that may have changed the session: the next job starts from the
   * datasource's clean session. A reset that fails leaves the session unusable: it is
   * dropped and the drain stops, as for a lost connection (the job itself is settled).
   */
  async #resetSession(): Promise<boolean> {
    const error = await this.#hold.reset();
    if (error === undefined) return true;
    this.#stop = 'connection';
    this.summary.connectionError = describeFailure(failureOf('connection', error));
    return false;
  }

  /**
   * The connection was lost while `jobs` ran (one job, or a group in one transaction). The
   * ledger, asked on a new session, tells whether they committed after all (a group: all or
   * none); if not, the first carries a connection failure (or, outside the ledger, is
   * uncertain) and the rest go back untouched. The drain stops.
   */
  async #connectionLost(jobs: readonly Job[], error: unknown, t: number, path: string): Promise<void> {
    this.#hold.lose();
    this.#stop = 'connection';
    const first = jobs[0]!;
    if (first.once && (await this.#hold.committedAfterAll(first.record.id))) {
      // Lost during COMMIT, but the ledger has it: it ran, once.
      this.summary.connectionError = describeFailure(failureOf('connection', error));
      this.summary.success += jobs.length;
      const ms = (performance.now() - t) / jobs.length;
      for (const job of jobs) this.#succeeded(job, ms, 0);
      this.#claims.remove(...this.#claims.finishAll(jobs));
      return;
    }
    if (jobs.length === 1 && outsideLedger(this.#ledger, first)) {
      // A statement outside the ledger transaction lost its connection: it may have run. A person decides.
      const failure = failureOf('uncertain', error);
      const keyword = this.#driver.dialect.inspect(first.record.sql).keyword || 'unknown';
      const message = `The connection was lost while a statement that commits implicitly (${keyword}) ran outside the ledger: it may or may not have run, so it is not run again (${describeFailure(failure)})`;
      await this.#settleJob(first, path, failure, { message });
      return;
    }
    // A connection failure: the job goes back to its place with one more attempt, or to failed/connection-…; a segment's other unfinished jobs go back with it.
    await this.#settleJob(first, first.path, failureOf('connection', error));
    await this.#claims.returnUnrun(jobs.slice(1));
  }

  /** Settles a failed job of this drain (settle.ts), its claim at `path`. With strictOrder, a job that went to a blocking failed/ file stops the drain. */
  async #settleJob(job: Job, path: string, failure: Failure, options: SettleOptions = {}): Promise<void> {
    const moved = await settleFailure(this.#settling, { record: job.record, foundAt: job.src, path, place: (to, updated) => this.#claims.placeFailed(job, path, to, updated) }, failure, {
      ...options,
      claimedAt: job.claimedAt,
      count: (f, to) => countFailure(this.summary, f, to, this.#options.step),
    });
    if (this.#strictOrder && moved !== null && blocks(failure)) this.#block(basename(moved));
  }

  /**
   * Settles the burst's refused jobs together (settle.ts settleRefused, Claims.placeRefused):
   * one round of file syncs for all, instead of four syncs each. Until then their claims
   * stay where they are: a crash gives them back to the spool, to run (and fail) again.
   */
  async #settleRefused(): Promise<void> {
    const pending = this.#refused;
    this.#refused = [];
    await settleRefused(this.#settling, pending.map((p) => p.refused), (updated, prefix) => this.#claims.placeRefused(pending.map(({ job }, k) => ({ job, updated: updated[k]!, prefix }))));
  }

  /** A refused job of a burst, to settle with the others (#settleRefused). */
  #refusedOf(job: Job, cls: 'sql' | 'timeout', error: unknown, ms: number): { readonly job: Job; readonly refused: Refused } {
    return { job, refused: { record: job.record, foundAt: job.src, failure: { ...failureOf(cls, error), class: cls }, options: { ms, claimedAt: job.claimedAt, count: (f, to) => countFailure(this.summary, f, to, this.#options.step) } } };
  }

  /** strictOrder: the file `name` in failed/ blocks the datasource; the drain stops (a stop already under way keeps its reason). */
  #block(name: string): false {
    this.summary.blocked ??= name;
    if (this.#stop === 'none') this.#stop = 'blocked';
    return false;
  }

  /** A claimed file that is not a valid job (or not in its place and can't be moved there) goes to failed/. */
  async #settleInvalid(claimed: string, name: string, error: unknown, record: Partial<SpoolRecord>, src: string): Promise<void> {
    const { layout, syncer } = this.#deps;
    await settleFailure(this.#settling, invalidFile(layout, syncer, claimed, name, record, src), failureOf('invalid', error), { count: (f, to) => countFailure(this.summary, f, to, this.#options.step) });
  }

  /** A job committed: told to onOutcome (status by id, events, webhooks) and counted for progress. */
  #succeeded({ record, claimedAt }: Job, ms: number, affectedRows: number): void {
    this.#deps.onOutcome?.(succeededOutcome(record.id, this.#datasource, ms, affectedRows, claimedAt), record);
    this.#options.step?.();
  }

  /**
   * Releases the session however the drain ends; first, with the ledger, deletes the rows of
   * jobs whose files are all gone (under the lock; not in a run without upkeep). Resolves with the jobs left pending when
   * that prune counted them (one walk of the tree for both), else null.
   */
  async #release(): Promise<number | null> {
    let left: number | null = null;
    const kept = this.#deps.kept;
    const keepMs = this.#options.keepLockMs ?? 0;
    if (kept !== undefined && keepMs > 0 && this.#completed && this.#stop === 'none' && this.#hold.keepable) {
      // Continuous mode: the lock stays ours for the next run (run/kept-holds.ts); no prune (a run with the upkeep releases it).
      kept.keep(this.#datasource, this.#hold, keepMs);
    } else await this.#hold.release(async (session) => {
      if (this.#ledger === null || this.summary.success + this.summary.settled === 0 || this.#options.upkeep === false) return;
      try {
        const live = await oldestLiveId(this.#deps.layout, this.#config, this.stopped ? this.#datasource : undefined);
        left = live.count;
        this.summary.pruned = await session.pruneLedger(live.oldest);
        // Key rows are not job rows: they go by age (the lookup checks the age itself, so this only bounds the table).
        await session.pruneKeyRows(this.#config.keyRetentionMs);
      } catch {
        // the next run prunes
      }
    });
    await removeIfEmpty(this.#claims.dir);
    await removeIfEmpty(dirname(this.#claims.dir));
    return left;
  }
}
