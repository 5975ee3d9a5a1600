import type { DatasourceSummary, RunSummary } from '../interfaces.js';
import type { Failure } from '../spool/failure.js';
import type { AdoptResult } from './adoption.js';
import { describeFailure } from './failure.js';
import type { Destination } from './settle.js';
import type { Recovery } from './recovery.js';

/** A run's counts: a drain's per datasource, and the run's summary made from them. Pure. */

export function emptyDatasourceSummary(): DatasourceSummary {
  return { success: 0, sqlFailed: 0, connectionFailed: 0, invalid: 0, deferred: 0, sqlMs: 0, settled: 0, uncertain: 0, retried: 0 };
}

/** Counts a settled failure into a drain's summary; `step` (the run's progress) counts a refused statement. */
export function countFailure(summary: DatasourceSummary, failure: Failure, to: Destination, step?: () => void): void {
  switch (failure.class) {
    case 'connection':
      summary.connectionFailed++;
      summary.connectionError = describeFailure(failure);
      // Out of connection attempts: moved to failed/connection-….
      if (to !== 'spool') summary.connectionMoved = (summary.connectionMoved ?? 0) + 1;
      break;
    case 'sql':
    case 'timeout':
      step?.();
      summary.sqlFailed++;
      break;
    case 'invalid':
      summary.invalid++;
      summary.sqlFailed++;
      break;
    case 'uncertain':
      summary.uncertain++;
      break;
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** What happened before and around the drains, for the summary. */
export interface RunFacts {
  readonly started: Date;
  readonly finished: Date;
  readonly wallMs: number;
  readonly tmpRemoved: number;
  readonly recovery: Recovery;
  readonly adoption: AdoptResult;
}

/** The run's summary: the drains' counts added up, with what adoption and recovery did. Pure. */
export function summarize(runner: string, perDatasource: Record<string, DatasourceSummary>, facts: RunFacts): RunSummary {
  const totals = Object.values(perDatasource).reduce((a, s) => ({
    success: a.success + s.success,
    sqlFailed: a.sqlFailed + s.sqlFailed,
    connectionFailed: a.connectionFailed + s.connectionFailed,
    invalid: a.invalid + s.invalid,
    deferred: a.deferred + s.deferred,
    sqlMs: a.sqlMs + s.sqlMs,
    settled: a.settled + s.settled,
    uncertain: a.uncertain + s.uncertain,
    retried: a.retried + s.retried,
  }), emptyDatasourceSummary());
  const executed = totals.success + totals.sqlFailed - totals.invalid;
  const { adoption, recovery } = facts;
  return {
    runner,
    startedAt: facts.started.toISOString(),
    finishedAt: facts.finished.toISOString(),
    success: totals.success,
    sqlFailed: totals.sqlFailed + adoption.invalid,
    connectionFailed: totals.connectionFailed,
    invalid: totals.invalid + adoption.invalid,
    deferred: totals.deferred + adoption.settling,
    adopted: adoption.adopted,
    recovered: recovery.recovered + Object.values(perDatasource).reduce((n, s) => n + (s.recovered ?? 0), 0),
    settled: totals.settled,
    uncertain: totals.uncertain + recovery.uncertain.length,
    tmpRemoved: facts.tmpRemoved,
    retried: totals.retried,
    totalMs: round(totals.sqlMs),
    avgMs: executed > 0 ? round(totals.sqlMs / executed) : 0,
    wallMs: Math.round(facts.wallMs),
    datasources: perDatasource,
  };
}

