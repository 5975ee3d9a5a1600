import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { decodeRecord } from '../src/spool/record.js';
import { removeHome, tempHome, useTestDatabase } from './helpers.js';

/**
 * Values near and over the server's max_allowed_packet (16 MiB on the test server): a value
 * that fits as bytes but not written into SQL text runs on its own as a prepared statement;
 * one that can never be sent fails alone as the statement's fault, never as a lost connection.
 */
const t = useTestDatabase('packet', 'CREATE TABLE blobs (n INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(20), b LONGBLOB) ENGINE=InnoDB');
let home: string;
let q: QueryBatch | undefined;
const MiB = 1024 * 1024;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
  await t.db.query('TRUNCATE blobs');
});

function open(ledger: boolean): QueryBatch {
  return new QueryBatch({
    home,
    configFile: false,
    dropInSettleMs: 0,
    // limits.maxSqlBytes left unset: its default
    limits: { maxParamsBytes: 40 * MiB, maxFileBytes: 64 * MiB },
    datasources: { main: { url: t.url, ledger } },
  });
}

async function stored(): Promise<Array<{ tag: string; length: number; sha: string }>> {
  const [rows] = await t.db.query('SELECT tag, LENGTH(b) AS length, SHA1(b) AS sha FROM blobs ORDER BY n');
  return (rows as Array<{ tag: string; length: number; sha: string }>).map((r) => ({ tag: r.tag, length: Number(r.length), sha: r.sha }));
}

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

describe('values near max_allowed_packet', () => {
  for (const ledger of [true, false] as const) {
    it(`a 9 MiB Buffer between small jobs spooled together commits exactly (ledger ${ledger ? 'on' : 'off'}), never a connection failure`, async () => {
      home = await tempHome();
      q = open(ledger);
      const big = Buffer.alloc(9 * MiB, 0xab);
      big.writeUInt32BE(0xdeadbeef, 4 * MiB);
      const small = Buffer.from('small');
      await Promise.all([
        q.spool('INSERT INTO blobs (tag, b) VALUES (?, ?)', ['first', small]),
        q.spool('INSERT INTO blobs (tag, b) VALUES (?, ?)', ['big', big]),
        q.spool('INSERT INTO blobs (tag, b) VALUES (?, ?)', ['last', small]),
      ]);
      const summary = await q.run();
      expect(summary).toMatchObject({ success: 3, sqlFailed: 0, connectionFailed: 0 });
      expect(await stored()).toEqual([
        { tag: 'first', length: 5, sha: sha1(small) },
        { tag: 'big', length: 9 * MiB, sha: sha1(big) },
        { tag: 'last', length: 5, sha: sha1(small) },
      ]);
    });
  }

  it('a value that can never fit goes to failed/ at once with a clear error, and the jobs around it run', async () => {
    home = await tempHome();
    q = open(true);
    await q.spool('INSERT INTO blobs (tag, b) VALUES (?, ?)', ['before', Buffer.from('x')]);
    const huge = await q.spool('INSERT INTO blobs (tag, b) VALUES (?, ?)', ['huge', Buffer.alloc(17 * MiB, 1)]);
    await q.spool('INSERT INTO blobs (tag, b) VALUES (?, ?)', ['after', Buffer.from('y')]);
    const summary = await q.run();
    expect(summary).toMatchObject({ success: 2, sqlFailed: 1, connectionFailed: 0 });
    expect((await stored()).map((r) => r.tag)).toEqual(['before', 'after']);
    expect(await readdir(join(home, 'failed'))).toEqual([`failed-${huge}.batchsql`]);
    const record = decodeRecord(await readFile(join(home, 'failed', `failed-${huge}.batchsql`), 'utf8'));
    expect(record.lastError).toMatchObject({ class: 'sql', code: 'ER_NET_PACKET_TOO_LARGE' });
    expect(record.lastError?.message).toMatch(/^Expected the statement with its params to fit in the server's max_allowed_packet \(16777216 bytes\); it takes about \d+ bytes/);
  });
});

/** An INSERT of a tagged value written into the SQL text as a string literal (no params), as a dump has them. */
function insertText(tag: string, length: number): string {
  return `INSERT INTO blobs (tag, b) VALUES ('${tag}', '${'x'.repeat(length)}')`;
}

async function maxAllowedPacket(): Promise<number> {
  const [rows] = await t.db.query('SELECT @@max_allowed_packet AS packet');
  return Number((rows as Array<{ packet: unknown }>)[0]!.packet);
}

describe('SQL text over 1 MiB (limits.maxSqlBytes not set: max_allowed_packet bounds it)', () => {
  for (const ledger of [true, false] as const) {
    it(`a 1.5 MiB INSERT spooled between small jobs runs, in the same group commit or alone (ledger ${ledger ? 'on' : 'off'})`, async () => {
      home = await tempHome();
      q = open(ledger);
      await Promise.all([q.spool(insertText('first', 1)), q.spool(insertText('big', 1.5 * MiB)), q.spool(insertText('last', 1))]);
      expect(await q.run()).toMatchObject({ success: 3, sqlFailed: 0, connectionFailed: 0 });
      expect((await stored()).map((r) => [r.tag, r.length])).toEqual([['first', 1], ['big', 1.5 * MiB], ['last', 1]]);
    });
  }

  it('a 1.5 MiB INSERT dropped into spool/ as a plain .sql file runs', async () => {
    home = await tempHome();
    q = open(true);
    await q.status(); // makes the home
    await writeFile(join(home, 'spool', 'dump.sql'), `${insertText('dump', 1.5 * MiB)};\n`);
    expect(await q.run()).toMatchObject({ success: 1, sqlFailed: 0, invalid: 0, connectionFailed: 0 });
    expect((await stored()).map((r) => [r.tag, r.length])).toEqual([['dump', 1.5 * MiB]]);
    expect(await readdir(join(home, 'failed'))).toEqual([]);
  });

  for (const ledger of [true, false] as const) {
    it(`SQL text larger than the server's max_allowed_packet goes to failed/ as an SQL failure naming it, and the job after it runs (ledger ${ledger ? 'on' : 'off'})`, async () => {
      home = await tempHome();
      q = open(ledger);
      const max = await maxAllowedPacket();
      await q.spool(insertText('before', 1));
      const huge = await q.spool(insertText('huge', max + 1024));
      const captured = await q.spool(`SELECT '${'x'.repeat(max + 1024)}' AS v`, [], { captureResult: true });
      await q.spool(insertText('after', 1));
      expect(await q.run()).toMatchObject({ success: 2, sqlFailed: 2, connectionFailed: 0 });
      expect((await stored()).map((r) => r.tag)).toEqual(['before', 'after']);
      expect((await readdir(join(home, 'failed'))).sort()).toEqual([`failed-${huge}.batchsql`, `failed-${captured}.batchsql`].sort());
      for (const id of [huge, captured]) {
        const record = decodeRecord(await readFile(join(home, 'failed', `failed-${id}.batchsql`), 'utf8'));
        expect(record.lastError).toMatchObject({ class: 'sql', code: 'ER_NET_PACKET_TOO_LARGE' });
        expect(record.lastError?.message).toContain(`max_allowed_packet (${max} bytes)`);
      }
    });
  }
});
