/**
 * The program of a SQLite session's child process (db/sqlite/process.ts starts it with
 * `node -e`): it opens the database with better-sqlite3 and answers the parent's requests, one
 * at a time, over the IPC channel (advanced serialization: Buffers, bigints and errors go as
 * they are). Plain JavaScript in a string, so that it runs the same from src/ (tests) and
 * dist/; the path of better-sqlite3 comes in QUERYBATCH_SQLITE_MODULE.
 *
 * Why a process and not a worker thread: a worker's terminate() does not stop a statement
 * that SQLite is running in native code (checked with better-sqlite3 12.11 on Node 20: an
 * endless recursive CTE kept running and terminate() never resolved), and better-sqlite3 has
 * no sqlite3_interrupt(). A process killed with SIGKILL stops at once; SQLite rolls back what
 * it left (its hot journal, or the WAL frames it never committed) on the next open.
 *
 * Requests: { id, op, ...args } (`id` numbers the request; a job's id goes as `jobId`); answers { id, ok: true, value } or { id, ok: false, error }.
 * A stream answers { id, columns } then { id, rows } batches, each acknowledged by the parent
 * with { id, op: 'more' } (backpressure), then its { id, ok: true, value }.
 */
export const CHILD_SOURCE = String.raw`
'use strict';
const Database = require(process.env.QUERYBATCH_SQLITE_MODULE);

// Dies with its parent. While a statement runs, this thread is in native code and never hears
// the IPC channel close ('disconnect' below), so a SIGKILLed runner would leave it running the
// statement, holding the write lock, and COMMITting when done. A worker thread watches the
// parent instead: once it is gone (this process re-parented), SIGKILL, so SQLite rolls back.
{
  const { Worker } = require('node:worker_threads');
  const watcher = new Worker(
    "const { workerData } = require('node:worker_threads');" +
    "setInterval(() => { if (process.ppid !== workerData) process.kill(process.pid, 'SIGKILL'); }, 100);",
    { eval: true, workerData: process.ppid, stdout: false, stderr: false },
  );
  watcher.unref();
}
let db = null;
let settings = null;
const prepared = new Map();

function errorOf(e) {
  let code = typeof e?.code === 'string' && e.code !== '' ? e.code : undefined;
  if (code === undefined) code = e instanceof RangeError ? 'SQLITE_RANGE' : e instanceof TypeError ? 'SQLITE_MISUSE' : 'SQLITE_ERROR';
  return { code, message: String(e?.message ?? e), name: String(e?.name ?? 'Error') };
}

function statement(sql) {
  let s = prepared.get(sql);
  if (s === undefined) {
    s = db.prepare(sql);
    if (prepared.size >= 64) prepared.delete(prepared.keys().next().value);
    prepared.set(sql, s);
  }
  return s;
}

function value(v) {
  if (v instanceof Uint8Array && !Buffer.isBuffer(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return v;
}

function bindings(params) {
  if (Array.isArray(params)) return params.length === 0 ? [] : [params.map(value)];
  const out = {};
  for (const [k, v] of Object.entries(params)) out[k] = value(v);
  return [out];
}

function cell(v) {
  return typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Runs one statement; a statement that returns rows is read to its end. */
function run(sql, params) {
  const s = statement(sql);
  if (s.reader) {
    for (const _ of s.iterate(...bindings(params))) { /* read and dropped */ }
    return 0;
  }
  return s.run(...bindings(params)).changes;
}

function open(args) {
  close();
  settings = args;
  try {
    db = new Database(args.path, { timeout: args.busyTimeoutMs });
  } catch (e) {
    // better-sqlite3 checks the directory itself and throws a TypeError without a code.
    if (e?.code === undefined) e.code = 'SQLITE_CANTOPEN';
    throw e;
  }
  db.defaultSafeIntegers(true);
  for (const sql of args.init) db.exec(sql);
  // Created only when missing: a CREATE would wait for the write lock another connection may hold.
  if (args.ledgerTable !== null && !hasTable(args.ledgerTable)) {
    db.exec('CREATE TABLE IF NOT EXISTS ' + args.ledgerTable + ' (id TEXT PRIMARY KEY NOT NULL, spool TEXT NOT NULL, done_at TEXT NOT NULL DEFAULT (strftime(\'%Y-%m-%dT%H:%M:%fZ\', \'now\')))');
  }
  return null;
}

function hasTable(table) {
  try {
    db.prepare('SELECT 1 FROM ' + table + ' LIMIT 0');
    return true;
  } catch (e) {
    if (/no such table/.test(String(e?.message))) return false;
    throw e;
  }
}

function close() {
  prepared.clear();
  if (db !== null && db.open) db.close();
  db = null;
}

function insertRow(table, id, spool) {
  statement('INSERT INTO ' + table + ' (id, spool) VALUES (?, ?)').run(id, spool);
}

function isDuplicate(e) {
  return e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** BEGIN IMMEDIATE, the ledger rows, the statements, COMMIT; any error rolls it all back. */
function ledgerTransaction(table, spool, ids, jobs) {
  db.exec('BEGIN IMMEDIATE');
  try {
    for (const id of ids) {
      try {
        insertRow(table, id, spool);
      } catch (e) {
        if (isDuplicate(e)) e.ledgerDuplicate = true;
        throw e;
      }
    }
    const counts = jobs.map((job) => {
      const changes = run(job.sql, job.params);
      // A merged INSERT (coalescing) inserts one row per job, or its figures can't be shared out: all rolled back.
      if (job.rows !== undefined && changes !== job.rows) {
        throw Object.assign(new Error('A merged INSERT changed ' + changes + ' rows for ' + job.rows + ' jobs'), { code: 'QUERYBATCH_COALESCE_MISMATCH' });
      }
      return changes;
    });
    db.exec('COMMIT');
    return counts;
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/**
 * A refused group again (db/savepoints.ts): BEGIN IMMEDIATE, each job under a savepoint (its
 * ledger row, its statement), a refused one rolled back to it and the rest going on, then
 * COMMIT. An error whose primary code is in a.abandon (not the statement's own), or one after
 * which SQLite ended the transaction itself, rolls it all back and is thrown.
 */
function each(a) {
  db.exec('BEGIN IMMEDIATE');
  try {
    const results = a.jobs.map((job) => {
      db.exec('SAVEPOINT querybatch_job');
      let ledgerDuplicate = false;
      try {
        try {
          for (const id of job.ids ?? [job.id]) insertRow(a.table, id, a.spool);
        } catch (e) {
          ledgerDuplicate = isDuplicate(e);
          throw e;
        }
        const affectedRows = run(job.sql, job.params);
        db.exec('RELEASE querybatch_job');
        return { status: 'done', affectedRows };
      } catch (e) {
        if (!db.inTransaction || a.abandon.includes(/^SQLITE_[A-Z]+/.exec(String(e?.code))?.[0])) throw e;
        db.exec('ROLLBACK TO querybatch_job');
        db.exec('RELEASE querybatch_job');
        return ledgerDuplicate ? { status: 'done-before' } : { status: 'refused', error: errorOf(e) };
      }
    });
    db.exec('COMMIT');
    return results;
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

const ops = {
  open,
  reset: () => open(settings),
  exec: (a) => ({ affectedRows: run(a.sql, a.params) }),
  once(a) {
    try {
      const [affectedRows] = ledgerTransaction(a.table, a.spool, a.ids ?? [a.jobId], [{ sql: a.sql, params: a.params }]);
      return { status: 'done', affectedRows };
    } catch (e) {
      if (e.ledgerDuplicate) return { status: 'done-before' };
      throw e;
    }
  },
  batch: (a) => ledgerTransaction(a.table, a.spool, a.ids ?? a.jobs.map((j) => j.id), a.jobs),
  each,
  step(a) {
    const result = (affectedRows, doneBefore) => ({ affectedRows, inTransaction: db.inTransaction, doneBefore });
    if (a.key === null) return result(run(a.sql, []), false);
    const own = !db.inTransaction;
    if (a.role !== 'transactional') {
      const n = run(a.sql, []);
      try {
        if (db.inTransaction) insertRow(a.table, a.key, a.spool);
        else ledgerTransaction(a.table, a.spool, [a.key], []);
      } catch (e) {
        if (!isDuplicate(e)) throw e;
      }
      return result(n, false);
    }
    try {
      if (own) return result(ledgerTransaction(a.table, a.spool, [a.key], [{ sql: a.sql, params: [] }])[0], false);
      try {
        insertRow(a.table, a.key, a.spool);
      } catch (e) {
        if (isDuplicate(e)) e.ledgerDuplicate = true;
        throw e;
      }
      return result(run(a.sql, []), false);
    } catch (e) {
      if (e.ledgerDuplicate) return result(0, true);
      throw e;
    }
  },
  progress(a) {
    const row = statement('SELECT id FROM ' + a.table + ' WHERE id >= ? AND id < ? ORDER BY id DESC LIMIT 1').get(a.jobId + ':', a.jobId + ';');
    return row === undefined ? 0 : Number(row.id.slice(row.id.lastIndexOf(':') + 1));
  },
  isDone: (a) => statement('SELECT 1 FROM ' + a.table + ' WHERE id = ?').get(a.jobId) !== undefined,
  prune: (a) => statement('DELETE FROM ' + a.table + ' WHERE spool = ? AND id < ?').run(a.spool, a.before).changes,
  // Key rows (ids k:…, after every job id): written when missing, asked and pruned by age in milliseconds.
  remember: (a) => { statement('INSERT INTO ' + a.table + ' (id, spool) VALUES (?, ?) ON CONFLICT (id) DO NOTHING').run(a.key, a.spool); return null; },
  keyHeld: (a) => statement('SELECT 1 FROM ' + a.table + ' WHERE id = ? AND (julianday(\'now\') - julianday(done_at)) * 86400000.0 < ?').get(a.key, a.withinMs) !== undefined,
  pruneKeys: (a) => statement('DELETE FROM ' + a.table + ' WHERE id >= \'k:\' AND id < \'k;\' AND spool = ? AND (julianday(\'now\') - julianday(done_at)) * 86400000.0 >= ?').run(a.spool, a.olderThanMs).changes,
  close: () => { close(); return null; },
};

let acks = null;
async function stream(msg) {
  const s = statement(msg.sql);
  if (!s.reader) {
    process.send({ id: msg.id, columns: [] });
    return { rows: 0, affectedRows: s.run(...bindings(msg.params)).changes };
  }
  s.raw(true);
  try {
    process.send({ id: msg.id, columns: s.columns().map((c) => c.name) });
    let batch = [];
    let rows = 0;
    for (const row of s.iterate(...bindings(msg.params))) {
      batch.push(row.map(cell));
      rows++;
      if (batch.length >= msg.batch) {
        const acked = new Promise((resolve) => (acks = resolve));
        process.send({ id: msg.id, rows: batch });
        batch = [];
        if (await acked) return { rows, affectedRows: 0 };
      }
    }
    if (batch.length > 0) {
      const acked = new Promise((resolve) => (acks = resolve));
      process.send({ id: msg.id, rows: batch });
      await acked;
    }
    return { rows, affectedRows: 0 };
  } finally {
    s.raw(false);
  }
}

process.on('message', async (msg) => {
  if (msg.op === 'more') {
    const resolve = acks;
    acks = null;
    resolve?.(msg.stop === true);
    return;
  }
  try {
    const value = msg.op === 'stream' ? await stream(msg) : ops[msg.op](msg);
    process.send({ id: msg.id, ok: true, value });
  } catch (e) {
    process.send({ id: msg.id, ok: false, error: errorOf(e) });
  }
  if (msg.op === 'close') process.disconnect();
});
process.on('disconnect', () => { close(); process.exit(0); });
`;
