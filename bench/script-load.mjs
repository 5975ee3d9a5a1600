// A mariadb-dump of a realistic size loaded three ways into empty databases: (a) the `mariadb`
// client (`mariadb db < dump.sql`), (b) querybatch spoolScriptFile() + run() with the ledger,
// (c) the same without the ledger. Prints each one's wall time and checks every table's
// CHECKSUM equal to the source's. Issue 12.
// Usage: npm run build && node bench/script-load.mjs [ROUNDS=3] [ORDERS=200000]
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { URL } from 'node:url';
import mysql from 'mysql2/promise';
import { QueryBatch } from '../dist/index.js';
import { splitScript } from '../dist/db/mysql/script.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const ORDERS = Number(process.argv[3] ?? 200_000);
const ADMIN = process.env.QUERYBATCH_TEST_URL ?? 'mysql://root@127.0.0.1:3306/test';
const server = new URL(ADMIN);
const prefix = `qbbench_script_${process.pid}`;
const admin = await mysql.createConnection({ uri: ADMIN, multipleStatements: true });
const made = [];
const dir = await mkdtemp(join(tmpdir(), 'qb-bench-script-'));

async function createDatabase(label) {
  const name = `${prefix}_${label}`;
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  made.push(name);
  return name;
}

const urlOf = (name) => ADMIN.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
const clientArgs = [`--host=${server.hostname}`, `--port=${server.port || 3306}`, `--user=${decodeURIComponent(server.username)}`, ...(server.password ? [`--password=${decodeURIComponent(server.password)}`] : [])];

/** The source: four tables (a foreign-key cycle, one without a primary key), a trigger, a procedure, a function, a view. */
async function makeSource() {
  const db = await createDatabase('source');
  const customers = Math.ceil(ORDERS / 4);
  await admin.query(`USE \`${db}\`;
    CREATE TABLE customer (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL, email VARCHAR(120), created DATETIME NOT NULL, last_order INT NULL) ENGINE=InnoDB;
    CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(12,2) NOT NULL, note TEXT, placed DATETIME NOT NULL, KEY (placed), CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customer (id)) ENGINE=InnoDB;
    ALTER TABLE customer ADD CONSTRAINT fk_last_order FOREIGN KEY (last_order) REFERENCES orders (id);
    CREATE TABLE order_item (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT NOT NULL, sku CHAR(12) NOT NULL, qty SMALLINT NOT NULL, price DECIMAL(10,2) NOT NULL, CONSTRAINT fk_order FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB;
    CREATE TABLE event_log (at DATETIME NOT NULL, kind VARCHAR(20) NOT NULL, detail VARCHAR(255)) ENGINE=InnoDB;
    CREATE TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW INSERT INTO event_log VALUES (NOW(), 'order', CONCAT('order; ', NEW.id));
    CREATE PROCEDURE place(IN o INT, IN c INT) BEGIN INSERT INTO orders (id, customer_id, total, placed) VALUES (o, c, 0, NOW()); END;
    CREATE FUNCTION vat(x DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC RETURN ROUND(x * 1.2, 2);
    CREATE VIEW customer_totals AS SELECT c.id, c.name, COUNT(o.id) AS orders, SUM(o.total) AS total FROM customer c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name;
    SET FOREIGN_KEY_CHECKS = 0;
    INSERT INTO customer SELECT seq, CONCAT('Customer ', seq, IF(seq % 7 = 0, ' O''Brien; \\\\ ünï 😀', '')), CONCAT('c', seq, '@example.com'), '2020-01-01' + INTERVAL seq MINUTE, NULL FROM seq_1_to_${customers};
    INSERT INTO orders SELECT seq, 1 + seq % ${customers}, (seq * 37 % 100000) / 100, IF(seq % 3 = 0, CONCAT('note; "quoted" -- ', seq, ' /* x */\\n', REPEAT('abc ', seq % 20)), NULL), '2021-01-01' + INTERVAL seq MINUTE FROM seq_1_to_${ORDERS};
    INSERT INTO order_item (order_id, sku, qty, price) SELECT 1 + seq % ${ORDERS}, CONCAT('SKU-', LPAD(seq % 99991, 8, '0')), 1 + seq % 9, (seq * 13 % 50000) / 100 FROM seq_1_to_${ORDERS};
    INSERT INTO event_log SELECT '2022-01-01' + INTERVAL seq SECOND, ELT(1 + seq % 3, 'login', 'view', 'logout'), CONCAT('event ', seq % 1000) FROM seq_1_to_${ORDERS / 2};
    UPDATE customer SET last_order = id WHERE id <= ${customers};
    SET FOREIGN_KEY_CHECKS = 1;`);
  return db;
}

