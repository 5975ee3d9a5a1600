import { afterEach, describe, expect, it } from 'vitest';
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { QueryBatch } from '../src/index.js';
import { count, failedNames, removeHome, runCli, tempHome, useTestDatabase } from './helpers.js';

/**
 * Scripts as a job kind: several statements, split client-side, run in order on one
 * connection, each exactly once with the ledger; a refused statement stops the script and
 * names itself; a respool resumes at it; the session the script sets is the script's alone.
 */
const t = useTestDatabase('script', 'CREATE TABLE seen (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(60)) ENGINE=InnoDB');
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
  await t.db.query('TRUNCATE seen');
  for (const table of ['s_parent', 's_child', 'later', 'big']) await t.db.query(`DROP TABLE IF EXISTS ${table}`);
});

async function seen(): Promise<string[]> {
  const [rows] = await t.db.query('SELECT v FROM seen ORDER BY n');
  return (rows as Array<{ v: string }>).map((r) => r.v);
}

function open(ledger: boolean | undefined = undefined): QueryBatch {
  return new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: { url: t.url, ...(ledger !== undefined && { ledger }) } } });
}

const SCRIPT = `-- a migration
CREATE TABLE s_parent (id INT PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO s_parent VALUES (1), (2);
SET @who = 'script';
INSERT INTO seen (v) VALUES (CONCAT(@who, ' ', 'one;two'));   # a ; inside quotes
DELIMITER $$
CREATE TRIGGER s_parent_ai AFTER INSERT ON s_parent FOR EACH ROW BEGIN
  INSERT INTO seen (v) VALUES (CONCAT('trigger ', NEW.id));
END$$
DELIMITER ;
INSERT INTO s_parent VALUES (3);
`;

