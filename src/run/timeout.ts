import { QueryBatchError } from '../errors.js';

/**
 * Runs a statement under a time limit. When the limit passes, `cancel` is called to stop
 * the statement on the server (mysql2's own `timeout` only stops waiting for it: the
 * server would go on). The caller's next statement waits until the cancel is done, so a
 * late `KILL QUERY` can never hit the statement after this one.
 *
 * - finished in time: its result (or its own error);
 * - limit passed and the statement was stopped: a STATEMENT_TIMEOUT error (cause: the
 *   driver's error, e.g. ER_QUERY_INTERRUPTED);
 * - limit passed but the statement finished before the cancel reached it: its result,
 *   since it did complete.
 */
export async function withTimeout<T>(limitMs: number | null, run: () => Promise<T>, cancel: () => Promise<void>): Promise<T> {
  if (limitMs === null) return run();
  let cancelling: Promise<void> | null = null;
  const timer = setTimeout(() => {
    cancelling = cancel().catch(() => {});
  }, limitMs);
  const started = performance.now();
  try {
    return await run();
  } catch (error) {
    if (cancelling === null) throw error;
    const elapsed = Math.round(performance.now() - started);
    throw new QueryBatchError(
      'STATEMENT_TIMEOUT',
      `Expected the statement to finish within ${limitMs} ms (timeoutMs); it was stopped on the server after ${elapsed} ms`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
    await (cancelling as Promise<void> | null);
  }
}
