import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import { splitScript } from '../src/db/mysql/script.js';
import { createTestDatabase, type TestDatabase } from './helpers.js';

/**
 * The script splitter on a real dump: a schema with a foreign-key cycle, a trigger, a
 * procedure, a function and a view is dumped with `mariadb-dump`, split by
 * db/mysql/script.ts and run statement by statement into one database, and loaded with the
 * `mariadb` client into another: every table checksums the same, and the routines work.
 */
let source: TestDatabase;
const made: TestDatabase[] = [];

const SCHEMA = [
  'CREATE TABLE customer (id INT PRIMARY KEY, name VARCHAR(60) NOT NULL, last_order INT NULL) ENGINE=InnoDB',
  'CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, note TEXT, data VARBINARY(16), total DECIMAL(10,2), CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customer (id)) ENGINE=InnoDB',
  'ALTER TABLE customer ADD CONSTRAINT fk_last_order FOREIGN KEY (last_order) REFERENCES orders (id)',
  'CREATE TABLE audit (n INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(100)) ENGINE=InnoDB',
  "CREATE TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW BEGIN\n  INSERT INTO audit (what) VALUES (CONCAT('order; ', NEW.id));\n  UPDATE customer SET last_order = NEW.id WHERE id = NEW.customer_id;\nEND",
  "CREATE PROCEDURE add_order(IN o INT, IN c INT)\nBEGIN\n  -- a comment; inside\n  INSERT INTO orders (id, customer_id, note) VALUES (o, c, 'from the procedure; ok');\nEND",
  "CREATE FUNCTION shout(s VARCHAR(50)) RETURNS VARCHAR(60) DETERMINISTIC RETURN CONCAT(UPPER(s), '!;')",
  'CREATE VIEW order_totals AS SELECT c.name, COUNT(o.id) AS orders, SUM(o.total) AS total FROM customer c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.name',
];

beforeAll(async () => {
  source = await createTestDatabase('dump_source');
  for (const sql of SCHEMA) await source.db.query(sql);
  await source.db.query("INSERT INTO customer (id, name) VALUES (1, 'O''Brien; \\\\ back'), (2, 'ünïcödé — 漢字'), (3, 'tab\\tnew\\nline')");
  await source.db.query('INSERT INTO orders (id, customer_id, note, data, total) VALUES (10, 1, ?, ?, 12.5), (11, 2, NULL, NULL, 0.1), (12, 1, ?, ?, 99999999.99)', [
    "semi;colon 'quoted' \"double\" `tick` /* not a comment */ -- nor this",
    Buffer.from([0, 1, 2, 0x27, 0x5c, 0x3b, 255]),
    'DELIMITER ;;\nnot a command',
    Buffer.from('\n\r\x1a'),
  ]);
});

afterAll(async () => {
  for (const t of [source, ...made]) await t?.drop?.();
});

function dump(database: string, options: readonly string[]): string {
  return execFileSync('mariadb-dump', ['--host=127.0.0.1', '--user=root', '--routines', '--triggers', ...options, database], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

async function database(label: string): Promise<TestDatabase> {
  const t = await createTestDatabase(label);
  made.push(t);
  return t;
}

async function checksums(t: TestDatabase): Promise<Record<string, unknown>> {
  const [rows] = await t.db.query('CHECKSUM TABLE customer, orders, audit');
  const out: Record<string, unknown> = {};
  for (const r of rows as Array<{ Table: string; Checksum: unknown }>) out[r.Table.split('.')[1]!] = r.Checksum;
  return out;
}

describe('a mariadb-dump split by the script splitter', () => {
  // Without --hex-blob a dump carries binary values as escaped text, which the client itself
  // does not load back byte for byte: the split load must then equal the client's load.
  it.each([[['--hex-blob']], [[]]])('loads table for table equal to the mariadb client (mariadb-dump %j), with its trigger, procedure, function and view', async (options) => {
    const split = await database('dump_split');
    const client = await database('dump_client');
    const text = dump(source.name, options);
    const statements = splitScript(text);
    expect(statements.length).toBeGreaterThan(20);
    expect(statements.some((s) => s.sql.includes('TRIGGER') && s.sql.includes('END'))).toBe(true);

    const connection = await mysql.createConnection({ uri: split.url });
    try {
      for (const statement of statements) {
        try {
          await connection.query(statement.sql);
        } catch (error) {
          throw new Error(`statement ${statement.index} (line ${statement.line}) failed: ${(error as Error).message}\n${statement.sql.slice(0, 300)}`);
        }
      }
    } finally {
      await connection.end();
    }
    execFileSync('mariadb', ['--host=127.0.0.1', '--user=root', client.name], { input: text });

    const loaded = await checksums(client);
    expect(await checksums(split)).toEqual(loaded);
    if (options.includes('--hex-blob')) expect(loaded).toEqual(await checksums(source));
    // The routines came through whole: the procedure fires the trigger, the function and the view answer.
    await split.db.query('CALL add_order(13, 2)');
    const [audit] = await split.db.query("SELECT what FROM audit WHERE what = 'order; 13'");
    expect(audit).toHaveLength(1);
    const [shout] = await split.db.query("SELECT shout('hi') AS s");
    expect((shout as Array<{ s: string }>)[0]!.s).toBe('HI!;');
    const [view] = await split.db.query('SELECT orders FROM order_totals WHERE name = ?', ['ünïcödé — 漢字']);
    expect(Number((view as Array<{ orders: unknown }>)[0]!.orders)).toBe(2);
  });
});
