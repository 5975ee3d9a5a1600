import { readFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { createRequire } from 'node:module';
import type cron from 'node-cron';
import { QueryBatchError, describeValue } from './errors.js';
import type { DatasourceOptions, QueryBatchOptions, ResolvedConfig, ResolvedDatasource } from './interfaces.js';
import { isDatasourceName } from './spool/record.js';
import { driverFactoryFor, exampleUrls, findDriverFactory } from './db/registry.js';
import { redactUrl } from './db/url.js';

/** The URL with its password hidden, for messages and logs (db/url.ts). */
export { redactUrl };

export const CONFIG_FILE_NAME = 'querybatch.config.json';

/** Every default, in one place. */
export function defaults(): Omit<ResolvedConfig, 'home' | 'datasources' | 'defaultDatasource'> & { schedule: ResolvedConfig['schedule']; datasource: Pick<ResolvedDatasource, 'retry'> } {
  return {
    /** Each datasource's, unless it sets its own. */
    datasource: { retry: { maxAttempts: 5, backoffMs: 100 } },
    maxConnectionAttempts: 3,
    durability: 'fsync',
    dropInSettleMs: 1000,
    tmpMaxAgeMs: 60 * 60 * 1000,
    limits: { maxSqlBytes: null, maxParamsBytes: 16 * 1024 * 1024, maxFileBytes: 32 * 1024 * 1024, maxScriptBytes: 256 * 1024 * 1024 },
    logs: { maxSize: 10 * 1024 * 1024, maxFiles: 5, logParams: false },
    schedule: {
      cron: '*/5 * * * *',
      timezone: null,
      startDelayMs: 10_000,
      watch: true,
      runOnDrop: false,
      dropDebounceMs: 200,
      continuous: false,
      keepLockMs: 1000,
      stopTimeoutMs: 30_000,
    },
    timeoutMs: 5 * 60 * 1000,
    retentionMs: 24 * 60 * 60 * 1000,
    keyRetentionMs: 24 * 60 * 60 * 1000,
    webhooks: { secret: null, maxAttempts: 5, backoffMs: 1000, timeoutMs: 10_000, concurrency: 4, maxQueued: 10_000, closeWaitMs: 30_000 },
    dashboard: { token: null },
  };
}

function configError(message: string): QueryBatchError {
  return new QueryBatchError('CONFIG_INVALID', message);
}

const KNOWN_KEYS = new Set([
  'home', 'datasources', 'defaultDatasource', 'maxConnectionAttempts', 'durability', 'dropInSettleMs', 'tmpMaxAgeMs', 'limits', 'logs', 'schedule', 'configFile',
  'timeoutMs', 'retentionMs', 'keyRetentionMs', 'webhooks', 'dashboard',
]);

/**
 * JSON has no comments: in a config file, keys starting with "//" (at any depth) are
 * comments and are dropped before the options are read (`querybatch init` writes them).
 */
export function stripComments(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripComments);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!key.startsWith('//')) out[key] = stripComments(v);
  }
  return out;
}

/** Reads a config file; a missing file is `{}` unless `required`. Throws CONFIG_INVALID. */
export function readConfigFile(path: string, required = false): QueryBatchOptions {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // No file (or no home directory to hold one): nothing to read; a bad home is reported by the layout check.
    if ((code === 'ENOENT' || code === 'ENOTDIR') && !required) return {};
    throw configError(`Expected a readable config file at ${path}; found ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw configError(`Expected ${path} to be JSON; ${(error as Error).message}`);
  }
  data = stripComments(data);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw configError(`Expected ${path} to hold a JSON object; found ${describeValue(data)}`);
  }
  for (const key of Object.keys(data)) {
    if (!KNOWN_KEYS.has(key)) throw configError(`Unknown option ${JSON.stringify(key)} in ${path}; expected one of ${[...KNOWN_KEYS].join(', ')}`);
  }
  return data;
}

/**
 * Options from the environment: QUERYBATCH_HOME and QUERYBATCH_DATASOURCE_<NAME>=url.
 * NAME matches a datasource in `known` case-insensitively, else it is used lower-cased.
 */
export function environmentOptions(env: NodeJS.ProcessEnv, known: readonly string[] = []): QueryBatchOptions {
  const datasources: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    const match = /^QUERYBATCH_DATASOURCE_(.+)$/i.exec(key);
    if (!match || value === undefined || value === '') continue;
    const raw = match[1]!;
    const name = known.find((k) => k.toLowerCase() === raw.toLowerCase()) ?? raw.toLowerCase();
    datasources[name] = value;
  }
  return {
    ...(env.QUERYBATCH_HOME ? { home: env.QUERYBATCH_HOME } : {}),
    ...(env.QUERYBATCH_WEBHOOK_SECRET ? { webhooks: { secret: env.QUERYBATCH_WEBHOOK_SECRET } } : {}),
    ...(env.QUERYBATCH_DASHBOARD_TOKEN ? { dashboard: { token: env.QUERYBATCH_DASHBOARD_TOKEN } } : {}),
    ...(Object.keys(datasources).length > 0 ? { datasources } : {}),
  };
}

/** Later layers win; datasources, limits and logs merge by key. */
export function mergeOptions(...layers: QueryBatchOptions[]): QueryBatchOptions {
  let out: QueryBatchOptions = {};
  for (const layer of layers) {
    out = {
      ...out,
      ...layer,
      datasources: { ...out.datasources, ...layer.datasources },
      limits: { ...out.limits, ...layer.limits },
      logs: { ...out.logs, ...layer.logs },
      schedule: { ...out.schedule, ...layer.schedule },
      webhooks: { ...out.webhooks, ...layer.webhooks },
      dashboard: { ...out.dashboard, ...layer.dashboard },
    };
  }
  return out;
}

function wholeNumber(value: unknown, name: string, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    const shown = typeof value === 'number' ? String(value) : JSON.stringify(value) ?? describeValue(value);
    throw configError(`Expected \`${name}\` to be a whole number >= ${min}; got ${shown}`);
  }
  return value;
}

