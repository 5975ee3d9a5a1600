import { dirname, join } from 'node:path';
import fs from 'fs-extra';
import { makeDirDurable, tempPathFor, writeFileAtomic, writeTemp, type DirSyncer } from '../spool/durable.js';
import { moveToFailed, moveToFailedSync, type FailedPrefix } from '../spool/failed-dir.js';
import type { Layout } from '../spool/layout.js';
import { readJobFile, type ReadLimits } from '../spool/read-job.js';
import { rewriteScriptFile } from '../spool/script-file.js';
import { decodeParams, decodeRecord, decodeSegment, encodeRecord, type SpoolRecord } from '../spool/record.js';
import { jobFileName, spoolPathFor } from '../spool/shards.js';
import { QueryBatchError } from '../errors.js';
import { Segment, type Job } from './job.js';
import type { Destination } from './settle.js';

/** The name a job's file gets in failed/ (before its prefix). */
export function failedNameOf(record: SpoolRecord): string {
  return jobFileName(record.id);
}

/** A segment file's text: a record a line. */
function segmentText(records: readonly SpoolRecord[]): string {
  return records.map((r) => encodeRecord(r)).join('');
}

/**
 * Writes small temp files (O_EXCL, mode 0600) synchronously, then fsyncs them side by side in
 * the thread pool: one trip per file, not four (open, write, sync, close), and the fsyncs
 * land together. On any failure every one of them is removed and the error rethrown.
 */
async function writeSyncedTemps(files: readonly { readonly tmp: string; readonly text: string }[]): Promise<void> {
  const fds: number[] = [];
  try {
    for (const { tmp, text } of files) {
      fds.push(fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600));
      fs.writeFileSync(fds[fds.length - 1]!, text);
    }
    await Promise.all(fds.map((fd) => new Promise<void>((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve())))));
  } catch (error) {
    for (const { tmp } of files) fs.rmSync(tmp, { force: true });
    throw error;
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}

/**
 * The files one drain holds in spool/.active/<runner>/<datasource>/, and every way they
 * leave it: removed once their jobs finished, returned to their place in the spool,
 * rewritten, or written to failed/. Claims of segments are tracked until their last job
 * finishes or they are returned.
 */
export class Claims {
  readonly #layout: Layout;
  readonly #datasource: string;
  readonly #syncer: DirSyncer;
  /** spool/.active/<runner>/<datasource>. */
  readonly dir: string;
  /** Claimed segments not yet finished nor returned. */
  readonly #segments = new Set<Segment>();
  #dirReady = false;

  constructor(layout: Layout, runner: string, datasource: string, syncer: DirSyncer) {
    this.#layout = layout;
    this.#datasource = datasource;
    this.#syncer = syncer;
    this.dir = join(layout.activeDir, runner, datasource);
  }

  /** Takes the job file `src` by one rename into the claim directory; null when another runner took it first. */
  async take(src: string, name: string): Promise<string | null> {
    if (!this.#dirReady) {
      await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.#dirReady = true;
    }
    const claimed = join(this.dir, name);
    try {
      // Synchronous: a thread-pool trip costs more than the rename itself (spool/read-job.ts).
      fs.renameSync(src, claimed);
      return claimed;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return null;
    }
  }

  /** Reads a claimed file's jobs (a segment's several, `count` from its name; a script's header); throws when it is not valid. */
  async read(claimed: string, src: string, count: number, limits: ReadLimits, judge: (record: SpoolRecord) => Pick<Job, 'once' | 'changesSession'>): Promise<Job[]> {
    const claimedAt = new Date().toISOString();
    const read = await readJobFile(claimed, limits);
    if (read.kind === 'script') {
      if (count !== 1) throw new QueryBatchError('INVALID_SPOOL_FILE', `Expected a segment of ${count} jobs (the count its name gives); found a script`);
      return [{ record: read.file.record, params: [], path: claimed, src, claimedAt, ...judge(read.file.record), script: read.file }];
    }
    const records = count === 1 ? [decodeRecord(read.text)] : decodeSegment(read.text, count);
    return records.map((record) => ({ record, params: decodeParams(record.params), path: claimed, src, claimedAt, ...judge(record) }));
  }

