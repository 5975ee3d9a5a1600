import { join } from 'node:path';
import fs from 'node:fs';
import { CONFIG_FILE_NAME, defaults } from '../config.js';
import { ensureLayout, layoutOf } from '../spool/layout.js';

/**
 * `querybatch init`: the home layout and a sample config. JSON has no comments, so the
 * sample carries them as keys starting with "//", which config.ts drops when it reads the
 * file (see docs/decisions.md).
 */
export function sampleConfig(url: string): string {
  const d = defaults();
  const config = {
    '//': 'querybatch configuration. Keys starting with // are comments. Every option is optional; the values shown under "// name" keys are the defaults (remove the // to change one). See README.md.',
    datasources: {
      '//': 'name: URL (sqlite:file.db in the home or sqlite:///absolute/file.db; mysql://user:password@host:3306/database or mariadb://…; postgres://user:password@host:5432/database or postgresql://…), or { "url": …, "options": { driver options: mysql2 or pg pool options, SQLite busyTimeoutMs } } with, each optional: "ledger" (true: exactly-once; false; { "table", "batch", "coalesce" (false: single-row INSERTs never merge) }), "init" (statements run on each new connection and after each session reset), "retry" ({ "maxAttempts": 5, "backoffMs": 100 } for deadlocks and lock wait timeouts; false), "strictOrder" (true: a refused statement blocks its datasource until its failed/ file is respooled or deleted), "webhook". Environment: QUERYBATCH_DATASOURCE_<NAME>=url wins over this file.',
      main: url,
    },
    '// defaultDatasource': 'main',
    '// maxConnectionAttempts': d.maxConnectionAttempts,
    '// durability': d.durability,
    '// dropInSettleMs': d.dropInSettleMs,
    '// limits': {
      '//': 'maxSqlBytes (largest SQL spool() and a .sql drop-in accept) is not set by default: SQL is then bounded by maxFileBytes, and by the server\'s max_allowed_packet when it runs (a statement that can\'t fit goes to failed/).',
      maxParamsBytes: d.limits.maxParamsBytes,
      maxFileBytes: d.limits.maxFileBytes,
      maxScriptBytes: d.limits.maxScriptBytes,
    },
    '// logs': d.logs,
    schedule: {
      '//': 'For `querybatch start`: cron (5 fields, or 6 with seconds first), timezone (IANA name, default the machine\'s), startDelayMs (first run after start), watch (drop-in watcher), runOnDrop (run soon after a drop-in), dropDebounceMs, continuous (run as soon as a job is spooled), keepLockMs (continuous mode keeps the drain lock this long after a run), stopTimeoutMs (give up waiting for the statement in flight on SIGTERM).',
      cron: d.schedule.cron,
      '// timezone': 'UTC',
      '// startDelayMs': d.schedule.startDelayMs,
      '// watch': d.schedule.watch,
      '// runOnDrop': d.schedule.runOnDrop,
      '// dropDebounceMs': d.schedule.dropDebounceMs,
      '// continuous': d.schedule.continuous,
      '// keepLockMs': d.schedule.keepLockMs,
      '// stopTimeoutMs': d.schedule.stopTimeoutMs,
    },
    '// dashboard': {
      '//': 'For `querybatch dashboard` and `start --http`: token (asked of every request as "Authorization: Bearer <token>", or ?token= once on a page; required to bind a host other than 127.0.0.1; or QUERYBATCH_DASHBOARD_TOKEN). docs/dashboard.md.',
      token: 'a-long-random-string',
    },
  };
  return JSON.stringify(config, null, 2) + '\n';
}

export interface InitResult {
  readonly home: string;
  readonly config: string;
  /** False when a config file was there already (it is left as it is). */
  readonly configWritten: boolean;
}

/** Creates spool/, failed/, logs/ and, unless one exists, querybatch.config.json (never overwritten). */
export async function initHome(home: string, url: string): Promise<InitResult> {
  const layout = layoutOf(home);
  await ensureLayout(layout);
  const config = join(home, CONFIG_FILE_NAME);
  try {
    await fs.promises.writeFile(config, sampleConfig(url), { flag: 'wx', mode: 0o600 }); // it may hold passwords
    return { home, config, configWritten: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return { home, config, configWritten: false };
    throw error;
  }
}
