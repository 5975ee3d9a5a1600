import pg from 'pg';
import { DB_NAME, bulkInserts, paramsFor, timed, timedClient } from '../common.js';
import type { DrainTarget } from './target.js';

/** PostgreSQL through pg: the server at QB_BENCH_PG, the database DB_NAME on it (created). */
const SERVER_URL = process.env.QB_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432';
const DB_URL = `${SERVER_URL}/${DB_NAME}`;

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export const postgresTarget: DrainTarget = {
  name: 'PostgreSQL',
  url: DB_URL,
  perStatementLabel: 'pg loop, autocommit, 1 connection',
  oneTransactionLabel: 'pg loop, one transaction, 1 connection',
  unavailable: null,
  async prepare() {
    await withClient(`${SERVER_URL}/postgres`, async (client) => {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
      if (found.rowCount === 0) await client.query(`CREATE DATABASE "${DB_NAME}"`);
    });
  },
  resetTable: (table) => withClient(DB_URL, async (client) => {
    await client.query(`DROP TABLE IF EXISTS "${table}"`);
    await client.query(`CREATE TABLE "${table}" (id BIGSERIAL PRIMARY KEY, a INT NOT NULL, b VARCHAR(64) NOT NULL)`);
  }),
  dropTable: (table) => withClient(DB_URL, async (client) => {
    await client.query(`DROP TABLE IF EXISTS "${table}"`);
  }),
  rowCount: (table) => withClient(DB_URL, async (client) => {
    const result = await client.query<{ n: string }>(`SELECT COUNT(*) AS n FROM "${table}"`);
    return Number(result.rows[0]?.n);
  }),
  insertSql: (table) => `INSERT INTO "${table}" (a, b) VALUES (?, ?)`,
  rawLoop: (table, n, oneTransaction) => withClient(DB_URL, async (client) => {
    // A named statement is parsed once per connection: prepared once, as mysql2's execute() is.
    const insert = (values: [number, string]) => client.query({ name: 'bench_insert', text: `INSERT INTO "${table}" (a, b) VALUES ($1, $2)`, values });
    await insert([-1, 'warm-up']);
    await client.query(`TRUNCATE TABLE "${table}"`);
    return timed(async () => {
      if (oneTransaction) await client.query('BEGIN');
      for (let i = 0; i < n; i++) await insert(paramsFor(i));
      if (oneTransaction) await client.query('COMMIT');
    });
  }),
  bulkLabel: 'psql, multi-row INSERTs of 1,000 rows, one transaction',
  bulkLoad: (table, n, dir) => timedClient('psql', ['-q', '-v', 'ON_ERROR_STOP=1', DB_URL], dir, bulkInserts(`"${table}"`, n, 1000, 'BEGIN')),
  describe: () => withClient(`${SERVER_URL}/postgres`, async (client) => {
    const result = await client.query<{ v: string; sc: string; f: string }>("SELECT current_setting('server_version') AS v, current_setting('synchronous_commit') AS sc, current_setting('fsync') AS f");
    const row = result.rows[0];
    return { postgres: row?.v ?? '?', synchronousCommit: row?.sc ?? '?', fsync: row?.f ?? '?' };
  }),
};