/** Checks a datasource URL. Throws INVALID_DATASOURCE_URL. Returns the URL with the password hidden, for messages. */
export function checkDatasourceUrl(name: string, url: unknown): string {
  checkDatasource(name, url, undefined);
  return redactUrl(url as string);
}

/**
 * Checks a datasource's URL and driver options through the driver its URL's scheme picks
 * (db/registry.ts). Throws INVALID_DATASOURCE_URL or CONFIG_INVALID; returns the options as
 * the driver takes them.
 */
function checkDatasource(name: string, url: unknown, options: unknown): Record<string, unknown> {
  if (typeof url !== 'string' || url === '') {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${name}" to have a url like ${exampleUrls()}; got ${describeValue(url)}`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    const example = findDriverFactory(url)?.example ?? exampleUrls();
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${name}" url to look like ${example}; got ${JSON.stringify(redactUrl(url))}`);
  }
  return driverFactoryFor(url, name).check(name, parsed, options);
}

/** A typo'd option is an error, not silently a default. */
function onlyKeys(value: object, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw configError(`Unknown option ${JSON.stringify(key)} in ${what}; expected ${allowed.join(', ')}`);
  }
}

function optionGroup(value: unknown, what: string, allowed: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw configError(`Expected \`${what}\` to be an object; got ${describeValue(value)}`);
  onlyKeys(value, allowed, `\`${what}\``);
  return value as Record<string, unknown>;
}

/** Checks a webhook URL (http or https). Throws INVALID_WEBHOOK_URL. */
export function checkWebhookUrl(url: unknown, what: string): string {
  let parsed: URL | null = null;
  try {
    parsed = typeof url === 'string' ? new URL(url) : null;
  } catch {
    // reported below
  }
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new QueryBatchError('INVALID_WEBHOOK_URL', `Expected ${what} to be an http:// or https:// URL; got ${typeof url === 'string' ? JSON.stringify(redactUrl(url)) : describeValue(url)}`);
  }
  return url as string;
}

/** The ledger table's default name. */
export const DEFAULT_LEDGER_TABLE = 'querybatch_ledger';
/** Jobs per ledger transaction (group commit) by default. */
export const DEFAULT_LEDGER_BATCH = 32;

const TABLE_NAME = /^[A-Za-z0-9_$]{1,64}(\.[A-Za-z0-9_$]{1,64})?$/;

function resolveLedger(name: string, value: unknown): { table: string; batch: number; coalesce: boolean } | null {
  if (value === undefined || value === true) return { table: DEFAULT_LEDGER_TABLE, batch: DEFAULT_LEDGER_BATCH, coalesce: true };
  if (value === false) return null;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw configError(`Expected datasource "${name}" ledger to be true, false or { "table": "name" }; got ${describeValue(value)}`);
  }
  onlyKeys(value, ['table', 'batch', 'coalesce'], `datasource "${name}" ledger`);
  const table = (value as { table?: unknown }).table ?? DEFAULT_LEDGER_TABLE;
  if (typeof table !== 'string' || !TABLE_NAME.test(table)) {
    throw configError(`Expected datasource "${name}" ledger.table to be a table name like querybatch_ledger or db.querybatch_ledger (letters, digits, _ and $); got ${JSON.stringify(table)}`);
  }
  const coalesce = (value as { coalesce?: unknown }).coalesce ?? true;
  if (typeof coalesce !== 'boolean') throw configError(`Expected datasources.${name}.ledger.coalesce to be true or false; got ${describeValue(coalesce)}`);
  return { table, batch: wholeNumber((value as { batch?: unknown }).batch, `datasources.${name}.ledger.batch`, 1, DEFAULT_LEDGER_BATCH), coalesce };
}

