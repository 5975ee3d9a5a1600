import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { createTestDatabase, failedNames, removeHome, runCli, tempHome, type TestDatabase } from './helpers.js';

/**
 * Issue 12's acceptance, through the job machinery: a `mariadb-dump --routines --triggers`
 * of a schema with a foreign-key cycle, triggers, a procedure, a function and a view, dropped
 * as one `.sql` file into spool/ (or spooled with `querybatch spool --file`), runs with
 * `run()` into an empty database; every table then checksums equal to the same dump loaded
 * into another empty database by the `mariadb` client, and both hold the same triggers,
 * routines and views. A table without a primary key makes a statement run twice (or not at
 * all) show in its checksum.
 */
let source: TestDatabase;
const made: TestDatabase[] = [];
let home: string | undefined;
let q: QueryBatch | undefined;

const SCHEMA = [
  'CREATE TABLE customer (id INT PRIMARY KEY, name VARCHAR(60) NOT NULL, last_order INT NULL) ENGINE=InnoDB',
  'CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, note TEXT, total DECIMAL(10,2), CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customer (id)) ENGINE=InnoDB',
  'ALTER TABLE customer ADD CONSTRAINT fk_last_order FOREIGN KEY (last_order) REFERENCES orders (id)',
  'CREATE TABLE audit (n INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(100)) ENGINE=InnoDB',
  // No primary key: a repeated INSERT adds rows the checksum counts.
  'CREATE TABLE plain_log (what VARCHAR(200), n INT) ENGINE=InnoDB',
  'CREATE TABLE strange (id INT PRIMARY KEY, s TEXT, b BLOB) ENGINE=InnoDB',
  "CREATE TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW BEGIN\n  INSERT INTO audit (what) VALUES (CONCAT('order; ', NEW.id));\n  UPDATE customer SET last_order = NEW.id WHERE id = NEW.customer_id;\nEND",
  "CREATE TRIGGER plain_log_bi BEFORE INSERT ON plain_log FOR EACH ROW SET NEW.what = CONCAT(NEW.what, ';')",
  "CREATE PROCEDURE add_order(IN o INT, IN c INT)\nBEGIN\n  -- a comment; inside\n  INSERT INTO orders (id, customer_id, note) VALUES (o, c, 'from the procedure; ok');\nEND",
  "CREATE FUNCTION shout(s VARCHAR(50)) RETURNS VARCHAR(60) DETERMINISTIC RETURN CONCAT(UPPER(s), '!;')",
  'CREATE VIEW order_totals AS SELECT c.name, COUNT(o.id) AS orders, SUM(o.total) AS total FROM customer c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.name',
];

