import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import nodeFs from 'node:fs';
import fs from 'fs-extra';
import { QueryBatch, isQueryBatchError } from '../src/index.js';
import { idTime } from '../src/spool/id.js';
import { spoolPathFor } from '../src/spool/shards.js';
import { decodeRecord } from '../src/spool/record.js';
import { filesBelow, jobIdsBelow, removeHome, tempHome } from './helpers.js';

const URL_MAIN = 'mysql://root@127.0.0.1:3306/test';
let home: string;
let q: QueryBatch;

const jobFiles = filesBelow;

async function expectCode(promise: Promise<unknown>, code: string, fragment: string): Promise<void> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(isQueryBatchError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  expect((error as Error).message).toContain(fragment);
}

describe('spool()', () => {
  afterEach(async () => {
    vi.restoreAllMocks();
    await q.close();
    await removeHome(home);
  });

  it('writes a checksummed querybatch/1 file into its shard, 0600 in 0700 directories, and resolves with its id', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: URL_MAIN, other: URL_MAIN }, defaultDatasource: 'main' });
    const before = Date.now();
    const id = await q.spool('INSERT INTO t (a, b) VALUES (?, ?)', [1, 'x'], { datasource: 'other' });
    expect(idTime(id)).toBeGreaterThanOrEqual(before);
    const path = spoolPathFor(join(home, 'spool'), 'other', id);
    expect(path).toBe(join(home, 'spool', 'other', id.slice(0, 6), id.slice(6, 8) + id[10]!, `${id}.batchsql`));
    const text = await readFile(path, 'utf8');
    expect(decodeRecord(text)).toMatchObject({ format: 'querybatch/1', id, datasource: 'other', sql: 'INSERT INTO t (a, b) VALUES (?, ?)', params: [1, 'x'], attempts: 0 });
    expect(text).toMatch(/"checksum":"sha256:[0-9a-f]{64}"}\n$/);
    expect(text).not.toContain('root@'); // a datasource name, never credentials
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    for (let dir = dirname(path); dir !== home; dir = dirname(dir)) {
      expect((await stat(dir)).mode & 0o777, dir).toBe(0o700);
    }
    expect(await readdir(join(home, 'spool', '.tmp'))).toEqual([]);
  });

  it('rejects bad input with a typed error and writes nothing', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: URL_MAIN }, limits: { maxSqlBytes: 100, maxParamsBytes: 200 } });
    await expectCode(q.spool(''), 'EMPTY_SQL', 'Expected SQL to be a non-empty string; got an empty string');
    await expectCode(q.spool('   \n'), 'EMPTY_SQL', 'non-empty');
    await expectCode(q.spool(42 as unknown as string), 'EMPTY_SQL', 'got a number');
    await expectCode(q.spool('SELECT 1', [], { datasource: 'nope' }), 'UNKNOWN_DATASOURCE', 'Expected a configured datasource (main); got "nope"');
    await expectCode(q.spool('SELECT ?', [{ a: 1 } as never]), 'UNSERIALIZABLE_PARAM', 'params[0]');
    await expectCode(q.spool('SELECT ?', [undefined as never]), 'UNSERIALIZABLE_PARAM', 'got undefined');
    await expectCode(q.spool('SELECT ?', [Number.NaN]), 'UNSERIALIZABLE_PARAM', 'got NaN');
    await expectCode(q.spool('SELECT ?', [new Date('nope')]), 'UNSERIALIZABLE_PARAM', 'an invalid Date');
    await expectCode(q.spool('SELECT :a', { a: () => 1 } as never), 'UNSERIALIZABLE_PARAM', 'params.a');
    await expectCode(q.spool(`SELECT '${'x'.repeat(200)}'`), 'SQL_TOO_LARGE', 'at most 100 bytes (limits.maxSqlBytes); got 209 bytes');
    await expectCode(q.spool('SELECT ?', ['y'.repeat(300)]), 'PARAMS_TOO_LARGE', 'at most 200 bytes');
    expect(await jobFiles(join(home, 'spool'))).toEqual([]);
  });

  it('concurrent calls share segment files and directory fsyncs (group commit)', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: URL_MAIN } });
    const first = await q.spool('SELECT 0'); // make the shard directories
    // Small job files are created with fs.open; directories are opened for their fsync with fs.openSync (spool/durable.ts).
    const open = vi.spyOn(nodeFs, 'open');
    const openSync = vi.spyOn(nodeFs, 'openSync');
    const ids = await Promise.all(Array.from({ length: 64 }, (_, i) => q.spool('SELECT ?', [i])));
    expect(new Set(ids).size).toBe(64);
    const dirOpens = openSync.mock.calls.filter(([, flags]) => typeof flags === 'number' && (flags & fs.constants.O_DIRECTORY) !== 0).length;
    const fileOpens = open.mock.calls.length;
    // The first call is written alone; the 63 that waited meanwhile share a segment (two or
    // three if they straddle a leaf's second).
    expect(fileOpens).toBeGreaterThanOrEqual(2);
    expect(fileOpens).toBeLessThanOrEqual(4);
    expect(dirOpens).toBeGreaterThan(0);
    expect(dirOpens).toBeLessThanOrEqual(4);
    const files = await jobFiles(join(home, 'spool', 'main'));
    expect(files.length).toBe(fileOpens + 1);
    expect(files.some((f) => /\.\d+\.batchsql$/.test(f))).toBe(true);
    expect(await jobIdsBelow(join(home, 'spool', 'main'))).toEqual([first, ...ids].sort());
  });

  it('with durability "none" writes the same files without fsyncs', async () => {
    home = await tempHome();
    q = new QueryBatch({ home, configFile: false, datasources: { main: URL_MAIN }, durability: 'none' });
    await q.spool('SELECT 0');
    const openSync = vi.spyOn(nodeFs, 'openSync');
    await Promise.all(Array.from({ length: 16 }, (_, i) => q.spool('SELECT ?', [i])));
    expect(openSync.mock.calls.filter(([, flags]) => typeof flags === 'number' && (flags & fs.constants.O_DIRECTORY) !== 0)).toHaveLength(0);
    expect(await jobIdsBelow(join(home, 'spool', 'main'))).toHaveLength(17);
  });

  it('creates a home that does not exist yet (and its parents), as init does, and writes the job there', async () => {
    home = await tempHome();
    const missing = join(home, 'not', 'yet');
    q = new QueryBatch({ home: missing, configFile: false, datasources: { main: URL_MAIN } });
    const id = await q.spool('SELECT 1');
    expect((await stat(missing)).isDirectory()).toBe(true);
    expect(await jobIdsBelow(join(missing, 'spool', 'main'))).toEqual([id]);
  });

  it('fails with HOME_UNUSABLE when the home is a file, or under one', async () => {
    home = await tempHome();
    const file = join(home, 'a-file');
    await writeFile(file, '');
    q = new QueryBatch({ home: file, configFile: false, datasources: { main: URL_MAIN } });
    await expectCode(q.spool('SELECT 1'), 'HOME_UNUSABLE', 'to be a directory; found a file');
    await q.close();
    q = new QueryBatch({ home: join(file, 'home'), configFile: false, datasources: { main: URL_MAIN } });
    await expectCode(q.spool('SELECT 1'), 'HOME_UNUSABLE', 'to exist or to be creatable; found ENOTDIR');
  });
});