/** A datasource's `retry`: false (or true: the defaults), or { maxAttempts, backoffMs }. */
function resolveRetry(name: string, value: unknown): ResolvedDatasource['retry'] {
  const base = defaults().datasource.retry;
  if (value === undefined || value === true) return base;
  if (value === false) return { maxAttempts: 1, backoffMs: 0 };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw configError(`Expected datasource "${name}" retry to be false or { "maxAttempts": 5, "backoffMs": 100 }; got ${describeValue(value)}`);
  }
  onlyKeys(value, ['maxAttempts', 'backoffMs'], `datasource "${name}" retry`);
  const { maxAttempts, backoffMs } = value as { maxAttempts?: unknown; backoffMs?: unknown };
  return {
    maxAttempts: wholeNumber(maxAttempts, `datasources.${name}.retry.maxAttempts`, 1, base.maxAttempts),
    backoffMs: wholeNumber(backoffMs, `datasources.${name}.retry.backoffMs`, 0, base.backoffMs),
  };
}

function resolveDatasource(name: string, value: DatasourceOptions | string | undefined): ResolvedDatasource {
  if (!isDatasourceName(name)) {
    throw configError(`Expected datasource names of letters, digits, _ and - (at most 64, not starting with -, not a JavaScript object property like "constructor"); got ${JSON.stringify(name)}`);
  }
  const spec = typeof value === 'string' ? { url: value } : value;
  if (spec === undefined || spec === null || typeof spec !== 'object') {
    throw configError(`Expected datasource "${name}" to be a URL string or { "url": ... }; got ${describeValue(spec)}`);
  }
  onlyKeys(spec, ['url', 'options', 'webhook', 'ledger', 'init', 'retry', 'strictOrder'], `datasource "${name}"`);
  const options = checkDatasource(name, spec.url, spec.options);
  const webhook = spec.webhook === undefined ? null : checkWebhookUrl(spec.webhook, `datasource "${name}" webhook`);
  const strictOrder = (spec as { strictOrder?: unknown }).strictOrder ?? false;
  if (typeof strictOrder !== 'boolean') throw configError(`Expected datasource "${name}" strictOrder to be true or false; got ${JSON.stringify(strictOrder) ?? describeValue(strictOrder)}`);
  return { url: spec.url, options, webhook, init: resolveInit(name, spec.init), ledger: resolveLedger(name, spec.ledger), retry: resolveRetry(name, spec.retry), strictOrder };
}

/** A datasource's init statements: a list of non-empty SQL strings. */
function resolveInit(name: string, value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw configError(`Expected datasource "${name}" init to be a list of SQL statements; got ${describeValue(value)}`);
  value.forEach((statement: unknown, k) => {
    if (typeof statement !== 'string' || statement.trim() === '') {
      throw configError(`Expected datasource "${name}" init[${k}] to be an SQL statement (a non-empty string); got ${typeof statement === 'string' ? JSON.stringify(statement) : describeValue(statement)}`);
    }
  });
  return [...(value as string[])];
}

/**
 * User options into a complete config. Reads `<home>/querybatch.config.json` first unless
 * `configFile` is false or names another file; the given options win over the file.
 */
