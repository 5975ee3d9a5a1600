import type { Driver } from '../db/driver.js';
import type { ResolvedConfig, RunOptions } from '../interfaces.js';
import type { Logs } from '../ops/logs.js';
import type { Outcome } from '../ops/outcomes.js';
import type { DirSyncer } from '../spool/durable.js';
import type { KeptHolds } from './kept-holds.js';
import type { Layout } from '../spool/layout.js';
import type { SpoolRecord } from '../spool/record.js';
import type { SpoolWriter } from '../spool/writer.js';

/** What a run needs, handed in (the runner opens nothing by itself). */
export interface RunnerDeps {
  readonly layout: Layout;
  readonly config: ResolvedConfig;
  readonly writer: SpoolWriter;
  /** Directory fsyncs for the runner's own moves (always on: they are few next to the statements). */
  readonly syncer: DirSyncer;
  readonly logs: Logs;
  /** This runner's name, host.pid.starttime: its claims live in spool/.active/<name>/. */
  readonly name: string;
  driver(datasource: string): Driver;
  /** The datasource locks kept between runs (continuous mode): a drain takes its datasource's, and keeps it again with RunOptions.keepLockMs. */
  readonly kept?: KeptHolds;
  /** Told of every job that finished (succeeded, or moved to failed/), before its file is removed. */
  onOutcome?(outcome: Outcome, record: SpoolRecord | null): void;
}

/** What a drain is given: the run's options plus `step`, called once per statement executed or refused. */
export interface DrainOptions extends RunOptions {
  readonly step?: () => void;
  /** A script ran its statement `index` of `total`. */
  readonly scriptStep?: (id: string, index: number, total: number) => void;
}
