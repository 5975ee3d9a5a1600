import fs from 'fs-extra';
import { scriptStatementKey, type Dialect, type ScriptStatement, type Session } from '../db/driver.js';
import { STATEMENT_TEXT_CHARS, type FailedStatement } from '../spool/failure.js';
import { withTimeout } from './timeout.js';
import { scriptStatements, verifyScript, writeProgress, type ScriptFile } from '../spool/script-file.js';

/**
 * Runs a script job (docs/guarantees.md "Scripts"): its statements in order, on the drain's
 * session, with the session state the script sets applying to the rest of the script only
 * (the drain resets the session after it). The statements are read from the file as they
 * run, never all in memory.
 *
 * Progress: the file's progress line counts the statements committed (a statement in an
 * open transaction counts once that transaction commits), written after each. With the
 * ledger, each statement that changes data or the schema also commits a ledger row (its key
 * is the script's id and its number) in its own transaction, or in the script's open one:
 * so after a crash the script resumes after the last statement that committed, whichever of
 * the two says more, and none runs twice. The statements that only set the session (SET,
 * USE) run again first, so the rest of the script sees the session it set. A statement
 * that may commit by itself (DDL, CALL) runs with the claim renamed `<id>.uncertain`: cut
 * short by a crash, the script goes to failed/uncertain-… instead of running it again.
 */

/** What the drain gives a script's run. */
export interface ScriptRunContext {
  readonly session: Session;
  readonly dialect: Dialect;
  /** The ledger records the statements (else a crash repeats the statements not yet counted in the progress line). */
  readonly ledger: boolean;
  /** Renames the claim to its uncertain marker, or back. */
  uncertain(on: boolean): Promise<unknown>;
  /** Told after each statement that ran (for progress). */
  readonly onStatement?: (index: number, total: number) => void;
  readonly signal?: AbortSignal;
  /** Each statement's time limit (the job's timeoutMs, else the configured one; null: none): stopped on the server when it passes. */
  readonly limitMs: number | null;
}

export type ScriptResult =
  | { readonly ok: true; readonly affectedRows: number; readonly ran: number; readonly doneBefore: boolean }
  | {
      readonly ok: false;
      readonly error: unknown;
      /** The statement that failed (null: the script as a whole, e.g. it ended in an open transaction, or its run was stopped). */
      readonly statement: ScriptStatement | null;
      /** Statements committed when it failed. */
      readonly done: number;
      /** It failed while a statement that may commit by itself ran, with the uncertain marker on. */
      readonly uncertain: boolean;
      readonly aborted: boolean;
    };

/** What lastError keeps of a failed statement. */
export function failedStatementOf(statement: ScriptStatement): FailedStatement {
  const text = statement.sql.length > STATEMENT_TEXT_CHARS ? `${statement.sql.slice(0, STATEMENT_TEXT_CHARS)}…` : statement.sql;
  return { index: statement.index, line: statement.line, text };
}

/**
 * Checks the script's body against its header, then runs it from where its progress (and
 * the ledger) says it stopped. `path`: the claim. Rejects only when the body can't be read
 * or is not the one its header describes (INVALID_SPOOL_FILE, before anything runs).
 */
export async function runScript(ctx: ScriptRunContext, path: string, file: ScriptFile): Promise<ScriptResult> {
  await verifyScript(path, file);
  const { record } = file;
  const total = record.script.statements;
  const resumeAt = Math.max(file.done, ctx.ledger ? await ctx.session.scriptProgress(record.id) : 0);
  let done = resumeAt;
  let uncertain = false;
  let inTransaction = false;
  let affectedRows = 0;
  let ran = 0;
  const fd = fs.openSync(path, 'r+');
  try {
    // The claim may be renamed (the uncertain marker): the open descriptor follows the file.
    for await (const statement of scriptStatements(path, file, ctx.dialect.scriptSplitter())) {
      const role = ctx.dialect.scriptRole(statement.sql);
      if (statement.index <= resumeAt) {
        // Committed before: only a statement that sets the session runs again, for the rest of the script.
        if (role === 'session') await ctx.session.executeScriptStep({ sql: statement.sql, role, key: null });
        continue;
      }
      if (ctx.signal?.aborted) return { ok: false, error: new Error('The run was stopped'), statement: null, done, uncertain: false, aborted: true };
      const recorded = ctx.ledger && (role === 'transactional' || role === 'other');
      if (ctx.ledger && role === 'other' && !uncertain) {
        await ctx.uncertain(true);
        uncertain = true;
      }
      try {
        const step = { sql: statement.sql, role, key: recorded ? scriptStatementKey(record.id, statement.index) : null };
        const result = await withTimeout(ctx.limitMs, () => ctx.session.executeScriptStep(step), () => ctx.session.cancel());
        inTransaction = result.inTransaction;
        affectedRows += result.affectedRows;
      } catch (error) {
        return { ok: false, error, statement, done, uncertain: uncertain && role === 'other', aborted: false };
      }
      ran++;
      if (!inTransaction) {
        done = statement.index;
        writeProgress(fd, file, done);
        if (uncertain) {
          await ctx.uncertain(false);
          uncertain = false;
        }
      }
      ctx.onStatement?.(statement.index, total);
    }
  } finally {
    fs.closeSync(fd);
  }
  if (inTransaction) {
    const error = Object.assign(new Error(`The script ended with a transaction open: statements ${done + 1} to ${total} did not commit and were rolled back (end the script with COMMIT)`), { code: 'SCRIPT_OPEN_TRANSACTION' });
    return { ok: false, error, statement: null, done, uncertain, aborted: false };
  }
  return { ok: true, affectedRows, ran, doneBefore: ran === 0 && resumeAt === total };
}