export function resolveConfig(options: QueryBatchOptions = {}): ResolvedConfig {
  const home = resolve(options.home ?? process.cwd());
  const fromFile = options.configFile === false
    ? {}
    : readConfigFile(options.configFile ? resolve(options.configFile) : join(home, CONFIG_FILE_NAME), Boolean(options.configFile));
  const merged = mergeOptions(fromFile, options);
  const base = defaults();

  const datasources: Record<string, ResolvedDatasource> = Object.create(null) as Record<string, never>;
  for (const [name, value] of Object.entries(merged.datasources ?? {})) datasources[name] = resolveDatasource(name, value);
  const names = Object.keys(datasources);
  const defaultDatasource = merged.defaultDatasource ?? (names.length === 1 ? names[0]! : 'main');
  if (merged.defaultDatasource !== undefined && !Object.hasOwn(datasources, merged.defaultDatasource)) {
    throw new QueryBatchError('UNKNOWN_DATASOURCE', `Expected defaultDatasource to be one of the configured datasources (${names.join(', ') || 'none'}); got ${JSON.stringify(merged.defaultDatasource)}`);
  }
  const durability = merged.durability ?? base.durability;
  if (durability !== 'fsync' && durability !== 'none') {
    throw configError(`Expected \`durability\` to be "fsync" or "none"; got ${JSON.stringify(durability)}`);
  }
  const limits = optionGroup(merged.limits, 'limits', ['maxSqlBytes', 'maxParamsBytes', 'maxFileBytes', 'maxScriptBytes']);
  const logs = optionGroup(merged.logs, 'logs', ['maxSize', 'maxFiles', 'logParams']);
  const webhooks = optionGroup(merged.webhooks, 'webhooks', ['secret', 'maxAttempts', 'backoffMs', 'timeoutMs', 'concurrency', 'maxQueued', 'closeWaitMs']);
  if (webhooks.secret !== undefined && (typeof webhooks.secret !== 'string' || webhooks.secret === '')) {
    throw configError(`Expected \`webhooks.secret\` to be a non-empty string; got ${describeValue(webhooks.secret)}`);
  }
  const dashboard = optionGroup(merged.dashboard, 'dashboard', ['token']);
  if (dashboard.token !== undefined && (typeof dashboard.token !== 'string' || dashboard.token === '')) {
    throw configError(`Expected \`dashboard.token\` to be a non-empty string; got ${describeValue(dashboard.token)}`);
  }
  if (logs.logParams !== undefined && typeof logs.logParams !== 'boolean') {
    throw configError(`Expected \`logs.logParams\` to be true or false; got ${JSON.stringify(logs.logParams)}`);
  }
  const schedule = optionGroup(merged.schedule, 'schedule', Object.keys(base.schedule));
  const retentionMs = wholeNumber(merged.retentionMs, 'retentionMs', 0, base.retentionMs);
  return {
    home,
    datasources,
    defaultDatasource,
    maxConnectionAttempts: wholeNumber(merged.maxConnectionAttempts, 'maxConnectionAttempts', 1, base.maxConnectionAttempts),
    durability,
    dropInSettleMs: wholeNumber(merged.dropInSettleMs, 'dropInSettleMs', 0, base.dropInSettleMs),
    tmpMaxAgeMs: wholeNumber(merged.tmpMaxAgeMs, 'tmpMaxAgeMs', 0, base.tmpMaxAgeMs),
    limits: {
      maxSqlBytes: limits.maxSqlBytes === undefined ? base.limits.maxSqlBytes : wholeNumber(limits.maxSqlBytes, 'limits.maxSqlBytes', 1, 0),
      maxParamsBytes: wholeNumber(limits.maxParamsBytes, 'limits.maxParamsBytes', 2, base.limits.maxParamsBytes),
      maxFileBytes: wholeNumber(limits.maxFileBytes, 'limits.maxFileBytes', 64, base.limits.maxFileBytes),
      maxScriptBytes: wholeNumber(limits.maxScriptBytes, 'limits.maxScriptBytes', 1, base.limits.maxScriptBytes),
    },
    logs: {
      maxSize: wholeNumber(logs.maxSize, 'logs.maxSize', 1024, base.logs.maxSize),
      maxFiles: wholeNumber(logs.maxFiles, 'logs.maxFiles', 1, base.logs.maxFiles),
      logParams: logs.logParams ?? base.logs.logParams,
    },
    schedule: {
      cron: schedule.cron === undefined ? base.schedule.cron : checkCron(schedule.cron, 'schedule.cron'),
      timezone: schedule.timezone === undefined || schedule.timezone === null ? null : checkTimezone(schedule.timezone),
      startDelayMs: wholeNumber(schedule.startDelayMs, 'schedule.startDelayMs', 0, base.schedule.startDelayMs),
      watch: flag(schedule.watch, 'schedule.watch', base.schedule.watch),
      runOnDrop: flag(schedule.runOnDrop, 'schedule.runOnDrop', base.schedule.runOnDrop),
      dropDebounceMs: wholeNumber(schedule.dropDebounceMs, 'schedule.dropDebounceMs', 0, base.schedule.dropDebounceMs),
      continuous: flag(schedule.continuous, 'schedule.continuous', base.schedule.continuous),
      keepLockMs: wholeNumber(schedule.keepLockMs, 'schedule.keepLockMs', 0, base.schedule.keepLockMs),
      stopTimeoutMs: wholeNumber(schedule.stopTimeoutMs, 'schedule.stopTimeoutMs', 1, base.schedule.stopTimeoutMs),
    },
    timeoutMs: wholeNumber(merged.timeoutMs, 'timeoutMs', 0, base.timeoutMs),
    retentionMs,
    keyRetentionMs: keyRetentionOf(merged.keyRetentionMs, retentionMs, base.keyRetentionMs, datasources),
    webhooks: {
      secret: webhooks.secret ?? base.webhooks.secret,
      maxAttempts: wholeNumber(webhooks.maxAttempts, 'webhooks.maxAttempts', 1, base.webhooks.maxAttempts),
      backoffMs: wholeNumber(webhooks.backoffMs, 'webhooks.backoffMs', 0, base.webhooks.backoffMs),
      timeoutMs: wholeNumber(webhooks.timeoutMs, 'webhooks.timeoutMs', 1, base.webhooks.timeoutMs),
      concurrency: wholeNumber(webhooks.concurrency, 'webhooks.concurrency', 1, base.webhooks.concurrency),
      maxQueued: wholeNumber(webhooks.maxQueued, 'webhooks.maxQueued', 1, base.webhooks.maxQueued),
      closeWaitMs: wholeNumber(webhooks.closeWaitMs, 'webhooks.closeWaitMs', 0, base.webhooks.closeWaitMs),
    },
    dashboard: { token: dashboard.token ?? base.dashboard.token },
  };
}

