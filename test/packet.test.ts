import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
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
