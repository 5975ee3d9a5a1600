import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '../../src/spool/id.js';
import { OutcomeLog, type Outcome } from '../../src/ops/outcomes.js';

let dir: string;
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const outcome = (id: string): Outcome => ({ id, status: 'succeeded', datasource: 'main', finishedAt: new Date().toISOString(), durationMs: 1, affectedRows: 1 });

async function linesIn(d: string): Promise<string[]> {
  const names = await readdir(d).catch(() => [] as string[]);
  const texts = await Promise.all(names.map((n) => readFile(join(d, n), 'utf8')));
  return texts.join('').split('\n').filter(Boolean);
}

describe('outcome record', () => {
  it('holds outcomes back (no write per job), and flush() writes every one, even one recorded during a write', async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'qb-outcomes-')), 'outcomes');
    const log = new OutcomeLog(dir, 3600_000);
    const ids = [newId(), newId(), newId()];
    for (const id of ids.slice(0, 2)) log.record(outcome(id));
    await new Promise((r) => setImmediate(r));
    expect(await linesIn(dir)).toEqual([]); // not written per job
    const first = log.flush(); // a write in progress
    log.record(outcome(ids[2]!));
    await first;
    await log.flush();
    expect((await linesIn(dir)).map((l) => (JSON.parse(l) as Outcome).id)).toEqual(ids);
    expect(await log.find(ids[2]!)).toMatchObject({ id: ids[2], status: 'succeeded' });
  });

  it('writes on its own soon after, without flush()', async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'qb-outcomes-')), 'outcomes');
    const log = new OutcomeLog(dir, 3600_000);
    const id = newId();
    log.record(outcome(id));
    const end = Date.now() + 5_000;
    while ((await linesIn(dir)).length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(await linesIn(dir)).toHaveLength(1);
  });
});
