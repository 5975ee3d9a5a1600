import { join } from 'node:path';
import fs from 'fs-extra';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ResolvedConfig, RunSummary } from '../interfaces.js';
import type { Outcome } from '../ops/outcomes.js';
import { failedClassOf, type FailedClass } from '../spool/failed-dir.js';
import { idTime } from '../spool/id.js';
import type { Layout } from '../spool/layout.js';
import { countJobs, listSorted, treeNames } from '../spool/listing.js';
import { readJobRecords } from '../spool/read-job.js';
import { idOfFileName } from '../spool/shards.js';

/**
 * The Prometheus metrics of a home (docs/dashboard.md): what the spool and failed/ hold,
 * read on a scrape, and, for a process that runs jobs, counters fed by its events.
 *
 * A scrape does not list the spool: pending counts come from one walk per datasource tree
 * (spool/listing.ts countJobs), which stats each large leaf and lists only the leaves the
 * leaf index does not trust (spool/leaf-index.ts). The snapshot is kept for `cacheMs`, so
 * several scrapers at once cost one walk. failed/ is listed (one directory); the datasource
 * of each file is read once and remembered by name (a failed/ name is a job's id, whose
 * datasource never changes).
 */

/** Per datasource: pending jobs and the oldest one's age; failed files by class; paused or not. */
export interface SpoolSnapshot {
  readonly pending: ReadonlyMap<string, { readonly count: number; readonly oldestAgeSeconds: number }>;
  readonly failed: ReadonlyMap<string, Readonly<Record<FailedClass, number>>>;
  readonly paused: ReadonlyMap<string, boolean>;
}

/** The label a failed/ file gets when it holds no readable job (a drop-in that could not be read, a directory). */
export const UNKNOWN_DATASOURCE_LABEL = 'unknown';

const FAILED_CLASSES: readonly FailedClass[] = ['failed', 'connection', 'uncertain', 'other'];

/** Statement durations: 1 ms to 5 min. */
const STATEMENT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Run durations: 10 ms to 1 h. */
const RUN_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

export interface SpoolMetricsOptions {
  readonly layout: Layout;
  readonly config: ResolvedConfig;
  /** How long a snapshot of the spool serves scrapes. @default 2000 */
  readonly cacheMs?: number;
}

export class SpoolMetrics {
  /** This server's registry (not prom-client's global one). */
  readonly registry = new Registry();
  readonly #layout: Layout;
  readonly #config: ResolvedConfig;
  readonly #cacheMs: number;
  readonly #failedDatasource = new Map<string, string>();
  #snapshot: { at: number; value: Promise<SpoolSnapshot> } | null = null;
  readonly #pending: Gauge;
  readonly #oldest: Gauge;
  readonly #failed: Gauge;
  readonly #paused: Gauge;
  #jobs: Counter | null = null;
  #statements: Histogram | null = null;
  #runs: Histogram | null = null;

  constructor(options: SpoolMetricsOptions) {
    this.#layout = options.layout;
    this.#config = options.config;
    this.#cacheMs = options.cacheMs ?? 2000;
    const registers = [this.registry];
    this.#pending = new Gauge({ name: 'querybatch_pending_jobs', help: 'Jobs waiting in the spool', labelNames: ['datasource'], registers });
    this.#oldest = new Gauge({ name: 'querybatch_oldest_pending_age_seconds', help: 'Age of the oldest pending job (0 when none is pending)', labelNames: ['datasource'], registers });
    this.#failed = new Gauge({ name: 'querybatch_failed_files', help: 'Files in failed/, by class (failed, connection, uncertain, other)', labelNames: ['datasource', 'class'], registers });
    this.#paused = new Gauge({ name: 'querybatch_paused', help: '1 when the datasource is paused (spool/.paused/<datasource>)', labelNames: ['datasource'], registers });
  }