/** Text that stresses a splitter: every byte 0x00-0xFF in a BLOB, and strings with ; ' " \ newlines -- /* and an emoji. */
const STRANGE: Array<[number, string, Buffer]> = [
  [1, "semi;colon 'single' \"double\" `tick` back\\slash", Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
  [2, 'line one;\nline two -- not a comment\r\n/* not a comment either */ end;', Buffer.from([0, 0x27, 0x5c, 0x3b, 0x0a, 0x0d, 0x1a, 0x22, 0xff])],
  [3, "emoji 😀; DELIMITER ;;\nstill a string'; DROP TABLE strange; --", Buffer.from('/*!40101 not a hint */;', 'utf8')],
  [4, '\\\\\\\'; -- \\n', Buffer.alloc(0)],
];

beforeAll(async () => {
  source = await createTestDatabase('dumpload_source');
  for (const sql of SCHEMA) await source.db.query(sql);
  await source.db.query("INSERT INTO customer (id, name) VALUES (1, 'O''Brien; \\\\ back'), (2, 'ünïcödé — 漢字 🚀'), (3, 'tab\\tnew\\nline')");
  await source.db.query("INSERT INTO orders (id, customer_id, note, total) VALUES (10, 1, 'a; note', 12.5), (11, 2, NULL, 0.1), (12, 1, '--', 99999999.99)");
  await source.db.query("INSERT INTO plain_log (what, n) VALUES ('same', 1), ('same', 1), ('semi;', 2), (NULL, NULL)");
  for (const row of STRANGE) await source.db.query('INSERT INTO strange (id, s, b) VALUES (?, ?, ?)', row);
});

afterEach(async () => {
  await q?.close();
  q = undefined;
  if (home !== undefined) await removeHome(home);
  home = undefined;
});

afterAll(async () => {
  for (const t of [source, ...made]) await t?.drop?.();
});

/** The dump's bytes, as mariadb-dump wrote them (not decoded: without --hex-blob a BLOB is there as raw bytes). */
function dump(options: readonly string[]): Buffer {
  return execFileSync('mariadb-dump', ['--host=127.0.0.1', '--user=root', '--routines', '--triggers', ...options, source.name], { maxBuffer: 64 * 1024 * 1024 });
}

async function database(label: string): Promise<TestDatabase> {
  const t = await createTestDatabase(label);
  made.push(t);
  return t;
}

/** The dump loaded by the `mariadb` client (`mariadb db < dump.sql`). */
async function clientLoad(file: string): Promise<TestDatabase> {
  const t = await database('dumpload_client');
  execFileSync('sh', ['-c', `mariadb --host=127.0.0.1 --user=root "$1" < "$2"`, 'sh', t.name, file]);
  return t;
}

async function writeDump(dir: string, options: readonly string[]): Promise<string> {
  const file = join(dir, 'dump.sql');
  await writeFile(file, dump(options));
  return file;
}

/** Every base table's CHECKSUM (the ledger's table left out). */
async function checksums(t: TestDatabase): Promise<Record<string, string>> {
  const [tables] = await t.db.query("SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'querybatch\\_%' ORDER BY TABLE_NAME", [t.name]);
  const out: Record<string, string> = {};
  for (const { name } of tables as Array<{ name: string }>) {
    const [rows] = await t.db.query(`CHECKSUM TABLE \`${name}\` EXTENDED`);
    out[name] = String((rows as Array<{ Checksum: unknown }>)[0]!.Checksum);
  }
  return out;
}

/** The triggers, routines and views, with their definitions (the database's own name taken out). */
async function objects(t: TestDatabase): Promise<Record<string, string[]>> {
  const list = async (sql: string): Promise<string[]> => {
    const [rows] = await t.db.query(sql, [t.name]);
    return (rows as Array<Record<string, unknown>>).map((r) => Object.values(r).map((v) => String(v).replaceAll(t.name, 'DB')).join(' | '));
  };
  return {
    triggers: await list('SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME'),
    routines: await list('SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_NAME'),
    views: await list('SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME'),
  };
}

/** The names of the triggers, routines and views (the `mariadb` client drops comments inside a routine's body, --skip-comments being its default). */
function names(o: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.map((line) => line.split(' | ')[0]!)]));
}

/**
 * What run() loaded equals what the client loaded: every table's checksum, the same
 * triggers, routines and views; their definitions equal the source's (comments kept).
 */
async function expectSameAsClient(loaded: TestDatabase, client: TestDatabase): Promise<void> {
  const expected = await checksums(client);
  expect(Object.keys(expected)).toEqual(['audit', 'customer', 'orders', 'plain_log', 'strange']);
  // The client's load is the source itself, byte for byte.
  expect(expected).toEqual(await checksums(source));
  expect(await checksums(loaded)).toEqual(expected);
  const want = await objects(client);
  expect(names(want)).toEqual({ triggers: ['orders_ai', 'plain_log_bi'], routines: ['add_order', 'shout'], views: ['order_totals'] });
  const got = await objects(loaded);
  expect(names(got)).toEqual(names(want));
  expect(got).toEqual(await objects(source));
}

