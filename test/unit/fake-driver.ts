import { CoalescedBatchError, keyLedgerId, ledgerIdsOf, type BatchOptions } from '../../src/db/driver.js';
import type { BatchJob, Dialect, Driver, EachResult, ExecuteResult, LockKey, OnceResult, ScriptStep, ScriptStepResult, Session, StatementParams } from '../../src/db/driver.js';
import { ScriptSplitter } from '../../src/db/mysql/script.js';

/**
 * A fake database for unit tests of the drain's decisions (never for integration tests):
 * it keeps what committed in order, a ledger of job ids, and a lock table, and fails where a
 * test says. Statements are recognised by their first param (a job number).
 */

/**
 * What a statement meets: nothing (it commits), an SQL error, a transient error (a deadlock:
 * rolled back, nothing of it remains), a lost connection, or a lost connection after its
 * COMMIT reached the ledger.
 */
export type Fault = 'sql' | 'transient' | 'lost' | 'lost-after-commit' | null;

/** The error a fake SQL refusal throws (dialect: 'sql'). */
export function sqlError(n: unknown): Error {
  return Object.assign(new Error(`Refused statement ${String(n)}`), { code: 'ER_FAKE_REFUSED', errno: 1146 });
}

/** The error a fake deadlock throws (dialect: 'transient'). */
export function deadlockError(): Error {
  return Object.assign(new Error('Deadlock found when trying to get lock; try restarting transaction (fake)'), { code: 'ER_LOCK_DEADLOCK', errno: 1213, sqlState: '40001' });
}

/** The error a fake lost connection throws (dialect: 'connection'). */
export function lostError(): Error {
  return Object.assign(new Error('Connection lost (fake)'), { code: 'FAKE_LOST', fatal: true });
}

export const fakeDialect: Dialect = {
  name: 'fake',
  classifyError: (error, phase) => {
    if (phase === 'connect' || (error as { fatal?: boolean } | null)?.fatal === true) return 'connection';
    return (error as { errno?: number } | null)?.errno === 1213 ? 'transient' : 'sql';
  },
  inspect: (sql) => {
    const keyword = /^\s*([A-Za-z]+)/.exec(sql)?.[1]?.toUpperCase() ?? '';
    const single = !sql.trim().replace(/;$/, '').includes(';');
    const data = ['INSERT', 'UPDATE', 'DELETE'].includes(keyword) && single;
    return { keyword, transactional: data && !sql.includes('@'), changesSession: !data || sql.includes('@') };
  },
  lockKey: (spoolId, datasource) => `fake:${spoolId}:${datasource}`,
  scriptSplitter: () => new ScriptSplitter(),
  scriptRole: (sql) => (/^\s*(SET|USE)\b/i.test(sql) ? 'session' : /^\s*(INSERT|UPDATE|DELETE)\b/i.test(sql) ? 'transactional' : 'other'),
};

export class FakeDatabase {
  /** The job numbers (first param) of the statements that committed, in order. */
  readonly committed: unknown[] = [];
  /** Job ids in the ledger. */
  readonly ledger = new Set<string>();
  /** The size of every group commit sent (executeBatch calls that reached the database). */
  readonly groups: number[] = [];
  /** Lock keys held, by session. */
  readonly locks = new Map<LockKey, FakeSession>();
  /** False: connecting fails as if the server were down. */
  reachable = true;
  /** The fault a statement with this job number meets (checked each time it is sent). */
  fault: (n: unknown) => Fault = () => null;
  /** Sessions opened. */
  connects = 0;
  /** Session resets, in order: the job number of the statement run just before each. */
  readonly resets: unknown[] = [];
  /** The job number of the last statement sent. */
  last: unknown = null;
  /** Statements sent that met a transient fault (rolled back). */
  transients = 0;
  /** Whether each executeBatch asked to merge its INSERTs (coalesce), in order. */
  readonly coalesceAsked: boolean[] = [];
  /** True: a group asked to merge fails as a merged INSERT does (CoalescedBatchError, nothing committed). */
  refuseMerged = false;

  driver(): Driver {
    return new FakeDriver(this);
  }

  /** One statement, in or out of a transaction: throws its fault, else records it. Returns the rows it affected. */
  apply(params: StatementParams, commit: () => void): void {
    const n = Array.isArray(params) ? params[0] : Object.values(params)[0];
    this.last = n;
    const fault = this.fault(n);
    if (fault === 'sql') throw sqlError(n);
    if (fault === 'transient') {
      this.transients++;
      throw deadlockError();
    }
    if (fault === 'lost') throw lostError();
    commit();
    this.committed.push(n);
    if (fault === 'lost-after-commit') throw lostError();
  }
}

class FakeDriver implements Driver {
  readonly dialect = fakeDialect;
  readonly capabilities = { groupCommit: true, streaming: false };
  readonly #db: FakeDatabase;

  constructor(db: FakeDatabase) {
    this.#db = db;
  }