async function checksums(db) {
  const [tables] = await admin.query("SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'querybatch\\_%' ORDER BY TABLE_NAME", [db]);
  const out = {};
  for (const { name } of tables) {
    const [rows] = await admin.query(`CHECKSUM TABLE \`${db}\`.\`${name}\``);
    out[name] = String(rows[0].Checksum);
  }
  return JSON.stringify(out);
}

async function objects(db) {
  const [rows] = await admin.query(
    `SELECT 'trigger' AS k, TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
     UNION ALL SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
     UNION ALL SELECT 'view', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY 1, 2`,
    [db, db, db],
  );
  return rows.map((r) => `${r.k} ${r.n}`).join(', ');
}

/** (a) The client: `mariadb db < dump.sql`. */
function clientLoad(db, file) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('mariadb', [...clientArgs, db], { stdio: ['pipe', 'ignore', 'inherit'] });
    createReadStream(file).pipe(child.stdin);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`mariadb exited ${code}`))));
  });
}

/** (b), (c): spoolScriptFile() + run(). */
async function querybatchLoad(db, file, ledger) {
  const home = await mkdtemp(join(dir, 'home-'));
  const q = new QueryBatch({ home, configFile: false, datasources: { main: { url: urlOf(db), ledger } } });
  try {
    const t0 = performance.now();
    await q.spoolScriptFile(file);
    const spooled = performance.now();
    const summary = await q.run();
    const ms = performance.now() - t0;
    if (summary.success !== 1 || summary.sqlFailed !== 0) throw new Error(`expected one script to succeed, got ${JSON.stringify(summary)}`);
    return { ms, spoolMs: spooled - t0, runMs: summary.wallMs };
  } finally {
    await q.close();
    await rm(home, { recursive: true, force: true });
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms) => (ms / 1000).toFixed(2);

try {
  const source = await makeSource();
  const file = join(dir, 'dump.sql');
  await writeFile(file, execFileSync('mariadb-dump', [...clientArgs, '--routines', '--triggers', '--hex-blob', source], { maxBuffer: 1024 * 1024 * 1024 }));
  const bytes = (await stat(file)).size;
  const statements = splitScript(await readFile(file, 'utf8')).length;
  const want = await checksums(source);
  const wantObjects = await objects(source);
  console.log(`dump: ${(bytes / 1024 / 1024).toFixed(1)} MB, ${statements} statements; source rows: ${ORDERS / 4} customer, ${ORDERS} orders, ${ORDERS} order_item, ${ORDERS / 2} event_log`);

  const times = { client: [], ledger: [], noLedger: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    const loads = [
      ['client', (db) => clientLoad(db, file).then((ms) => ({ ms }))],
      ['ledger', (db) => querybatchLoad(db, file, true)],
      ['noLedger', (db) => querybatchLoad(db, file, false)],
    ];
    for (const [kind, load] of loads) {
      const db = await createDatabase(`${kind}_${round}`);
      const r = await load(db);
      const [got, gotObjects] = [await checksums(db), await objects(db)];
      if (got !== want) throw new Error(`${kind}, round ${round}: checksums differ from the source's:\n${got}\n${want}`);
      if (gotObjects !== wantObjects) throw new Error(`${kind}, round ${round}: objects differ: ${gotObjects} vs ${wantObjects}`);
      times[kind].push(r.ms);
      console.log(`round ${round} ${kind}: ${s(r.ms)} s${r.spoolMs !== undefined ? ` (spoolScriptFile ${s(r.spoolMs)} s, run ${s(r.runMs)} s)` : ''}, checksums equal`);
      await admin.query(`DROP DATABASE \`${db}\``);
      made.splice(made.indexOf(db), 1);
    }
  }
  const c = median(times.client);
  console.log(`median of ${ROUNDS}: mariadb client ${s(c)} s | querybatch, ledger on ${s(median(times.ledger))} s (${(median(times.ledger) / c).toFixed(2)}x) | ledger off ${s(median(times.noLedger))} s (${(median(times.noLedger) / c).toFixed(2)}x)`);
} finally {
  for (const db of made) await admin.query(`DROP DATABASE IF EXISTS \`${db}\``);
  await admin.end();
  await rm(dir, { recursive: true, force: true });
}