  /**
   * Adds the counters of a process that runs jobs: jobs_total (succeeded or failed, from each
   * job's outcome), statement and run durations. Feed them with observeOutcome and observeRun.
   */
  enableRunMetrics(): void {
    if (this.#jobs !== null) return;
    const registers = [this.registry];
    this.#jobs = new Counter({ name: 'querybatch_jobs_total', help: 'Jobs finished by this process, by outcome (succeeded, failed)', labelNames: ['datasource', 'outcome'], registers });
    this.#statements = new Histogram({ name: 'querybatch_statement_duration_seconds', help: 'Time a statement took on the server', labelNames: ['datasource'], buckets: STATEMENT_BUCKETS, registers });
    this.#runs = new Histogram({ name: 'querybatch_run_duration_seconds', help: 'Wall-clock duration of the runs of this process', buckets: RUN_BUCKETS, registers });
  }

  observeOutcome(outcome: Outcome): void {
    this.#jobs?.inc({ datasource: outcome.datasource, outcome: outcome.status });
    // A job that never reached the server (invalid file, no connection) took no statement time.
    if (outcome.status === 'succeeded' || outcome.durationMs > 0) this.#statements?.observe({ datasource: outcome.datasource }, outcome.durationMs / 1000);
  }

  observeRun(summary: RunSummary): void {
    this.#runs?.observe(summary.wallMs / 1000);
  }

  /** The text a scrape gets (Prometheus text format), from a snapshot at most cacheMs old. */
  async metrics(): Promise<string> {
    const snapshot = await this.snapshot();
    this.#pending.reset();
    this.#oldest.reset();
    this.#failed.reset();
    this.#paused.reset();
    for (const [ds, p] of snapshot.pending) {
      this.#pending.set({ datasource: ds }, p.count);
      this.#oldest.set({ datasource: ds }, p.oldestAgeSeconds);
    }
    for (const [ds, byClass] of snapshot.failed) {
      for (const cls of FAILED_CLASSES) this.#failed.set({ datasource: ds, class: cls }, byClass[cls]);
    }
    for (const [ds, paused] of snapshot.paused) this.#paused.set({ datasource: ds }, paused ? 1 : 0);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The spool's counts, read at most once per cacheMs (a failed read is not kept). */
  snapshot(now = Date.now()): Promise<SpoolSnapshot> {
    if (this.#snapshot !== null && now - this.#snapshot.at < this.#cacheMs) return this.#snapshot.value;
    const value = this.#read(now);
    const entry = { at: now, value };
    this.#snapshot = entry;
    value.catch(() => {
      if (this.#snapshot === entry) this.#snapshot = null;
    });
    return value;
  }

  async #read(now: number): Promise<SpoolSnapshot> {
    const names = new Set([...Object.keys(this.#config.datasources), ...await treeNames(this.#layout.spoolDir)]);
    const pending = new Map<string, { count: number; oldestAgeSeconds: number }>();
    const paused = new Map<string, boolean>();
    for (const ds of [...names].sort()) {
      const { count, oldest } = await countJobs(join(this.#layout.spoolDir, ds));
      const id = oldest === null ? undefined : idOfFileName(oldest);
      pending.set(ds, { count, oldestAgeSeconds: id === undefined ? 0 : Math.max(0, now - idTime(id)) / 1000 });
      paused.set(ds, await isPaused(this.#layout, ds));
    }
    return { pending, failed: await this.#readFailed(names), paused };
  }

  /** failed/ counted by datasource and class; every known datasource has a row (zeros included). */
  async #readFailed(names: ReadonlySet<string>): Promise<Map<string, Record<FailedClass, number>>> {
    const failed = new Map<string, Record<FailedClass, number>>();
    const row = (ds: string) => {
      let r = failed.get(ds);
      if (r === undefined) failed.set(ds, (r = { failed: 0, connection: 0, uncertain: 0, other: 0 }));
      return r;
    };
    for (const ds of names) row(ds);
    const present = new Set<string>();
    for (const entry of await listSorted(this.#layout.failedDir)) {
      present.add(entry.name);
      row(await this.#datasourceOfFailed(entry.name))[failedClassOf(entry.name)]++;
    }
    for (const name of this.#failedDatasource.keys()) if (!present.has(name)) this.#failedDatasource.delete(name);
    return failed;
  }

  async #datasourceOfFailed(name: string): Promise<string> {
    const known = this.#failedDatasource.get(name);
    if (known !== undefined) return known;
    let ds = UNKNOWN_DATASOURCE_LABEL;
    try {
      const { records } = await readJobRecords(join(this.#layout.failedDir, name), this.#config.limits);
      ds = records[0]?.datasource ?? ds;
    } catch {
      // not a readable job: counted under "unknown"
    }
    this.#failedDatasource.set(name, ds);
    return ds;
  }
}

/**
 * Whether `datasource` is paused: a marker file spool/.paused/<datasource>. Pausing is
 * built separately (issue 14, queue control); this reads the marker it is to write, so the
 * gauge is 0 until a pause exists.
 */
async function isPaused(layout: Layout, datasource: string): Promise<boolean> {
  try {
    await fs.promises.lstat(join(layout.spoolDir, '.paused', datasource));
    return true;
  } catch {
    return false;
  }
}
