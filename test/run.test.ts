import { afterEach, describe, expect, it } from 'vitest';
import { cp, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { decodeRecord } from '../src/spool/record.js';
import { parseErrorLine } from '../src/ops/log-format.js';
import { CLOSED_PORT_URL, filesBelow, removeHome, tempHome, useTestDatabase } from './helpers.js';

const t = useTestDatabase('run');
let home: string;
const open: QueryBatch[] = [];

function qb(options: ConstructorParameters<typeof QueryBatch>[0] = {}): QueryBatch {
  const q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: t.url }, ...options });
  open.push(q);
  return q;
}

const filesUnder = filesBelow;

async function errorLog(): Promise<Array<Record<string, string>>> {
  const text = await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8');
  return text.trim().split('\n').map((l) => parseErrorLine(l)!);
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.close()));
  await removeHome(home);
});

describe('run()', () => {
  it('executes 1,000 INSERTs from 20 concurrent producers once each, in spool order, and empties spool/', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE fifo (n INT AUTO_INCREMENT PRIMARY KEY, producer INT NOT NULL, seq INT NOT NULL)');
    const q = qb();
    const spooled: Array<{ id: string; producer: number; seq: number }> = [];
    await Promise.all(Array.from({ length: 20 }, async (_, producer) => {
      for (let seq = 0; seq < 50; seq++) {
        const id = await q.spool('INSERT INTO fifo (producer, seq) VALUES (?, ?)', [producer, seq]);
        spooled.push({ id, producer, seq });
      }
    }));
    expect(new Set(spooled.map((s) => s.id)).size).toBe(1000);

    const summary = await q.run();
    expect(summary).toMatchObject({ success: 1000, sqlFailed: 0, connectionFailed: 0, deferred: 0 });

    const [rows] = await t.db.query('SELECT producer, seq FROM fifo ORDER BY n');
    const executed = (rows as Array<{ producer: number; seq: number }>).map((r) => `${r.producer}:${r.seq}`);
    // Exactly once each, and in the order of their ids (spool order).
    const expected = [...spooled].sort((a, b) => (a.id < b.id ? -1 : 1)).map((s) => `${s.producer}:${s.seq}`);
    expect(executed).toEqual(expected);
    expect(await filesUnder(join(home, 'spool'))).toEqual([]);
    // Drained shard directories are removed.
    expect((await readdir(join(home, 'spool', 'main')))).toEqual([]);

    const log = await readFile(join(home, 'logs', 'querybatch.log'), 'utf8');
    expect(log).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z runSQL: success=1000; SQLFailed=0; ConnectedFailed=0; SQL=\d+ms; avg=\d+ms\n$/);
  });

  it('carries params exactly: Date with ms, Buffer, bigint beyond 2^53, null, unicode, named params', async () => {
    home = await tempHome();
    await t.db.query(`CREATE TABLE params (id INT PRIMARY KEY, d DATETIME(3), b VARBINARY(64), big BIGINT, n VARCHAR(10) NULL, u VARCHAR(100) CHARACTER SET utf8mb4, f DOUBLE, flag BOOLEAN)`);
    const q = qb();
    const date = new Date('2026-03-04T05:06:07.891Z');
    const bytes = Buffer.from([0, 1, 2, 254, 255, 0x27, 0x5c]);
    const big = 2n ** 62n + 12345n;
    const unicode = 'Grüße, 世界 🌍 \'quote\' "dq" \\ back';
    await q.spool('INSERT INTO params (id, d, b, big, n, u, f, flag) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [1, date, bytes, big, null, unicode, 1.5, true]);
    await q.spool('INSERT INTO params (id, d, b, big, n, u, f, flag) VALUES (:id, :d, :b, :big, :n, :u, :f, :flag)', {
      id: 2, d: date, b: bytes, big: -big, n: null, u: unicode, f: -0.25, flag: false,
    });
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 2, sqlFailed: 0 });

    const [rows] = await t.db.query('SELECT * FROM params ORDER BY id');
    const [one, two] = rows as Array<Record<string, unknown>>;
    expect((one!.d as Date).getTime()).toBe(date.getTime());
    expect(one!.b).toEqual(bytes);
    expect(one!.big).toBe(big.toString());
    expect(one!.n).toBeNull();
    expect(one!.u).toBe(unicode);
    expect(one!.f).toBe(1.5);
    expect(one!.flag).toBe(1);
    expect((two!.d as Date).getTime()).toBe(date.getTime());
    expect(two!.b).toEqual(bytes);
    expect(two!.big).toBe((-big).toString());
    expect(two!.n).toBeNull();
    expect(two!.u).toBe(unicode);
    expect(two!.f).toBe(-0.25);
    expect(two!.flag).toBe(0);
  });

  it('moves only a failing statement to failed/failed-…, logs its id, code and SQL, and runs the others', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE mixed (n INT AUTO_INCREMENT PRIMARY KEY, v INT UNIQUE)');
    const q = qb();
    await q.spool('INSERT INTO mixed (v) VALUES (?)', [1]);
    await q.spool('INSERT INTO mixed (v) VALUES (?)', [2]);
    const bad = await q.spool('INSERT INTO no_such_table (v) VALUES (?)', [4242424]);
    const dup = await q.spool('INSERT INTO mixed (v) VALUES (?)', [1]);
    await q.spool('INSERT INTO mixed (v) VALUES (?)', [3]);

    const summary = await q.run();
    expect(summary).toMatchObject({ success: 3, sqlFailed: 2, connectionFailed: 0, invalid: 0 });
    const [rows] = await t.db.query('SELECT v FROM mixed ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([1, 2, 3]);

    expect((await readdir(join(home, 'failed'))).sort()).toEqual([`failed-${bad}.batchsql`, `failed-${dup}.batchsql`].sort());
    const record = decodeRecord(await readFile(join(home, 'failed', `failed-${bad}.batchsql`), 'utf8'));
    expect(record).toMatchObject({ id: bad, sql: 'INSERT INTO no_such_table (v) VALUES (?)', params: [4242424], attempts: 1 });
    expect(record.lastError).toMatchObject({ class: 'sql', code: 'ER_NO_SUCH_TABLE', errno: 1146 });
    const lines = await errorLog();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      class: 'sql', id: bad, datasource: 'main', code: 'ER_NO_SUCH_TABLE', errno: '1146', attempts: '1',
      file: `spool/main/${bad.slice(0, 6)}/${bad.slice(6, 8)}${bad[10]!}/${bad}.batchsql`,
      sql: 'INSERT INTO no_such_table (v) VALUES (?)', params: '1[number]', moved: `failed/failed-${bad}.batchsql`,
    });
    expect(lines[0]!.message).toContain("no_such_table' doesn't exist");
    expect(lines[1]).toMatchObject({ class: 'sql', id: dup, code: 'ER_DUP_ENTRY' });
    // Param values are redacted by default.
    expect(await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8')).not.toContain('4242424');

    const log = await readFile(join(home, 'logs', 'querybatch.log'), 'utf8');
    expect(log).toMatch(/runSQL: success=3; SQLFailed=2; ConnectedFailed=0; SQL=\d+ms; avg=\d+ms\n$/);
  });

  it('keeps an unreachable datasource\'s files in place for maxConnectionAttempts runs while a healthy one drains', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE healthy (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    const q = qb({ datasources: { main: t.url, down: CLOSED_PORT_URL }, maxConnectionAttempts: 3 });
    const downIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      downIds.push(await q.spool('INSERT INTO healthy (v) VALUES (?)', [100 + i], { datasource: 'down' }));
      await q.spool('INSERT INTO healthy (v) VALUES (?)', [i]);
    }
    const downFiles = async () => (await filesUnder(join(home, 'spool', 'down'))).map((f) => f.slice(f.lastIndexOf('/') + 1)).sort();

    const first = await q.run();
    expect(first.datasources.main).toMatchObject({ success: 5 });
    expect(first.datasources.down).toMatchObject({ success: 0, connectionFailed: 1, deferred: 5 });
    expect(first.datasources.down!.connectionError).toMatch(/ECONNREFUSED/);
    expect(first).toMatchObject({ success: 5, connectionFailed: 1 });
    // Nothing lost, nothing moved: all five still in spool under their own names.
    expect(await downFiles()).toEqual(downIds.map((id) => `${id}.batchsql`));
    expect(await readdir(join(home, 'failed'))).toEqual([]);
    const firstFile = (await filesUnder(join(home, 'spool', 'down'))).sort()[0]!;
    expect(decodeRecord(await readFile(firstFile, 'utf8'))).toMatchObject({ id: downIds[0], attempts: 1, lastError: { class: 'connection', code: 'ECONNREFUSED' } });
    // The others are untouched.
    const second = (await filesUnder(join(home, 'spool', 'down'))).sort()[1]!;
    expect(decodeRecord(await readFile(second, 'utf8')).attempts).toBe(0);

    await q.run();
    expect(await readdir(join(home, 'failed'))).toEqual([]);
    const third = await q.run();
    expect(third.datasources.down).toMatchObject({ connectionFailed: 1, deferred: 4 });
    expect(await readdir(join(home, 'failed'))).toEqual([`connection-${downIds[0]}.batchsql`]);
    expect(await downFiles()).toEqual(downIds.slice(1).map((id) => `${id}.batchsql`));
    const failed = decodeRecord(await readFile(join(home, 'failed', `connection-${downIds[0]}.batchsql`), 'utf8'));
    expect(failed).toMatchObject({ attempts: 3, lastError: { class: 'connection' } });

    const lines = await errorLog();
    expect(lines.map((l) => [l.class, l.id, l.attempts])).toEqual([
      ['connection', downIds[0], '1'], ['connection', downIds[0], '2'], ['connection', downIds[0], '3'],
    ]);
    expect(lines[2]!.moved).toBe(`failed/connection-${downIds[0]}.batchsql`);
    expect(lines[0]!.moved).toMatch(/^spool\/down\//);
    const [rows] = await t.db.query('SELECT v FROM healthy ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([0, 1, 2, 3, 4]);
  });

  it('runs a failed file copied back into spool/ at the top level and three directories deep', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE respool (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    const q = qb();
    const a = await q.spool('INSERT INTO respool_later (v) VALUES (?)', [1]);
    const b = await q.spool('INSERT INTO respool_later (v) VALUES (?)', [2]);
    expect(await q.run()).toMatchObject({ sqlFailed: 2 });
    await t.db.query('CREATE TABLE respool_later (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');

    await cp(join(home, 'failed', `failed-${a}.batchsql`), join(home, 'spool', `failed-${a}.batchsql`));
    await mkdir(join(home, 'spool', 'a', 'b', 'c'), { recursive: true });
    await cp(join(home, 'failed', `failed-${b}.batchsql`), join(home, 'spool', 'a', 'b', 'c', `failed-${b}.batchsql`));

    const { chmod } = await import('node:fs/promises');
    await chmod(join(home, 'spool', `failed-${a}.batchsql`), 0o644); // as a hand copy may arrive
    // A stopped run still takes the drop-ins into their shards (0600, like every job file).
    const stopped = new AbortController();
    stopped.abort();
    expect(await q.run({ signal: stopped.signal })).toMatchObject({ adopted: 2, success: 0, deferred: 2 });
    const placed = (await filesUnder(join(home, 'spool'))).sort();
    expect(placed.map((f) => f.slice(f.lastIndexOf('/') + 1))).toEqual([`${a}.batchsql`, `${b}.batchsql`]);
    for (const f of placed) expect((await stat(f)).mode & 0o777).toBe(0o600);

    const summary = await q.run();
    expect(summary).toMatchObject({ adopted: 0, success: 2, sqlFailed: 0 });
    const [rows] = await t.db.query('SELECT v FROM respool_later ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([1, 2]);
    expect(await filesUnder(join(home, 'spool'))).toEqual([]);
    // Copying it again runs it again (it is a new request); a copy of a job still pending is refused.
  });

  it('takes a plain .sql drop-in as SQL for the default datasource, in the order of modification', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE dropins (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))');
    const q = qb();
    await q.spool('INSERT INTO dropins (v) VALUES (?)', ['first']);
    await mkdir(join(home, 'spool', 'incoming'), { recursive: true });
    const { writeFile, utimes } = await import('node:fs/promises');
    await writeFile(join(home, 'spool', 'incoming', 'b.sql'), "\uFEFFINSERT INTO dropins (v) VALUES ('second')\n");
    await writeFile(join(home, 'spool', 'a.sql'), "INSERT INTO dropins (v) VALUES ('third')");
    // Modification times decide the order: b.sql before a.sql, both after the spooled job.
    const now = Date.now() / 1000;
    await utimes(join(home, 'spool', 'incoming', 'b.sql'), now + 1, now + 1);
    await utimes(join(home, 'spool', 'a.sql'), now + 2, now + 2);
    expect(await q.run()).toMatchObject({ adopted: 2, success: 3 });
    const [rows] = await t.db.query('SELECT v FROM dropins ORDER BY n');
    // The spooled job is older than both drop-ins' modification times, b.sql older than a.sql.
    expect((rows as Array<{ v: string }>).map((r) => r.v)).toEqual(['first', 'second', 'third']);
  });

  it('runs 200 .sql drop-ins written in a loop in (modification time, name) order, ties by name', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE dropseq (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))');
    const q = qb();
    await q.status(); // creates the layout
    const { writeFile, utimes } = await import('node:fs/promises');
    await mkdir(join(home, 'spool', 'incoming'));
    // Names sort against the order of writing; every other file goes into a directory of its own.
    const files = Array.from({ length: 200 }, (_, i) => {
      const name = `f${String(199 - i).padStart(3, '0')}.sql`;
      return { name, path: join(home, 'spool', i % 2 === 0 ? '' : 'incoming', name) };
    });
    for (const file of files) await writeFile(file.path, `INSERT INTO dropseq (v) VALUES ('${file.name}')`);
    // Groups of 10 (every other group) share one modification time: the first one's.
    for (let group = 0; group < 200; group += 20) {
      const { mtime } = await stat(files[group]!.path);
      for (const file of files.slice(group, group + 10)) await utimes(file.path, mtime, mtime);
    }
    const stats = await Promise.all(files.map(async (file) => ({ name: file.name, mtimeNs: (await stat(file.path, { bigint: true })).mtimeNs })));
    const expected = [...stats].sort((a, b) => (a.mtimeNs !== b.mtimeNs ? (a.mtimeNs < b.mtimeNs ? -1 : 1) : a.name < b.name ? -1 : 1)).map((f) => f.name);
    // The test means something: the order is neither the names' nor the writing's.
    expect(expected).not.toEqual(files.map((f) => f.name).sort());
    expect(expected).not.toEqual(files.map((f) => f.name));
    expect(await q.run()).toMatchObject({ adopted: 200, success: 200 });
    const [rows] = await t.db.query('SELECT v FROM dropseq ORDER BY n');
    expect((rows as Array<{ v: string }>).map((r) => r.v)).toEqual(expected);
  });

  it('leaves a drop-in that is still changing for a later run (dropInSettleMs)', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE settle (v INT)');
    const q = qb({ dropInSettleMs: 60_000 });
    await q.status(); // creates the layout
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(home, 'spool', 'fresh.sql'), 'INSERT INTO settle VALUES (1)');
    expect(await q.run()).toMatchObject({ adopted: 0, success: 0, deferred: 1 });
    expect(await readdir(join(home, 'spool'))).toContain('fresh.sql');
  });

  it('falls back to a plain query for statements the server cannot prepare', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE unprepared (v INT)');
    const q = qb();
    await q.spool("EXECUTE IMMEDIATE 'INSERT INTO unprepared VALUES (?)' USING 7");
    await q.spool('INSERT INTO unprepared VALUES (?)', [8]);
    expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 0 });
    const [rows] = await t.db.query('SELECT v FROM unprepared ORDER BY v');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([7, 8]);
  });

  it('respects limit and an aborted signal, leaving the rest in spool in order', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE limited (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    const q = qb();
    for (let i = 0; i < 10; i++) await q.spool('INSERT INTO limited (v) VALUES (?)', [i]);
    expect(await q.run({ limit: 4 })).toMatchObject({ success: 4, deferred: 6 });
    const controller = new AbortController();
    controller.abort();
    expect(await q.run({ signal: controller.signal })).toMatchObject({ success: 0, deferred: 6 });
    expect(await q.run()).toMatchObject({ success: 6, deferred: 0 });
    const [rows] = await t.db.query('SELECT v FROM limited ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('per-statement mode (ledger.batch 1) commits a claimed burst one by one: a stop after the first job leaves the rest in place, untouched, in order', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE burst (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    const q = qb({ datasources: { main: { url: t.url, ledger: { batch: 1 } } } });
    for (let i = 0; i < 10; i++) await q.spool('INSERT INTO burst (v) VALUES (?)', [i]);
    const controller = new AbortController();
    const first = await q.run({ signal: controller.signal, onProgress: (p) => p.done >= 1 && controller.abort() });
    expect(first).toMatchObject({ success: 1, deferred: 9 });
    const left = await filesBelow(join(home, 'spool', 'main'));
    expect(left).toHaveLength(9);
    for (const f of left) expect(decodeRecord(await readFile(f, 'utf8')).attempts).toBe(0);
    expect(await filesBelow(join(home, 'spool', '.active'))).toEqual([]);
    // One transaction per job: each has its own ledger row, committed before the next ran.
    expect(await q.run()).toMatchObject({ success: 9, deferred: 0 });
    const [rows] = await t.db.query('SELECT v FROM burst ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('a run() with options while a run is in flight waits for it and keeps its own options; one without joins', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE overlap (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    const q = qb();
    for (let i = 0; i < 50; i++) await q.spool('INSERT INTO overlap (v) VALUES (?)', [i]);
    const first = q.run({ limit: 10 });
    const joined = q.run({ limit: 10 }); // options: not joined, runs after
    const plain = q.run();
    const again = q.run(); // joins the plain run
    expect(again).toBe(plain);
    expect(await first).toMatchObject({ success: 10, deferred: 40 });
    expect(await joined).toMatchObject({ success: 10, deferred: 30 });
    expect(await plain).toMatchObject({ success: 30, deferred: 0 });
    const [rows] = await t.db.query('SELECT v FROM overlap ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('serialises runs of two instances on one home in one process: no job twice, order kept', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE twice (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    const a = qb();
    const b = qb();
    for (let i = 0; i < 200; i++) await a.spool('INSERT INTO twice (v) VALUES (?)', [i]);
    const [ra, rb] = await Promise.all([a.run(), b.run()]);
    expect(ra.success + rb.success).toBe(200);
    expect(ra.recovered + rb.recovered).toBe(0);
    const [rows] = await t.db.query('SELECT v FROM twice ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('a datasource whose drain fails does not cut the others short, leak connections or lose its job', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE ioerr (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))');
    const q = qb({ datasources: { main: t.url, other: t.url } });
    await q.spool("INSERT INTO ioerr (v) SELECT 'slow' FROM (SELECT SLEEP(0.5)) AS s");
    const bad = await q.spool('INSERT INTO no_table_here VALUES (1)', [], { datasource: 'other' });
    // failed/ is a file: moving the failed statement there fails (as a full or broken disk would).
    const { rm, writeFile } = await import('node:fs/promises');
    await rm(join(home, 'failed'), { recursive: true });
    await writeFile(join(home, 'failed'), 'not a directory');

    const error = await q.run().then(() => null, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'RUN_IO_FAILED' });
    expect((error as Error).message).toMatch(/^Datasource "other" stopped: ENOTDIR/);
    // main's drain finished before run() settled: its job ran once and is gone.
    const [rows] = await t.db.query('SELECT v FROM ioerr');
    expect(rows).toEqual([{ v: 'slow' }]);
    // Three more failing runs: connections are released each time (the pool holds two), so none hangs.
    for (let i = 0; i < 3; i++) await expect(q.run()).rejects.toMatchObject({ code: 'RUN_IO_FAILED' });

    await rm(join(home, 'failed'));
    await mkdir(join(home, 'failed'), { mode: 0o700 });
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 0, sqlFailed: 1 });
    expect(await readdir(join(home, 'failed'))).toEqual([`failed-${bad}.batchsql`]);
    const [again] = await t.db.query('SELECT v FROM ioerr');
    expect(again).toEqual([{ v: 'slow' }]);
  });

  it('finishes an adoption a dead runner cut short, keeping the id it had given a .sql file', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE cutshort (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))');
    const q = qb();
    const { hostname } = await import('node:os');
    const { writeFile } = await import('node:fs/promises');
    const { newId } = await import('../src/spool/id.js');
    const adopting = join(home, 'spool', '.active', `${hostname()}.4194303.1000`, '.adopt');
    await mkdir(adopting, { recursive: true });
    // One whose job was already written into its shard before the crash: not queued twice.
    const done = await q.spool("INSERT INTO cutshort (v) VALUES ('written')");
    await writeFile(join(adopting, `${done}.sql`), "INSERT INTO cutshort (v) VALUES ('written')");
    // One cut short before its job was written: queued once, under the id it had been given.
    const cut = newId();
    await writeFile(join(adopting, `${cut}.sql`), "INSERT INTO cutshort (v) VALUES ('cut')");
    const { utimes } = await import('node:fs/promises');
    await utimes(join(adopting, `${cut}.sql`), new Date(0), new Date(0));

    expect(await q.run()).toMatchObject({ recovered: 1, adopted: 1, success: 2 });
    const [rows] = await t.db.query('SELECT v FROM cutshort ORDER BY n');
    expect((rows as Array<{ v: string }>).map((r) => r.v)).toEqual(['written', 'cut']);
    expect(await filesUnder(join(home, 'spool'))).toEqual([]);
  });

  it('gives claims left by a dead runner back to the spool in their order', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE orphans (n INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    const q = qb();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await q.spool('INSERT INTO orphans (v) VALUES (?)', [i]));
    // Simulate a runner that died holding the first two claims: pid 2^22-1 on this host is not running.
    const { hostname } = await import('node:os');
    const { rename } = await import('node:fs/promises');
    const dead = join(home, 'spool', '.active', `${hostname()}.4194303.1000`, 'main');
    await mkdir(dead, { recursive: true });
    const files = (await filesUnder(join(home, 'spool', 'main'))).sort();
    for (const f of files.slice(0, 2)) await rename(f, join(dead, f.slice(f.lastIndexOf('/') + 1)));
    const summary = await q.run();
    expect(summary).toMatchObject({ recovered: 2, success: 3 });
    const [rows] = await t.db.query('SELECT v FROM orphans ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([0, 1, 2]);
    expect(await readdir(join(home, 'spool', '.active'))).toEqual([]);
    expect((await stat(join(home, 'spool'))).mode & 0o777).toBe(0o700);
  });
});