/**
 * How long an idempotency key stays taken after its job succeeded (spool/keys.ts). Without
 * the ledger, the runner's outcome record (kept `retentionMs`) is what tells when a job
 * finished, so the key can't be kept longer: unset, it is 24 h or `retentionMs` when that
 * is shorter; set longer than `retentionMs`, it is refused. When every datasource has the
 * ledger, the ledger remembers keyed jobs (db/driver.ts keyLedgerId) for keyRetentionMs
 * itself: it may be longer, and unset it is 24 h. Throws CONFIG_INVALID.
 */
function keyRetentionOf(value: unknown, retentionMs: number, fallback: number, datasources: Readonly<Record<string, { readonly ledger: unknown }>>): number {
  const withoutLedger = Object.entries(datasources).filter(([, ds]) => ds.ledger === null).map(([name]) => name);
  if (value === undefined) return withoutLedger.length === 0 ? fallback : Math.min(fallback, retentionMs);
  const ms = wholeNumber(value, 'keyRetentionMs', 0, fallback);
  if (ms > retentionMs && withoutLedger.length > 0) {
    throw configError(`Expected \`keyRetentionMs\` to be at most \`retentionMs\` (${retentionMs}: how long finished jobs are remembered, which is what tells a key's job finished) while a datasource has no ledger (${withoutLedger.map((n) => JSON.stringify(n)).join(', ')}); got ${ms}`);
  }
  return ms;
}

function flag(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw configError(`Expected \`${name}\` to be true or false; got ${JSON.stringify(value) ?? describeValue(value)}`);
  return value;
}

/**
 * node-cron's validate(), loaded (synchronously: config is resolved synchronously) the first
 * time a cron expression other than the default is checked: a command that starts no
 * schedule (`querybatch status`) does not load node-cron for the sample config's default.
 */
let cronValidate: ((expression: string) => boolean) | undefined;
function validCron(expression: string): boolean {
  if (expression === defaults().schedule.cron) return true;
  cronValidate ??= (createRequire(import.meta.url)('node-cron') as typeof cron).validate;
  return cronValidate(expression);
}

/** A cron expression node-cron accepts (5 fields, or 6 with seconds first). Throws CONFIG_INVALID. */
export function checkCron(value: unknown, name: string): string {
  if (typeof value !== 'string' || !validCron(value)) {
    throw configError(`Expected \`${name}\` to be a cron expression like "*/5 * * * *" (minute hour day month weekday, optionally a seconds field first); got ${JSON.stringify(value) ?? describeValue(value)}`);
  }
  return value;
}

/** An IANA time zone name. Throws CONFIG_INVALID. */
export function checkTimezone(value: unknown): string {
  if (typeof value === 'string' && value !== '') {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: value });
      return value;
    } catch {
      // reported below
    }
  }
  throw configError(`Expected \`schedule.timezone\` to be an IANA time zone like "Europe/Berlin" or "UTC"; got ${JSON.stringify(value) ?? describeValue(value)}`);
}
