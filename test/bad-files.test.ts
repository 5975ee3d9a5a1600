import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { link, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { newId } from '../src/spool/id.js';
import { parseErrorLine } from '../src/ops/log-format.js';
import { spoolPathFor } from '../src/spool/shards.js';
import { encodeRecord, FORMAT, type SpoolRecord } from '../src/spool/record.js';
import { failedNames, filesBelow, removeHome, tempHome, useTestDatabase } from './helpers.js';

const t = useTestDatabase('badfiles', 'CREATE TABLE good (n INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))');
let home: string;
let q: QueryBatch;

function record(sql: string, overrides: Partial<SpoolRecord> = {}): SpoolRecord {
  return { format: FORMAT, id: newId(), datasource: 'main', sql, params: [], createdAt: new Date().toISOString(), attempts: 0, ...overrides };
}

afterEach(async () => {
  await q.close();
  await removeHome(home);
  await t.db.query('TRUNCATE good');
});

describe('bad files in spool/', () => {
  it('moves each bad file to failed/ with its reason logged, completes the run, and still runs the valid files', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: t.url }, limits: { maxFileBytes: 4096 } });
    await q.spool('INSERT INTO good (v) VALUES (?)', ['before']);
    const spool = join(home, 'spool');
    const valid = encodeRecord(record("INSERT INTO good (v) VALUES ('dropped valid')"));

    const bad: Record<string, string> = {}; // file name → expected reason fragment
    await writeFile(join(spool, 'empty.batchsql'), '');
    bad['empty.batchsql'] = 'empty file';
    for (const cut of [1, 17, Math.floor(valid.length / 2), valid.length - 2]) {
      await writeFile(join(spool, `truncated-${cut}.batchsql`), valid.slice(0, cut));
      bad[`truncated-${cut}.batchsql`] = 'not valid JSON';
    }
    await writeFile(join(spool, 'garbage.batchsql'), '{"format": "querybatch/1", "sql": SELECT');
    bad['garbage.batchsql'] = 'not valid JSON';
    await writeFile(join(spool, 'version.batchsql'), valid.replace('"querybatch/1"', '"querybatch/9"'));
    bad['version.batchsql'] = 'Expected format "querybatch/1"; found "querybatch/9"';
    await writeFile(join(spool, 'edited.batchsql'), valid.replace('dropped valid', 'dropped EVIL!'));
    bad['edited.batchsql'] = 'Checksum mismatch';
    await mkdir(join(spool, 'x.batchsql'));
    bad['x.batchsql'] = 'found a directory';
    await symlink('/etc/passwd', join(spool, 'link.batchsql'));
    bad['link.batchsql'] = 'symbolic link';
    await writeFile(join(spool, 'huge.batchsql'), encodeRecord(record(`INSERT INTO good (v) VALUES ('${'x'.repeat(5000)}')`)));
    bad['huge.batchsql'] = 'Expected at most 4096 bytes';
    await writeFile(join(spool, 'notes.txt'), 'hello');
    bad['notes.txt'] = 'Expected a .batchsql or .sql file';
    await writeFile(join(spool, 'latin1.sql'), Buffer.from([0x53, 0x45, 0x4c, 0xe9, 0x0a]));
    bad['latin1.sql'] = 'not valid UTF-8';
    await writeFile(join(spool, 'blank.sql'), '  \n');
    bad['blank.sql'] = 'Expected SQL to be a non-empty string';
    await writeFile(join(spool, 'elsewhere.batchsql'), encodeRecord(record('SELECT 1', { datasource: 'unknown_ds' })));
    bad['elsewhere.batchsql'] = 'Expected the file\'s datasource to be configured';
    execFileSync('mkfifo', [join(spool, 'pipe.batchsql')]);
    bad['pipe.batchsql'] = 'found a FIFO';
    await writeFile(join(home, 'outside.batchsql'), valid);
    await link(join(home, 'outside.batchsql'), join(spool, 'hardlink.batchsql'));
    bad['hardlink.batchsql'] = 'hard links';
    // A damaged file inside a shard, named like a real job, is caught by the drain itself.
    const shardId = newId();
    const shardPath = spoolPathFor(spool, 'main', shardId);
    await mkdir(join(shardPath, '..'), { recursive: true });
    await writeFile(shardPath, valid.slice(0, 40));
    // And valid drop-ins next to all that.
    await writeFile(join(spool, 'ok.batchsql'), valid);
    await mkdir(join(spool, 'deep', 'er'), { recursive: true });
    await writeFile(join(spool, 'deep', 'er', 'ok.sql'), "INSERT INTO good (v) VALUES ('dropped sql')");

    const summary = await q.run();
    const badCount = Object.keys(bad).length + 1;
    expect(summary).toMatchObject({ success: 3, invalid: badCount, sqlFailed: badCount, connectionFailed: 0, adopted: 2 });

    const [rows] = await t.db.query('SELECT v FROM good ORDER BY n');
    expect((rows as Array<{ v: string }>).map((r) => r.v).sort()).toEqual(['before', 'dropped sql', 'dropped valid']);

    const failed = await failedNames(home);
    for (const name of Object.keys(bad)) expect(failed).toContain(`failed-${name}`);
    expect(failed).toContain(`failed-${shardId}.batchsql`);
    expect(failed).toHaveLength(badCount);
    // Nothing is left behind in spool/ but the (empty) structure.
    expect(await filesBelow(spool)).toEqual([]);

    const lines = (await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8')).trim().split('\n').map((l) => parseErrorLine(l)!);
    expect(lines).toHaveLength(badCount);
    for (const [name, reason] of Object.entries(bad)) {
      const line = lines.find((l) => l.file === `spool/${name}`);
      expect(line, name).toBeDefined();
      expect(line!.class).toBe('invalid');
      expect(line!.moved).toBe(`failed/failed-${name}`);
      expect(line!.message, name).toContain(reason);
    }
    const shardLine = lines.find((l) => l.id === shardId)!;
    expect(shardLine).toMatchObject({ class: 'invalid', code: 'INVALID_SPOOL_FILE', datasource: 'main' });
    // The symlink's target was never touched or read into the log.
    expect(await readFile('/etc/passwd', 'utf8')).toContain('root');
    expect(await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8')).not.toContain('root:x:0');
    await writeFile(join(home, 'check'), 'ok'); // the home is still writable; nothing was damaged
  });

  it('refuses a second copy of a job that is still pending, and never runs it twice', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: t.url } });
    const id = await q.spool('INSERT INTO good (v) VALUES (?)', ['once']);
    const path = spoolPathFor(join(home, 'spool'), 'main', id);
    await writeFile(join(home, 'spool', 'copy.batchsql'), await readFile(path));
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 1, invalid: 1 });
    const [rows] = await t.db.query('SELECT v FROM good');
    expect(rows).toEqual([{ v: 'once' }]);
    expect(await failedNames(home)).toEqual(['failed-copy.batchsql']);
    const line = parseErrorLine((await readFile(join(home, 'logs', 'querybatch-error.log'), 'utf8')).trim())!;
    expect(line.message).toContain(`A job with id ${id} is already pending`);
  });

  it('never overwrites a failed file already there', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: t.url } });
    await q.status();
    await writeFile(join(home, 'failed', 'failed-junk.batchsql'), 'the first one');
    await writeFile(join(home, 'spool', 'junk.batchsql'), 'the second one');
    await q.run();
    expect((await failedNames(home)).sort()).toEqual(['failed-junk-1.batchsql', 'failed-junk.batchsql']);
    expect(await readFile(join(home, 'failed', 'failed-junk.batchsql'), 'utf8')).toBe('the first one');
    expect(await readFile(join(home, 'failed', 'failed-junk-1.batchsql'), 'utf8')).toBe('the second one');
  });

  it('failed lists a too-large .sql drop-in and a directory c.sql/ with the reasons logged, as status counts them; respool puts the .sql back as a drop-in', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: t.url }, limits: { maxSqlBytes: 100 } });
    await q.status();
    const big = `INSERT INTO good (v) VALUES ('big') /* ${'x'.repeat(120)} */`;
    await writeFile(join(home, 'spool', 'big.sql'), big);
    await mkdir(join(home, 'spool', 'c.sql'));
    await writeFile(join(home, 'spool', 'c.sql', 'inner.sql'), 'SELECT 1');
    expect(await q.run()).toMatchObject({ invalid: 2 });
    expect((await q.status()) as { failed: unknown }).toMatchObject({ failed: { failed: 2 } });

    const listed = await q.failed();
    expect(listed.map((f) => [f.name, f.lastError?.code, f.valid, f.dropIn])).toEqual([
      ['failed-big.sql', 'SQL_TOO_LARGE', false, true],
      ['failed-c.sql', 'INVALID_SPOOL_FILE', false, false],
    ]);
    expect(listed[0]!.lastError!.message).toMatch(/at most 100 bytes \(limits\.maxSqlBytes\); got \d+ bytes/);
    expect(listed[1]!.lastError!.message).toBe('Expected a regular file; found a directory');

    const respooled = await q.respool({ all: true });
    expect(respooled.respooled).toEqual([{ name: 'failed-big.sql', id: expect.stringMatching(/^[0-9A-Z]{26}$/), datasource: 'main' }]);
    expect(respooled.skipped).toEqual([{ name: 'failed-c.sql', reason: 'not a valid job file: INVALID_SPOOL_FILE: Expected a regular file; found a directory' }]);
    const id = respooled.respooled[0]!.id;
    expect((await readdir(join(home, 'spool'))).filter((n) => n.endsWith('.sql'))).toEqual([`${id}.sql`]);
    expect(await readdir(join(home, 'failed'))).toEqual(['.failed-c.sql.reason', 'failed-c.sql']);
    await q.close();

    // With a larger limit the next run adopts it again and runs it.
    q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: t.url } });
    expect(await q.run()).toMatchObject({ success: 1, adopted: 1 });
    const [rows] = await t.db.query('SELECT v FROM good');
    expect(rows).toEqual([{ v: 'big' }]);
  });
});