  connect(): Promise<Session> {
    if (!this.#db.reachable) return Promise.reject(Object.assign(new Error('connect ECONNREFUSED (fake)'), { code: 'ECONNREFUSED' }));
    this.#db.connects++;
    return Promise.resolve(new FakeSession(this.#db));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

// The session's methods are async so that a fault thrown in them rejects, as a driver's would; they have nothing to await.
/* eslint-disable @typescript-eslint/require-await */
class FakeSession implements Session {
  readonly #db: FakeDatabase;
  #dead = false;

  constructor(db: FakeDatabase) {
    this.#db = db;
  }

  #alive(): void {
    if (this.#dead || !this.#db.reachable) throw lostError();
  }

  async execute(_sql: string, params: StatementParams): Promise<ExecuteResult> {
    this.#alive();
    this.#db.apply(params, () => {});
    return { affectedRows: 1 };
  }

  async executeOnce(id: string, _sql: string, params: StatementParams, keyed = false): Promise<OnceResult> {
    this.#alive();
    if (this.#db.ledger.has(id)) return { status: 'done-before' };
    this.#db.apply(params, () => ledgerIdsOf([{ id, keyed }]).forEach((row) => this.#db.ledger.add(row)));
    return { status: 'done', affectedRows: 1 };
  }

  /** A script's statement commits its text (no faults: script decisions are tested against the real database). */
  async executeScriptStep(step: ScriptStep): Promise<ScriptStepResult> {
    this.#alive();
    if (step.key !== null && this.#db.ledger.has(step.key)) return { affectedRows: 0, inTransaction: false, doneBefore: true };
    this.#db.committed.push(step.sql);
    if (step.key !== null) this.#db.ledger.add(step.key);
    return { affectedRows: 1, inTransaction: false, doneBefore: false };
  }

  async scriptProgress(id: string): Promise<number> {
    const keys = [...this.#db.ledger].filter((key) => key.startsWith(`${id}:`));
    return Math.max(0, ...keys.map((key) => Number(key.slice(id.length + 1))));
  }

  /** Not under savepoints: the drain runs the jobs one by one (savepoints are tested against the real databases). */
  async executeEach(): Promise<readonly EachResult[] | null> {
    this.#alive();
    return null;
  }

  async executeBatch(jobs: readonly BatchJob[], options: BatchOptions = {}): Promise<readonly number[] | null> {
    this.#alive();
    this.#db.groups.push(jobs.length);
    this.#db.coalesceAsked.push(options.coalesce === true);
    if (options.coalesce === true && this.#db.refuseMerged) throw new CoalescedBatchError(sqlError('merged'));
    // All or nothing: the faults are found before anything commits, except lost-after-commit.
    const faults = jobs.map((job) => this.#db.fault(Array.isArray(job.params) ? job.params[0] : null));
    const refused = faults.findIndex((f) => f === 'sql' || f === 'transient' || f === 'lost');
    if (refused >= 0) throw { sql: sqlError(jobs[refused]!.params), transient: deadlockError(), lost: lostError() }[faults[refused] as 'sql' | 'transient' | 'lost'];
    if (jobs.some((job) => this.#db.ledger.has(job.id))) throw sqlError('duplicate ledger id');
    for (const row of ledgerIdsOf(jobs)) this.#db.ledger.add(row);
    for (const job of jobs) {
      this.#db.committed.push(Array.isArray(job.params) ? job.params[0] : null);
    }
    if (faults.includes('lost-after-commit')) throw lostError();
    return jobs.map(() => 1);
  }

  stream(): Promise<{ rows: number; affectedRows: number }> {
    return Promise.reject(new Error('the fake driver does not stream'));
  }

  async isDone(id: string): Promise<boolean> {
    this.#alive();
    return this.#db.ledger.has(id);
  }

  async pruneLedger(): Promise<number> {
    return 0;
  }

  async rememberKey(id: string): Promise<void> {
    this.#alive();
    this.#db.ledger.add(keyLedgerId(id));
  }

  /** The fake ledger keeps no times: a key row holds until pruned (never). */
  async keyRemembered(id: string): Promise<boolean> {
    this.#alive();
    return this.#db.ledger.has(keyLedgerId(id));
  }

  async pruneKeyRows(): Promise<number> {
    return 0;
  }

  async tryLock(key: LockKey): Promise<boolean> {
    this.#alive();
    const holder = this.#db.locks.get(key);
    if (holder !== undefined && holder !== this) return false;
    this.#db.locks.set(key, this);
    return true;
  }

  async unlock(key: LockKey): Promise<void> {
    if (this.#db.locks.get(key) === this) this.#db.locks.delete(key);
  }

  async cancel(): Promise<void> {}

  async reset(): Promise<void> {
    this.#alive();
    this.#db.resets.push(this.#db.last);
  }

  release(): void {}

  destroy(): void {
    this.#dead = true;
    for (const [key, holder] of this.#db.locks) if (holder === this) this.#db.locks.delete(key);
  }
}
/* eslint-enable @typescript-eslint/require-await */
