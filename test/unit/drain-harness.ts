import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config.js';
import type { RunOptions } from '../../src/interfaces.js';
import { Logs } from '../../src/ops/logs.js';
import type { Outcome } from '../../src/ops/outcomes.js';
import { runnerName } from '../../src/run/recovery.js';
import { runBatch } from '../../src/run/run-batch.js';
import { DirSyncer } from '../../src/spool/durable.js';
import { ensureLayout, layoutOf } from '../../src/spool/layout.js';
import { jobsInLeaf, leavesOf } from '../../src/spool/listing.js';
import { decodeJobText, decodeRecord, type SpoolRecord } from '../../src/spool/record.js';
import { SpoolWriter } from '../../src/spool/writer.js';
import { FakeDatabase, type Fault } from './fake-driver.js';

/**
 * The drain's test harness, against a fake driver: no database is reachable or needed. Real
 * files in a temp home; the fake database records what committed, in order. A test file
 * using it removes the homes after each test (`homes`).
 */
export const SQL = 'INSERT INTO t (n) VALUES (?)';
export const homes: string[] = [];


export interface HarnessOptions {
  /** ledger.batch (1: per-statement mode); false: no ledger. */
  readonly batch?: number | false;
  readonly maxConnectionAttempts?: number;
  /** The datasource's retry of transient errors (default: the default). */
  readonly retry?: false | { maxAttempts?: number; backoffMs?: number };
  /** datasources.main.strictOrder. */
  readonly strictOrder?: boolean;
}

export async function harness(options: HarnessOptions = {}) {
  const home = await mkdtemp(join(tmpdir(), 'qb-drain-'));
  homes.push(home);
  const batch = options.batch ?? 4;
  const config = resolveConfig({
    configFile: false,
    home,
    // Port 1: nothing listens there; the drain reaches the database only through the fake driver.
    datasources: { main: { url: 'mysql://root@127.0.0.1:1/none', ledger: batch === false ? false : { batch }, ...(options.retry !== undefined && { retry: options.retry }), ...(options.strictOrder !== undefined && { strictOrder: options.strictOrder }) } },
    maxConnectionAttempts: options.maxConnectionAttempts ?? 3,
    dropInSettleMs: 0,
  });
  const layout = layoutOf(home);
  await ensureLayout(layout);
  const syncer = new DirSyncer();
  const writer = new SpoolWriter(layout, config, syncer);
  const logs = new Logs(layout, config);
  const db = new FakeDatabase();
  const driver = db.driver();
  const outcomes: Outcome[] = [];
  let onOutcome = (_outcome: Outcome) => {};
  const deps = { layout, config, writer, syncer, logs, name: runnerName(), driver: () => driver, onOutcome: (o: Outcome) => (outcomes.push(o), onOutcome(o)) };
  const ids = new Map<number, string>();
  return {
    home,
    layout,
    db,
    outcomes,
    ids,
    onOutcome: (f: (o: Outcome) => void) => (onOutcome = f),
    run: async (runOptions: RunOptions = {}) => {
      const summary = await runBatch(deps, runOptions);
      await logs.close();
      return summary;
    },
    /** Spools jobs 1..n (or the numbers given) one after another: a file each. */
    spool: async (...numbers: number[]) => {
      for (const n of numbers) ids.set(n, await writer.spool(SQL, [n]));
    },
    /** Spools one job of its own text. */
    spoolSql: async (sql: string, n: number) => {
      ids.set(n, await writer.spool(sql, [n]));
    },
    /** Spools the numbers concurrently: the writer puts those that wait into one segment file. */
    spoolTogether: async (...numbers: number[]) => {
      const written = await Promise.all(numbers.map((n) => writer.spool(SQL, [n])));
      numbers.forEach((n, k) => ids.set(n, written[k]!));
    },
    /** The pending jobs, in FIFO order: their number, attempts and the file holding them. */
    pending: async () => {
      const out: { n: unknown; attempts: number; file: string }[] = [];
      for await (const leaf of leavesOf(join(layout.spoolDir, 'main'))) {
        for (const name of await jobsInLeaf(leaf)) {
          for (const r of decodeJobText(await readFile(join(leaf.path, name), 'utf8'))) out.push({ n: (r.params as unknown[])[0], attempts: r.attempts, file: name });
        }
      }
      return out;
    },
    failed: async () => (await readdir(layout.failedDir)).sort(),
    failedRecord: async (name: string): Promise<SpoolRecord> => decodeRecord(await readFile(join(layout.failedDir, name), 'utf8')),
    claimsLeft: async () => (await readdir(layout.activeDir, { recursive: true })).filter((p) => p.endsWith('.batchsql') || p.endsWith('.uncertain')),
    errorLog: async () => readFile(layout.errorLog, 'utf8').catch(() => ''),
  };
}

/** A fault that strikes the first `times` times job `n` is sent, then never. */
export function faultOnce(n: number, fault: Fault, times = 1): (job: unknown) => Fault {
  let left = times;
  return (job) => (job === n && left-- > 0 ? fault : null);
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);
