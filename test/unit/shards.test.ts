import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import {
  BUCKET_PATTERN,
  LEAF_PATTERN,
  belongsInLeaf,
  compareNames,
  idOfFileName,
  isHidden,
  shardOf,
  spoolPathFor,
} from '../../src/spool/shards.js';
import { idAt, newId } from '../../src/spool/id.js';

const ID = '01JD7Z3K2M4N5P6Q7R8S9TVWXY';

describe('shardOf', () => {
  it('splits an id into bucket (6 characters) and leaf (next 2, then the 11th: the generation)', () => {
    expect(shardOf(ID)).toEqual(['01JD7Z', '3K4']);
  });

  it('gives a bucket and leaf matching their patterns', () => {
    for (let i = 0; i < 50; i++) {
      const [bucket, leaf] = shardOf(newId());
      expect(bucket).toMatch(BUCKET_PATTERN);
      expect(leaf).toMatch(LEAF_PATTERN);
    }
  });

  it('changes bucket every 2^20 ms and leaf every 2^10 ms', () => {
    const t = 2 ** 40; // aligned on a bucket boundary
    expect(shardOf(idAt(t))).toEqual(shardOf(idAt(t + 1023)));
    expect(shardOf(idAt(t + 1024))[0]).toBe(shardOf(idAt(t))[0]);
    expect(shardOf(idAt(t + 1024))[1]).not.toBe(shardOf(idAt(t))[1]);
    expect(shardOf(idAt(t + 2 ** 20 - 1))[0]).toBe(shardOf(idAt(t))[0]);
    expect(shardOf(idAt(t + 2 ** 20))[0]).not.toBe(shardOf(idAt(t))[0]);
  });
});

describe('spoolPathFor', () => {
  it('lays a job out as spool/<ds>/<id[0..6]>/<id[6..8]><id[10]>/<id>.batchsql', () => {
    expect(spoolPathFor('/home/qb/spool', 'main', ID)).toBe(`/home/qb/spool/main/01JD7Z/3K4/${ID}.batchsql`);
  });

  it('keeps datasources in trees of their own', () => {
    expect(spoolPathFor('/s', 'reporting-2', ID)).toBe(join('/s', 'reporting-2', '01JD7Z', '3K4', `${ID}.batchsql`));
    expect(spoolPathFor('/s', 'a', ID)).not.toBe(spoolPathFor('/s', 'b', ID));
  });

  it('works with a relative spool directory', () => {
    expect(spoolPathFor('spool', 'main', ID)).toBe(`spool/main/01JD7Z/3K4/${ID}.batchsql`);
  });

  it('matches the layout for freshly made ids', () => {
    for (let i = 0; i < 20; i++) {
      const id = newId();
      expect(spoolPathFor('/s', 'main', id)).toBe(`/s/main/${id.slice(0, 6)}/${id.slice(6, 8)}${id[10]!}/${id}.batchsql`);
    }
  });
});

describe('idOfFileName', () => {
  it('gives the id of <id>.batchsql', () => {
    expect(idOfFileName(`${ID}.batchsql`)).toBe(ID);
  });

  it.each([
    `${ID}.sql`,
    `${ID}.batchsql.tmp`,
    `${ID}.batchsqlx`,
    `${ID}`,
    `.${ID}.batchsql`,
    `failed-${ID}.batchsql`,
    `${ID.toLowerCase()}.batchsql`,
    `${ID.slice(0, 25)}.batchsql`,
    `${ID}0.batchsql`,
    `81JD7Z3K2M4N5P6Q7R8S9TVWXY.batchsql`,
    `01JD7Z3K2M4N5P6Q7R8S9TVWXU.batchsql`,
    `${ID}xbatchsql`,
    '.batchsql',
    '',
  ])('gives undefined for %j', (name) => {
    expect(idOfFileName(name)).toBeUndefined();
  });
});

describe('belongsInLeaf', () => {
  it('is true for a job file in its own leaf', () => {
    expect(belongsInLeaf(`${ID}.batchsql`, '01JD7Z', '3K4')).toBe(true);
  });

  it('is false in another leaf or bucket', () => {
    expect(belongsInLeaf(`${ID}.batchsql`, '01JD7Z', '3M4')).toBe(false);
    expect(belongsInLeaf(`${ID}.batchsql`, '01JD80', '3K4')).toBe(false);
    expect(belongsInLeaf(`${ID}.batchsql`, '01JD7Z', '3K5')).toBe(false);
    expect(belongsInLeaf(`${ID}.batchsql`, '01JD7Z', '3K')).toBe(false);
  });

  it('is only asked about shard names that match BUCKET_PATTERN and LEAF_PATTERN', () => {
    expect(BUCKET_PATTERN.test('01JD7Z')).toBe(true);
    expect(BUCKET_PATTERN.test('01JD7')).toBe(false);
    expect(BUCKET_PATTERN.test('01JD7Z3')).toBe(false);
    expect(BUCKET_PATTERN.test('81JD7Z')).toBe(false);
    expect(BUCKET_PATTERN.test('01jd7z')).toBe(false);
    expect(LEAF_PATTERN.test('3K0')).toBe(true);
    expect(LEAF_PATTERN.test('3KZ')).toBe(true);
    expect(LEAF_PATTERN.test('3K')).toBe(false);
    expect(LEAF_PATTERN.test('Z3K4')).toBe(false);
    expect(LEAF_PATTERN.test('3U0')).toBe(false);
    expect(LEAF_PATTERN.test('.t')).toBe(false);
  });

  it('is false for names that are not job files, even with the right prefix', () => {
    expect(belongsInLeaf(`${ID}.sql`, '01JD7Z', '3K4')).toBe(false);
    expect(belongsInLeaf(`${ID}.batchsql.tmp`, '01JD7Z', '3K4')).toBe(false);
    expect(belongsInLeaf(`01JD7Z3K-notes.batchsql`, '01JD7Z', '3K4')).toBe(false);
    expect(belongsInLeaf(`01JD7Z3K2M4-notes.batchsql`, '01JD7Z', '3K4')).toBe(false);
    expect(belongsInLeaf(`.${ID}.batchsql`, '01JD7Z', '3K4')).toBe(false);
  });

  it('is true for every fresh id in the shard spoolPathFor puts it in', () => {
    for (let i = 0; i < 20; i++) {
      const id = newId();
      const [bucket, leaf] = shardOf(id);
      expect(belongsInLeaf(`${id}.batchsql`, bucket, leaf)).toBe(true);
    }
  });
});

describe('isHidden and compareNames', () => {
  it('treats names starting with . as hidden', () => {
    expect(isHidden('.tmp')).toBe(true);
    expect(isHidden('.active')).toBe(true);
    expect(isHidden('.x.batchsql.swp')).toBe(true);
    expect(isHidden(`${ID}.batchsql`)).toBe(false);
    expect(isHidden('main')).toBe(false);
  });

  it('compares byte-wise, not by locale', () => {
    expect(compareNames('A', 'B')).toBe(-1);
    expect(compareNames('B', 'A')).toBe(1);
    expect(compareNames('A', 'A')).toBe(0);
    expect(compareNames('Z', 'a')).toBe(-1); // localeCompare would put 'a' first
    expect(compareNames('9', 'A')).toBe(-1);
    expect(['b', 'B', 'a', 'A', '1'].sort(compareNames)).toEqual(['1', 'A', 'B', 'a', 'b']);
  });

  it('sorts ids by time', () => {
    const ids = [idAt(3000), idAt(1000), idAt(2000)];
    expect([...ids].sort(compareNames)).toEqual([ids[1], ids[2], ids[0]]);
  });
});
