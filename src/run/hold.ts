import type { Driver, LockKey, Session } from '../db/driver.js';

/** The datasource's lock: not asked for yet, ours, or held by another runner (the drain then touches nothing). */
export type LockState = 'none' | 'held' | 'busy';

/** The drain's database session: not opened yet, open, could not be opened, or lost mid-run. */
export type Link =
  | { readonly state: 'closed' }
  | { readonly state: 'open'; readonly session: Session }
  | { readonly state: 'unreachable'; readonly error: unknown }
  | { readonly state: 'lost' };

/**
 * A drain's hold on its database: one session, and on it the lock that lets one runner at a
 * time drain the datasource (across processes and hosts: the lock dies with the session).
 */
export class DatabaseHold {
  readonly #driver: Driver;
  readonly #key: LockKey;
  lock: LockState = 'none';
  link: Link = { state: 'closed' };

  constructor(driver: Driver, key: LockKey) {
    this.#driver = driver;
    this.#key = key;
  }

  /** The open session; throws when there is none (a step that needs one is reached only with one). */
  get session(): Session {
    if (this.link.state !== 'open') throw new Error(`Expected an open session; the drain's session is ${this.link.state}`);
    return this.link.session;
  }

  /**
   * Connects and takes the lock. Resolves 'held' (the lock is ours), 'busy' (another
   * runner holds it) or 'unreachable' (connecting failed: `link.error` says why).
   */
  async open(): Promise<'held' | 'busy' | 'unreachable'> {
    let session: Session | null = null;
    try {
      session = await this.#driver.connect();
      this.link = { state: 'open', session };
      this.lock = (await session.tryLock(this.#key)) ? 'held' : 'busy';
      return this.lock;
    } catch (error) {
      session?.destroy();
      this.link = { state: 'unreachable', error };
      return 'unreachable';
    }
  }

  /** Whether the lock is ours on an open session whose driver can say later that it still holds it (a hold that can be kept between runs). */
  get keepable(): boolean {
    return this.link.state === 'open' && this.lock === 'held' && this.link.session.holdsLock !== undefined;
  }

  /** A hold kept since an earlier run: whether its session still holds the lock (Session.holdsLock, one round trip). */
  async stillHeld(): Promise<boolean> {
    if (this.link.state !== 'open' || this.lock !== 'held') return false;
    return (await this.link.session.holdsLock?.()) ?? false;
  }

  /** The connection was lost: the session is dropped (the server frees the lock with it). */
  lose(): void {
    if (this.link.state === 'open') this.link.session.destroy();
    this.link = { state: 'lost' };
  }

  /** Resets the session to the datasource's clean state; on failure drops it and resolves with the error (else undefined). */
  async reset(): Promise<unknown> {
    try {
      await this.session.reset();
      return undefined;
    } catch (error) {
      this.lose();
      return error ?? new Error('the session reset failed');
    }
  }

  /** After a connection lost mid-transaction: did job `id` commit? Asked on a new session; false when that fails too. */
  async committedAfterAll(id: string): Promise<boolean> {
    let probe: Session | null = null;
    try {
      probe = await this.#driver.connect();
      const done = await probe.isDone(id);
      probe.release();
      return done;
    } catch {
      probe?.destroy();
      return false;
    }
  }

  /**
   * Unlocks and gives the session back, however the drain ends (a leaked connection would
   * make a later run wait forever); `beforeUnlock` runs first, under the lock, when it is held.
   */
  async release(beforeUnlock: (session: Session) => Promise<void>): Promise<void> {
    if (this.link.state !== 'open') return;
    const session = this.link.session;
    if (this.lock === 'held') await beforeUnlock(session);
    try {
      if (this.lock === 'held') await session.unlock(this.#key);
      session.release();
    } catch {
      session.destroy(); // the server frees the lock with the session
    }
    this.link = { state: 'closed' };
  }
}
