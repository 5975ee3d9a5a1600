import mysql from 'mysql2/promise';
import { ADMIN_URL } from './helpers.js';

/**
 * The database tests never skip: when MariaDB does not answer, the whole run fails here,
 * loudly, before any test starts.
 */
export default async function setup(): Promise<void> {
  try {
    const connection = await mysql.createConnection({ uri: ADMIN_URL, connectTimeout: 5_000 });
    await connection.query('SELECT 1');
    await connection.end();
  } catch (error) {
    throw new Error(`MariaDB is not answering at ${ADMIN_URL} (${(error as Error).message}). Start it (see .ci/run) and run the tests again.`);
  }
}