function open(url: string, ledger: boolean): QueryBatch {
  return new QueryBatch({ home: home!, configFile: false, dropInSettleMs: 0, datasources: { main: { url, ledger } } });
}

describe('a mariadb-dump dropped into spool/ as one .sql file', () => {
  for (const ledger of [true, false]) {
    it(`runs as one script job equal to the mariadb client's load (--hex-blob, ledger ${ledger ? 'on' : 'off'})`, async () => {
      home = await tempHome();
      const file = await writeDump(home, ['--hex-blob']);
      const client = await clientLoad(file);
      const target = await database('dumpload_qb');
      await mkdir(join(home, 'spool'), { recursive: true });
      await writeFile(join(home, 'spool', 'dump.sql'), await readFile(file));
      q = open(target.url, ledger);
      const summary = await q.run();
      const failed = await failedNames(home).catch(() => []);
      const detail = failed[0] !== undefined ? JSON.stringify((await q.failedFile(failed[0])).lastError) : '';
      expect(failed, detail).toEqual([]);
      expect(summary).toMatchObject({ success: 1, sqlFailed: 0, connectionFailed: 0, invalid: 0 });
      await expectSameAsClient(target, client);
    });
  }

  // Known limitation: without --hex-blob mariadb-dump writes a BLOB's bytes raw into a string
  // literal, so the dump is not UTF-8 text; the client sends those bytes as they are, while a
  // script job must be UTF-8 (the splitter and the driver work on text). The drop-in is refused
  // whole, before any statement runs.
  it('a dump with raw BLOB bytes (no --hex-blob) goes to failed/ whole, as not UTF-8, with nothing run; the client loads it', async () => {
    home = await tempHome();
    const file = await writeDump(home, []);
    const client = await clientLoad(file);
    expect(await checksums(client)).toEqual(await checksums(source));
    const target = await database('dumpload_raw');
    await mkdir(join(home, 'spool'), { recursive: true });
    await writeFile(join(home, 'spool', 'dump.sql'), await readFile(file));
    q = open(target.url, true);
    expect(await q.run()).toMatchObject({ success: 0, invalid: 1 });
    const failed = await failedNames(home);
    expect(failed).toEqual(['failed-dump.sql']);
    expect((await q.failedFile(failed[0]!)).lastError).toMatchObject({ code: 'INVALID_SPOOL_FILE', message: expect.stringMatching(/not valid UTF-8/) });
    expect(await checksums(target)).toEqual({});
  });

  it('querybatch spool --file dump.sql, then querybatch run: the same load', async () => {
    home = await tempHome();
    const file = await writeDump(home, ['--hex-blob']);
    const client = await clientLoad(file);
    const target = await database('dumpload_cli');
    await writeFile(join(home, 'querybatch.config.json'), JSON.stringify({ datasources: { main: target.url } }));
    const spooled = await runCli(['spool', '--file', file, '--json'], { cwd: home });
    expect(spooled.code, spooled.stderr).toBe(0);
    const run = await runCli(['run', '--json'], { cwd: home });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ success: 1, sqlFailed: 0 });
    await expectSameAsClient(target, client);
  });

  it('the comparison sees a statement run twice: the dump with its plain_log INSERT repeated checksums differently', async () => {
    home = await tempHome();
    const file = await writeDump(home, ['--hex-blob']);
    const client = await clientLoad(file);
    const text = await readFile(file, 'utf8');
    const insert = /^INSERT INTO `plain_log` VALUES\n[\s\S]*?\);$/m.exec(text)?.[0];
    expect(insert).toBeDefined();
    const target = await database('dumpload_twice');
    q = open(target.url, true);
    await q.spoolScript(text.replace(insert!, `${insert!}\n${insert!}`));
    expect(await q.run()).toMatchObject({ success: 1 });
    const [a, b] = [await checksums(target), await checksums(client)];
    expect(a.plain_log).not.toEqual(b.plain_log);
    expect({ ...a, plain_log: null }).toEqual({ ...b, plain_log: null });
  });
});