  /** Moves a claim to `target` in the spool (a misplaced file to its own place); false when a file is there already. */
  async moveTo(claimed: string, target: string): Promise<boolean> {
    if (await fs.pathExists(target)) return false;
    await makeDirDurable(dirname(target), this.#syncer);
    await fs.promises.rename(claimed, target);
    return true;
  }

  /** Writes a claimed segment's jobs back to the spool as files of their own, then removes the claim. */
  async split(claimed: string, records: readonly SpoolRecord[]): Promise<void> {
    for (const record of records) await writeFileAtomic(this.#layout.tmpDir, spoolPathFor(this.#layout.spoolDir, this.#datasource, record.id), encodeRecord(record), this.#syncer);
    this.remove(claimed);
  }

  /** Tracks a claimed segment file's jobs; returns them, each knowing its segment. */
  openSegment(path: string, jobs: readonly Omit<Job, 'segment'>[]): readonly Job[] {
    const segment = new Segment(path, jobs);
    this.#segments.add(segment);
    return segment.jobs;
  }

  /**
   * A job finished (committed, settled by the ledger, or written to failed/); returns the
   * claim that can now be removed (a segment's once its last job has), or null.
   */
  finish(job: Job): string | null {
    const segment = job.segment;
    if (segment === undefined) return job.path;
    if (!segment.finish(job)) return null;
    this.#segments.delete(segment);
    return segment.path;
  }

  /** finish() for several jobs: the claims that can now be removed. */
  finishAll(jobs: readonly Job[]): string[] {
    return jobs.map((job) => this.finish(job)).filter((path) => path !== null);
  }

  /**
   * Removes claims whose jobs finished, synchronously, between round trips: an unlink in
   * the thread pool while the next COMMIT is in flight slows that COMMIT more than the
   * unlink costs here (docs/decisions.md).
   */
  remove(...paths: string[]): void {
    for (const path of paths) fs.unlinkSync(path);
  }

  /** Moves a claimed file (of `count` jobs, the first `id`) back to its place in the spool, durably; returns that place. */
  async putBack(claimed: string, id: string, count = 1): Promise<string> {
    const back = spoolPathFor(this.#layout.spoolDir, this.#datasource, id, count);
    await makeDirDurable(dirname(back), this.#syncer);
    await fs.promises.rename(claimed, back);
    await this.#syncer.sync(dirname(back));
    return back;
  }

  /** Claimed jobs that did not run go back to their places, untouched (with the rest of their segment). */
  async returnUnrun(jobs: readonly Job[]): Promise<void> {
    for (const job of jobs) {
      if (job.segment === undefined) await this.putBack(job.path, job.record.id);
      else if (this.#segments.has(job.segment)) await this.returnSegment(job.segment);
    }
  }

  /** Every segment still held goes back to the spool (jobs not reached: a limit, a stop). */
  async returnSegments(): Promise<void> {
    for (const segment of [...this.#segments]) await this.returnSegment(segment);
  }

  /**
   * A segment's unfinished jobs go back to the spool (with `updated` in place of its job's
   * record): untouched, the claim is moved back; else they are written as a new file, and
   * the claim goes once that is durable (a crash between leaves both, and the ledger
   * settles what repeats). Returns the place.
   */
  async returnSegment(segment: Segment, updated?: SpoolRecord): Promise<string> {
    this.#segments.delete(segment);
    const open = segment.openRecords(updated); // never empty: a segment with no open job is no longer held
    if (updated === undefined && !segment.touched) return this.putBack(segment.path, open[0]!.id, open.length);
    const back = spoolPathFor(this.#layout.spoolDir, this.#datasource, open[0]!.id, open.length);
    await writeFileAtomic(this.#layout.tmpDir, back, segmentText(open), this.#syncer);
    this.remove(segment.path);
    return back;
  }

  /** After one of its jobs left for failed/: the segment's claim keeps only the jobs still open, so a crash does not run that one again. */
  async shrink(segment: Segment): Promise<void> {
    const open = segment.openRecords();
    const path = join(this.dir, jobFileName(open[0]!.id, open.length));
    await writeFileAtomic(this.#layout.tmpDir, path, segmentText(open), this.#syncer);
    if (path !== segment.path) this.remove(segment.path);
    segment.path = path;
  }

  /** Rewrites a claim of one job in place (temp + rename: a crash leaves the old or the new, whole). */
  async rewrite(path: string, record: SpoolRecord): Promise<void> {
    if (record.script !== undefined) {
      // A script's header changes; its progress and body are copied as they are.
      await rewriteScriptFile(tempPathFor(this.#layout.tmpDir, 'rewrite'), path, record);
      await this.#syncer.sync(dirname(path));
      return;
    }
    await writeFileAtomic(this.#layout.tmpDir, path, encodeRecord(record), this.#syncer);
  }

  /** Moves a claim to failed/ as `<prefix><name>`; returns where. */
  moveToFailed(path: string, prefix: FailedPrefix, name: string): Promise<string> {
    return moveToFailed(this.#layout, path, prefix, name, this.#syncer);
  }

  /** Writes one job of a segment to failed/ as a file of its own; returns where. */
  async failAlone(record: SpoolRecord, prefix: FailedPrefix): Promise<string> {
    const tmp = tempPathFor(this.#layout.tmpDir, failedNameOf(record));
    await writeTemp(tmp, encodeRecord(record), true);
    return moveToFailed(this.#layout, tmp, prefix, failedNameOf(record), this.#syncer);
  }

  /**
   * placeFailed() for a burst of refused jobs (to failed/ as `<prefix><id>.batchsql`, each
   * rewritten as its `updated` record), with the file work shared: every rewrite is written
   * and fsynced at once (the fsyncs run side by side), the claim directory and failed/ are
   * fsynced once each, and each segment shrinks (or goes) once. Each file still moves in one
   * rename: a claim of one job is rewritten in place, then renamed into failed/; a segment's
   * job is written to failed/ alone, and the segment keeps its other open jobs (a crash before
   * it shrank leaves the job in both: recovery drops it from the segment, recovery.ts).
   * Returns where each went, in order.
   */
  async placeRefused(items: readonly { readonly job: Job; readonly updated: SpoolRecord; readonly prefix: FailedPrefix }[]): Promise<string[]> {
    const temps = items.map(({ job }) => ({ tmp: tempPathFor(this.#layout.tmpDir, failedNameOf(job.record)) }));
    await writeSyncedTemps(temps.map(({ tmp }, k) => ({ tmp, text: encodeRecord(items[k]!.updated) })));
    // Claims of one job take their rewritten record in place: the claim directory is synced once for all.
    const alone = items.filter(({ job }) => job.segment === undefined);
    items.forEach(({ job }, k) => {
      if (job.segment === undefined) fs.renameSync(temps[k]!.tmp, job.path);
    });
    if (alone.length > 0) await this.#syncer.sync(this.dir);
    const moved = items.map(({ job, prefix }, k) => moveToFailedSync(this.#layout, job.segment === undefined ? job.path : temps[k]!.tmp, prefix, failedNameOf(job.record)));
    await this.#syncer.sync(this.#layout.failedDir);
    const shrinking = new Set<Segment>();
    for (const { job } of items) {
      if (job.segment === undefined) continue;
      const last = this.finish(job);
      if (last !== null) {
        this.remove(last);
        shrinking.delete(job.segment);
      } else {
        shrinking.add(job.segment);
      }
    }
    for (const segment of shrinking) await this.shrink(segment);
    return moved;
  }

  /** Renames a claim in the claim directory, durably (the uncertain marker: recovery.ts). */
  async rename(path: string, name: string): Promise<string> {
    const renamed = join(this.dir, name);
    await fs.promises.rename(path, renamed);
    await this.#syncer.sync(this.dir);
    return renamed;
  }

  /**
   * Moves a failed job's claim (now at `path`) to `to`, rewritten as `updated`. A segment's
   * job is written to failed/ alone, and the segment's claim then keeps only its open jobs
   * (or, when the drain stops for the connection, goes back to the spool; when the job stays
   * in the spool, the segment goes back whole with `updated` in its place). Returns where
   * the job went.
   */
  async placeFailed(job: Job, path: string, to: Destination, updated: SpoolRecord | null): Promise<string> {
    const { segment, record } = job;
    if (segment === undefined) {
      // Rewrite the claim, then move it in one rename: a crash leaves one copy, never two.
      if (updated !== null) await this.rewrite(path, updated);
      return to === 'spool' ? this.putBack(path, record.id) : this.moveToFailed(path, to, failedNameOf(record));
    }
    if (to === 'spool') return this.returnSegment(segment, updated ?? undefined);
    const moved = await this.failAlone(updated ?? record, to);
    const last = this.finish(job);
    if (last !== null) this.remove(last);
    else if (to === 'connection-') await this.returnSegment(segment);
    else await this.shrink(segment);
    return moved;
  }
}
