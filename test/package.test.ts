import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** This package; its dist/ is what `npm run build` made (as for the CLI tests). */
const REPO = join(import.meta.dirname, '..');

/** Runs `code` with `node -e` in a fresh project whose node_modules/querybatch is this package (the built dist/). */
async function runInConsumer(code: string, inputType: 'commonjs' | 'module'): Promise<{ stdout: string; stderr: string }> {
  const project = await mkdtemp(join(tmpdir(), 'qb-consumer-'));
  try {
    await mkdir(join(project, 'node_modules'));
    await symlink(REPO, join(project, 'node_modules', 'querybatch'), 'dir');
    return await promisify(execFile)(process.execPath, [`--input-type=${inputType}`, '-e', code], { cwd: project });
  } finally {
    await rm(project, { recursive: true, force: true });
  }
}

describe('the package as a dependency', () => {
  it("loads with require('querybatch') (the ESM build, through Node's require of ES modules)", async () => {
    const { stdout } = await runInConsumer("const { QueryBatch, isQueryBatchError } = require('querybatch'); console.log(QueryBatch.name, typeof isQueryBatchError);", 'commonjs');
    expect(stdout).toBe('QueryBatch function\n'); // stderr may carry Node 20's ExperimentalWarning
  });

  it("loads with import from 'querybatch', the same classes as require's", async () => {
    const code = "import { QueryBatch } from 'querybatch'; import { createRequire } from 'node:module'; " +
      "const required = createRequire(process.cwd() + '/')('querybatch'); console.log(QueryBatch.name, required.QueryBatch === QueryBatch);";
    const { stdout } = await runInConsumer(code, 'module');
    expect(stdout).toBe('QueryBatch true\n');
  });
});
