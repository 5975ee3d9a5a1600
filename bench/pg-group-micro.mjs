// SQL cost alone of PostgreSQL's ways to send N INSERTs on one pg connection (no spool files,
// no runner): the raw loop in one transaction with a named statement (parsed once) and with
// pg's default unnamed one, and the PostgreSQL driver's group-commit form (one simple query
// `BEGIN; INSERT INTO ledger VALUES (…) ×32; 32 INSERTs with literals; COMMIT`), with and
// without the ledger row. Five interleaved rounds, medians. The drain-group-pg scenario
// compares qb.run() with the first; this says how much of the gap is the SQL.
// Usage: node bench/pg-group-micro.mjs [N=2000]    (QB_BENCH_PG, QB_BENCH_DB as in bench/run.ts)
import pg from 'pg';
const N = Number(process.argv[2] ?? 2000);
const c = new pg.Client({ connectionString: `${process.env.QB_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432'}/${process.env.QB_BENCH_DB ?? 'qbbench'}` });
await c.connect();
const T = `micro_t_${process.pid}`;
const L = `micro_l_${process.pid}`;
await c.query(`CREATE TABLE ${T} (id BIGSERIAL PRIMARY KEY, a INT NOT NULL, b VARCHAR(64) NOT NULL)`);
await c.query(`CREATE TABLE ${L} (id TEXT PRIMARY KEY, done_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
let seq = 0;
const group = (from, ledger) => {
  const rows = [];
  const statements = [];
  for (let i = from; i < Math.min(N, from + 32); i++) {
    rows.push(`('${process.pid}-${seq++}')`);
    statements.push(`INSERT INTO ${T} (a, b) VALUES ('${i}', 'row-${i}')`);
  }
  return `BEGIN; ${ledger ? `INSERT INTO ${L} (id) VALUES ${rows.join(', ')}; ` : ''}${statements.join('; ')}; COMMIT`;
};
const ways = {
  namedOneTransaction: async () => {
    await c.query('BEGIN');
    for (let i = 0; i < N; i++) await c.query({ name: 'micro_insert', text: `INSERT INTO ${T} (a, b) VALUES ($1, $2)`, values: [i, `row-${i}`] });
    await c.query('COMMIT');
  },
  unnamedOneTransaction: async () => {
    await c.query('BEGIN');
    for (let i = 0; i < N; i++) await c.query(`INSERT INTO ${T} (a, b) VALUES ($1, $2)`, [i, `row-${i}`]);
    await c.query('COMMIT');
  },
  groupsOf32WithLedger: async () => {
    for (let i = 0; i < N; i += 32) await c.query(group(i, true));
  },
  groupsOf32NoLedger: async () => {
    for (let i = 0; i < N; i += 32) await c.query(group(i, false));
  },
};
const res = {};
try {
  for (let round = 0; round < 5; round++) {
    for (const [name, f] of Object.entries(ways)) {
      await c.query(`TRUNCATE ${T}, ${L}`);
      const t0 = performance.now();
      await f();
      (res[name] ??= []).push(Math.round(N / ((performance.now() - t0) / 1000)));
    }
  }
} finally {
  await c.query(`DROP TABLE IF EXISTS ${T}, ${L}`);
  await c.end();
}
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
for (const [name, v] of Object.entries(res)) console.log(`${name.padEnd(22)} ${String(median(v)).padStart(7)}/s  (${v.join(' / ')})`);