// A real full disk: a 256 KiB tmpfs (the tests run as root here, as in CI).
describe.skipIf(process.getuid?.() !== 0)('spool() on a full disk', () => {
  let mount: string;
  beforeAll(async () => {
    mount = await mkdtemp(join(tmpdir(), 'qb-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mount]);
  });
  afterAll(async () => {
    await q?.close();
    execFileSync('umount', [mount]);
    await rm(mount, { recursive: true, force: true });
  });

  it('rejects with SPOOL_WRITE_FAILED naming ENOSPC and leaves nothing in spool/', async () => {
    q = new QueryBatch({ home: mount, configFile: false, datasources: { main: URL_MAIN }, dropInSettleMs: 0 });
    const first = await q.spool('SELECT 1'); // the layout and a shard exist, the disk has room
    await writeFile(join(mount, 'spool', 'dropped.sql'), 'DO 1');
    // Fill the disk.
    const filler = join(mount, 'filler');
    await writeFile(filler, '');
    try {
      for (;;) await fs.promises.appendFile(filler, Buffer.alloc(16 * 1024));
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    const error = await q.spool('INSERT INTO t VALUES (?)', ['z'.repeat(64 * 1024)]).then(() => null, (e: unknown) => e);
    expect(isQueryBatchError(error, 'SPOOL_WRITE_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/ENOSPC/);
    expect((error as Error).message).toContain('nothing was spooled');
    const files = await jobFiles(join(mount, 'spool'));
    expect(files.sort()).toEqual([join(mount, 'spool', 'dropped.sql'), spoolPathFor(join(mount, 'spool'), 'main', first)].sort());
    expect(await readdir(join(mount, 'spool', '.tmp'))).toEqual([]);
    // A valid drop-in that can't be queued for want of space stays where it is, said so in the log.
    const stopped = new AbortController();
    stopped.abort();
    expect(await q.run({ signal: stopped.signal })).toMatchObject({ adopted: 0, invalid: 0, deferred: 2 });
    expect(await readdir(join(mount, 'spool'))).toContain('dropped.sql');
    expect(await readdir(join(mount, 'failed'))).toEqual([]);
    // Room again: spooling works again, and the drop-in is taken.
    await rm(filler);
    await expect(q.spool('SELECT 2')).resolves.toMatch(/^[0-9A-Z]{26}$/);
    expect(await q.run({ signal: stopped.signal })).toMatchObject({ adopted: 1 });
    expect(await readdir(join(mount, 'spool'))).not.toContain('dropped.sql');
    // Closing does not hang on a log file that hit the full disk.
    const closing = Date.now();
    await q.close();
    expect(Date.now() - closing).toBeLessThan(4_000);
  });
});
