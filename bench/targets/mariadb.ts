import { DB_NAME, DB_URL, SERVER_URL, bulkInserts, connect, timedClient, dropTable, ensureDatabase, paramsFor, resetTable, rowCount, timed } from '../common.js';
import mysql from 'mysql2/promise';
import type { DrainTarget } from './target.js';

/** MariaDB (or MySQL) through mysql2: the benchmarks' first database. */
export const mariadbTarget: DrainTarget = {
  name: 'MariaDB',
  url: DB_URL,
  perStatementLabel: 'mysql2 loop, autocommit, 1 connection',
  oneTransactionLabel: 'mysql2 loop, one transaction, 1 connection',
  unavailable: null,
  prepare: ensureDatabase,
  resetTable,
  dropTable,
  rowCount,
  insertSql: (table) => `INSERT INTO \`${table}\` (a, b) VALUES (?, ?)`,
  async rawLoop(table, n, oneTransaction) {
    const conn = await connect();
    const sql = `INSERT INTO \`${table}\` (a, b) VALUES (?, ?)`;
    try {
      await conn.execute(sql, [-1, 'warm-up']); // prepare once, as the runner's cache does
      await conn.query(`TRUNCATE TABLE \`${table}\``);
      return await timed(async () => {
        if (oneTransaction) await conn.query('START TRANSACTION');
        for (let i = 0; i < n; i++) await conn.execute(sql, paramsFor(i));
        if (oneTransaction) await conn.query('COMMIT');
      });
    } finally {
      await conn.end();
    }
  },
  bulkLabel: '`mariadb` client, multi-row INSERTs of 1,000 rows, one transaction',
  bulkLoad(table, n, dir) {
    const url = new URL(SERVER_URL);
    const args = ['-h', url.hostname, '-P', url.port || '3306', '-u', decodeURIComponent(url.username || 'root'), ...(url.password ? [`-p${decodeURIComponent(url.password)}`] : []), DB_NAME];
    return timedClient('mariadb', args, dir, bulkInserts(`\`${table}\``, n, 1000, 'START TRANSACTION'));
  },
  async describe() {
    const conn = await mysql.createConnection(SERVER_URL);
    try {
      const [rows] = await conn.query('SELECT VERSION() AS v, @@innodb_flush_log_at_trx_commit AS f');
      const row = (rows as Array<{ v: string; f: unknown }>)[0];
      return { mariadb: row?.v ?? '?', innodbFlushLogAtTrxCommit: String(row?.f) };
    } finally {
      await conn.end();
    }
  },
};
