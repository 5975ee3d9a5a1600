import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import fs from 'fs-extra';
import { QueryBatchError } from '../errors.js';
import { requireJobId } from '../spool/id.js';
import { tagOf, untag } from '../spool/record.js';

/**
 * Results of background SELECTs (`captureResult`), stored as pages, as Halo's async queries
 * return them:
 *
 *   logs/results/<id>/result.json        the manifest: columns, total rows, one entry per page
 *   logs/results/<id>/page-000001.json   { page, firstRow, rowCount, columns, rows }
 *
 * Rows are streamed from the server and written a page at a time, so a result of any size
 * needs about one page of memory. A page holds rows up to about `pageBytes` of JSON and never
 * splits a row: a row larger than a page is a page of its own. Values JSON can't carry are
 * tagged as in spool files ({"$date"}, {"$bytes"}, {"$bigint"}). A capture is written into a
 * temporary directory and renamed into place when complete, so a reader never sees half a
 * result; results expire with `retentionMs`.
 */
export const DEFAULT_PAGE_BYTES = 1024 * 1024;

export interface PageInfo {
  readonly page: number;
  /** 1-based number of the page's first row in the whole result. */
  readonly firstRow: number;
  readonly lastRow: number;
  readonly rowCount: number;
  /** Size of the page's rows as JSON. */
  readonly bytes: number;
}

export interface ResultManifest {
  readonly id: string;
  readonly datasource: string;
  readonly columns: readonly string[];
  readonly totalRows: number;
  readonly pageBytes: number;
  readonly pages: readonly PageInfo[];
  readonly finishedAt: string;
}

export interface ResultPage {
  readonly page: number;
  readonly firstRow: number;
  readonly rowCount: number;
  readonly columns: readonly string[];
  readonly rows: readonly unknown[][];
}

type Cell = null | boolean | number | string | Date | Buffer | Uint8Array | bigint | object;

/** Dates, bytes and bigints as spool files tag them; everything else (JSON columns too) as it is. */
function encodeCell(value: Cell): unknown {
  return tagOf(value) ?? value;
}

function decodeCell(value: unknown): unknown {
  return untag(value) ?? value;
}

function pageName(n: number): string {
  return `page-${String(n).padStart(6, '0')}.json`;
}

/** Writes one captured result, page by page. */
export class ResultWriter {
  readonly #resultsDir: string;
  readonly #id: string;
  readonly #datasource: string;
  readonly #pageBytes: number;
  readonly #dir: string;
  readonly #pages: PageInfo[] = [];
  #columns: string[] = [];
  #rows: string[] = [];
  #bytes = 0;
  #total = 0;
  #ready: Promise<void> | null = null;

  constructor(resultsDir: string, id: string, datasource: string, pageBytes = DEFAULT_PAGE_BYTES) {
    this.#resultsDir = resultsDir;
    this.#id = id;
    this.#datasource = datasource;
    this.#pageBytes = pageBytes;
    this.#dir = join(resultsDir, `.tmp-${id}-${randomBytes(4).toString('hex')}`);
  }

  set columns(columns: string[]) {
    this.#columns = columns;
  }

  /** Adds a row; writes the page first when the row would not fit in it. */
  async add(row: readonly Cell[]): Promise<void> {
    const json = JSON.stringify(row.map(encodeCell));
    const size = Buffer.byteLength(json) + 1;
    if (this.#rows.length > 0 && this.#bytes + size > this.#pageBytes) await this.#flush();
    this.#rows.push(json);
    this.#bytes += size;
    this.#total++;
  }

  async #flush(): Promise<void> {
    this.#ready ??= fs.promises.mkdir(this.#dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    await this.#ready;
    const page = this.#pages.length + 1;
    const firstRow = this.#total - this.#rows.length + 1;
    const head = JSON.stringify({ page, firstRow, rowCount: this.#rows.length, columns: this.#columns });
    await fs.promises.writeFile(join(this.#dir, pageName(page)), `${head.slice(0, -1)},"rows":[\n${this.#rows.join(',\n')}\n]}\n`, { mode: 0o600 });
    this.#pages.push({ page, firstRow, lastRow: this.#total, rowCount: this.#rows.length, bytes: this.#bytes });
    this.#rows = [];
    this.#bytes = 0;
  }

  /** Writes the last page and the manifest, then puts the result in place (replacing an older one). */
  async finish(): Promise<ResultManifest> {
    if (this.#rows.length > 0 || this.#pages.length === 0) await this.#flush();
    const manifest: ResultManifest = {
      id: this.#id,
      datasource: this.#datasource,
      columns: this.#columns,
      totalRows: this.#total,
      pageBytes: this.#pageBytes,
      pages: this.#pages,
      finishedAt: new Date().toISOString(),
    };
    await fs.promises.writeFile(join(this.#dir, 'result.json'), JSON.stringify(manifest, null, 1) + '\n', { mode: 0o600 });
    const target = join(this.#resultsDir, this.#id);
    await fs.promises.rm(target, { recursive: true, force: true });
    await fs.promises.rename(this.#dir, target);
    return manifest;
  }

  /** Removes what was written (the capture failed). */
  async abort(): Promise<void> {
    await fs.promises.rm(this.#dir, { recursive: true, force: true });
  }
}

function notFound(id: string, what: string): QueryBatchError {
  return new QueryBatchError('RESULT_NOT_FOUND', `Expected a captured result for job ${id}; ${what}`);
}

/** A job's manifest. Throws INVALID_ID, or RESULT_NOT_FOUND (never captured, not finished, or expired). */
export async function readManifest(resultsDir: string, id: string, retentionMs: number, now = Date.now()): Promise<ResultManifest> {
  requireJobId(id);
  let manifest: ResultManifest;
  try {
    manifest = JSON.parse(await fs.promises.readFile(join(resultsDir, id, 'result.json'), 'utf8')) as ResultManifest;
  } catch {
    throw notFound(id, 'found none (not spooled with captureResult, not run yet, failed, or expired)');
  }
  if (now - Date.parse(manifest.finishedAt) > retentionMs) throw notFound(id, `it expired (finished ${manifest.finishedAt}, retentionMs ${retentionMs})`);
  return manifest;
}

/** One page of a job's result, values decoded. Throws RESULT_NOT_FOUND for a page out of range. */
export async function readPage(resultsDir: string, id: string, page: number, retentionMs: number): Promise<ResultPage> {
  const manifest = await readManifest(resultsDir, id, retentionMs);
  if (!Number.isSafeInteger(page) || page < 1 || page > manifest.pages.length) {
    throw new QueryBatchError('RESULT_NOT_FOUND', `Expected a page from 1 to ${manifest.pages.length} of job ${id}'s result; got ${page}`);
  }
  const data = JSON.parse(await fs.promises.readFile(join(resultsDir, id, pageName(page)), 'utf8')) as ResultPage;
  return { ...data, rows: data.rows.map((row) => row.map(decodeCell)) };
}

/** Removes results older than `retentionMs` (and temporary directories a crash left behind). */
export async function pruneResults(resultsDir: string, retentionMs: number, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const name of await fs.promises.readdir(resultsDir).catch(() => [] as string[])) {
    const dir = join(resultsDir, name);
    try {
      const { mtimeMs } = await fs.promises.stat(name.startsWith('.tmp-') ? dir : join(dir, 'result.json'));
      if (now - mtimeMs > (name.startsWith('.tmp-') ? Math.max(retentionMs, 3_600_000) : retentionMs)) {
        await fs.promises.rm(dir, { recursive: true, force: true });
        removed++;
      }
    } catch {
      // gone meanwhile, or not a result
    }
  }
  return removed;
}
