import { afterEach, describe, expect, it } from 'vitest';
import { access, mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { QueryBatch } from '../src/index.js';
import { spoolPathFor } from '../src/spool/shards.js';
import { count, removeHome, tempHome, useTestDatabase } from './helpers.js';

/** RunOptions.upkeep: false (continuous mode's runs) on MariaDB. */
const t = useTestDatabase('latency_upkeep');
let home: string;
let q: QueryBatch | undefined;

afterEach(async () => {
  await q?.close();
  q = undefined;
  await removeHome(home);
});

const exists = (path: string) => access(path).then(() => true, () => false);

describe('a run without upkeep (continuous mode)', () => {
  it('still gives back a dead runner\'s claim and runs it; leaves the drop-in and the ledger rows to the next full run', async () => {
    home = await tempHome();
    await t.db.query('CREATE TABLE latency_upkeep (n INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)');
    q = new QueryBatch({ home, configFile: false, dropInSettleMs: 0, datasources: { main: t.url } });
    await q.spool('INSERT INTO latency_upkeep (v) VALUES (?)', [1]);
    expect(await q.run()).toMatchObject({ success: 1 }); // the ledger table now exists
    const spoolId = (await readFile(join(home, 'spool', '.id'), 'utf8')).trim();
    const ledgerRows = () => count(t.db, 'SELECT COUNT(*) AS c FROM querybatch_ledger WHERE spool = ?', [spoolId]);
    expect(await ledgerRows()).toBe(0);

    // A dead runner of this host (a pid that is not running) holds job 2's claim.
    const dead = await q.spool('INSERT INTO latency_upkeep (v) VALUES (?)', [2]);
    const claimDir = join(home, 'spool', '.active', `${hostname()}.4194303.1000`, 'main');
    await mkdir(claimDir, { recursive: true });
    await rename(spoolPathFor(join(home, 'spool'), 'main', dead), join(claimDir, `${dead}.batchsql`));
    await q.spool('INSERT INTO latency_upkeep (v) VALUES (?)', [3]);
    const dropIn = join(home, 'spool', 'latency-drop.sql');
    await writeFile(dropIn, 'INSERT INTO latency_upkeep (v) VALUES (4)');

    expect(await q.run({ upkeep: false })).toMatchObject({ recovered: 1, success: 2, adopted: 0, sqlFailed: 0 });
    expect(await readdir(join(home, 'spool', '.active'))).toEqual([]);
    expect(await exists(dropIn)).toBe(true); // not adopted
    expect(await ledgerRows()).toBe(2); // not pruned

    expect(await q.run()).toMatchObject({ adopted: 1, success: 1 });
    expect(await exists(dropIn)).toBe(false);
    expect(await ledgerRows()).toBe(0);
    const [rows] = await t.db.query('SELECT v FROM latency_upkeep ORDER BY n');
    expect((rows as Array<{ v: number }>).map((r) => r.v)).toEqual([1, 2, 3, 4]);
  });
});