describe('scripts', () => {
  for (const ledger of [true, false]) {
    it(`spoolScript runs every statement in order, DELIMITER blocks and quotes included (ledger ${ledger ? 'on' : 'off'})`, async () => {
      home = await tempHome();
      q = open(ledger);
      const id = await q.spoolScript(SCRIPT);
      await q.spool("INSERT INTO seen (v) VALUES (CONCAT('after, @who=', COALESCE(@who, 'unset')))");
      expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 0, connectionFailed: 0 });
      expect(await seen()).toEqual(['script one;two', 'trigger 3', 'after, @who=unset']);
      expect(await count(t.db, 'SELECT COUNT(*) AS c FROM s_parent')).toBe(3);
      expect(await q.status(id)).toMatchObject({ state: 'succeeded' });
    });
  }

  it('a refused statement stops the script: failed/ names it (number, line, text); earlier ones stay committed; a respool resumes at it', async () => {
    home = await tempHome();
    q = open();
    const script = `INSERT INTO seen (v) VALUES ('one');
INSERT INTO seen (v) VALUES ('two');

INSERT INTO later (v) VALUES ('three');
INSERT INTO seen (v) VALUES ('four');
`;
    const id = await q.spoolScript(script);
    expect(await q.run()).toMatchObject({ success: 0, sqlFailed: 1 });
    expect(await seen()).toEqual(['one', 'two']);
    const names = await failedNames(home);
    expect(names).toEqual([`failed-${id}.batchsql`]);
    const detail = await q.failedFile(names[0]!);
    expect(detail.lastError).toMatchObject({ code: 'ER_NO_SUCH_TABLE', statement: { index: 3, line: 4, text: "INSERT INTO later (v) VALUES ('three')" } });
    expect(detail.lastError?.message).toMatch(/^Statement 3 of 4 \(line 4\) failed: .*later.*resumes at statement 3/);
    expect(detail.script).toEqual({ bytes: Buffer.byteLength(script), statements: 4, done: 2 });
    const errorLog = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8');
    expect(errorLog).toContain("INSERT INTO later (v) VALUES ('three')");

    // The fix, then the respool: statements 1 and 2 do not run again.
    await t.db.query('CREATE TABLE later (v VARCHAR(60))');
    expect(await q.respool({ names })).toMatchObject({ respooled: [{ id }] });
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 0 });
    expect(await seen()).toEqual(['one', 'two', 'four']);
    expect(await count(t.db, 'SELECT COUNT(*) AS c FROM later')).toBe(1);
  });

  it('statements in the script\'s own transaction roll back with the one that failed, and a respool runs them again once', async () => {
    home = await tempHome();
    q = open();
    const script = `INSERT INTO seen (v) VALUES ('before');
SET autocommit = 0;
INSERT INTO seen (v) VALUES ('in tx 1');
INSERT INTO seen (v) VALUES ('in tx 2');
INSERT INTO missing_table VALUES (1);
COMMIT;
`;
    await q.spoolScript(script);
    expect(await q.run()).toMatchObject({ sqlFailed: 1 });
    expect(await seen()).toEqual(['before']);
    const [name] = await failedNames(home);
    const detail = await q.failedFile(name!);
    expect(detail.lastError?.message).toMatch(/statements 3 to 4 were in its transaction and were rolled back with it.*resumes at statement 3/);
    await t.db.query('CREATE TABLE missing_table (n INT)');
    try {
      await q.respool({ names: [name!] });
      expect(await q.run()).toMatchObject({ success: 1 });
      expect(await seen()).toEqual(['before', 'in tx 1', 'in tx 2']);
    } finally {
      await t.db.query('DROP TABLE missing_table');
    }
  });

  it('a .sql drop-in of several statements runs as a script; one of a single statement stays a statement', async () => {
    home = await tempHome();
    q = open();
    await mkdir(join(home, 'spool'), { recursive: true });
    await writeFile(join(home, 'spool', 'a-script.sql'), "INSERT INTO seen (v) VALUES ('a1');\nINSERT INTO seen (v) VALUES ('a2');\n");
    await writeFile(join(home, 'spool', 'b-single.sql'), "INSERT INTO seen (v) VALUES ('b; one statement');\n");
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 2, sqlFailed: 0, invalid: 0 });
    expect(await seen()).toEqual(['a1', 'a2', 'b; one statement']);
  });

  it('querybatch spool --file F.sql and --file - (standard input) spool a script', async () => {
    home = await tempHome();
    const config = join(home, 'querybatch.config.json');
    await writeFile(config, JSON.stringify({ datasources: { main: t.url } }));
    const file = join(home, 'm.sql');
    await writeFile(file, "\uFEFFINSERT INTO seen (v) VALUES ('file 1');\nINSERT INTO seen (v) VALUES ('file 2');");
    const fromFile = await runCli(['spool', '--file', file, '--json'], { cwd: home });
    expect(fromFile.code, fromFile.stderr).toBe(0);
    const fromStdin = await runCli(['spool', '--file', '-'], { cwd: home, input: "INSERT INTO seen (v) VALUES ('stdin 1');\nINSERT INTO seen (v) VALUES ('stdin 2');\n" });
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    const run = await runCli(['run', '--json'], { cwd: home });
    expect(run.code, run.stderr).toBe(0);
    expect(await seen()).toEqual(['file 1', 'file 2', 'stdin 1', 'stdin 2']);
    const empty = await runCli(['spool', '--file', '-'], { cwd: home, input: '-- nothing here\n' });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/Expected a script with at least one statement; found 16 bytes of white space and comments only/);
  });

  it('a script that drops and recreates the very database it runs against (a published sample database\'s script) runs with the ledger on', async () => {
    home = await tempHome();
    const name = `${t.name}_sample`;
    const admin = await mysql.createConnection(t.url);
    try {
      await admin.query(`CREATE DATABASE IF NOT EXISTS \`${name}\``);
      q = new QueryBatch({ home, configFile: false, datasources: { main: t.url.replace(/\/[^/]+$/, `/${name}`) } });
      await q.spoolScript(`DROP DATABASE IF EXISTS \`${name}\`;
CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4;
USE \`${name}\`;
CREATE TABLE actor (id INT PRIMARY KEY, name VARCHAR(40));
INSERT INTO actor VALUES (1, 'PENELOPE'), (2, 'NICK');
`);
      expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 0, connectionFailed: 0 });
      expect(await count(admin, `SELECT COUNT(*) AS c FROM \`${name}\`.actor`)).toBe(2);
      // The ledger table is there again (made when the database came back; its rows pruned once the script finished).
      expect(await count(admin, "SELECT COUNT(*) AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'querybatch_ledger'", [name])).toBe(1);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await admin.end();
    }
  });

  it('run()\'s onProgress says which statement a script is at', async () => {
    home = await tempHome();
    q = open();
    const id = await q.spoolScript("INSERT INTO seen (v) VALUES ('1');\nINSERT INTO seen (v) VALUES ('2');\nINSERT INTO seen (v) VALUES ('3');\n");
    const seenProgress: Array<string> = [];
    await q.run({ onProgress: (p) => seenProgress.push(p.script ? `${p.script.id === id ? 'script' : '?'} ${p.script.statement}/${p.script.statements}` : `${p.done}/${p.total}`) });
    expect(seenProgress).toEqual(['0/1', 'script 1/3', 'script 2/3', '0/1', '1/1']);
  });

  it('status <id> of a running script says which statement it is at', async () => {
    home = await tempHome();
    q = open();
    const id = await q.spoolScript("INSERT INTO seen (v) VALUES ('x');\nDO SLEEP(1.5);\nINSERT INTO seen (v) VALUES ('y');\n");
    const running = q.run();
    let status;
    for (let i = 0; i < 100; i++) {
      status = await q.status(id);
      if (status.state === 'running' && status.script?.done === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toMatchObject({ state: 'running', script: { done: 1, statements: 3 } });
    await running;
    expect(await readdir(join(home, 'failed')).catch(() => [])).toEqual([]);
  });
});
