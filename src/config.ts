import { readFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import type { PoolOptions } from 'mysql2';
import { QueryBatchError, describeValue } from './errors.js';
import type { DatasourceOptions, QueryBatchOptions, ResolvedConfig } from './interfaces.js';
import { isDatasourceName } from './spool-file.js';

export const CONFIG_FILE_NAME = 'querybatch.config.json';

/** Every default, in one place. */
export function defaults(): Omit<ResolvedConfig, 'home' | 'datasources' | 'defaultDatasource'> {
  return {
    maxConnectionAttempts: 3,
    durability: 'fsync',
    dropInSettleMs: 1000,
    limits: { maxSqlBytes: 1024 * 1024, maxParamsBytes: 16 * 1024 * 1024, maxFileBytes: 32 * 1024 * 1024 },
    logs: { maxSize: 10 * 1024 * 1024, maxFiles: 5, logParams: false },
  };
}

function configError(message: string): QueryBatchError {
  return new QueryBatchError('CONFIG_INVALID', message);
}

const KNOWN_KEYS = new Set([
  'home', 'datasources', 'defaultDatasource', 'maxConnectionAttempts', 'durability', 'dropInSettleMs', 'limits', 'logs', 'configFile',
]);

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
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw configError(`Expected ${path} to hold a JSON object; found ${describeValue(data)}`);
  }
  for (const key of Object.keys(data)) {
    if (!KNOWN_KEYS.has(key)) throw configError(`Unknown option ${JSON.stringify(key)} in ${path}; expected one of ${[...KNOWN_KEYS].join(', ')}`);
  }
  return data as QueryBatchOptions;
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
  if (typeof url !== 'string' || url === '') {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${name}" to have a url like mysql://user@host:3306/database; got ${describeValue(url)}`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${name}" url to look like mysql://user@host:3306/database; got ${JSON.stringify(redactUrl(url))}`);
  }
  if (parsed.protocol !== 'mysql:' && parsed.protocol !== 'mariadb:') {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${name}" url to start with mysql:// or mariadb://; got ${parsed.protocol}//`);
  }
  if (parsed.hostname === '') throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${name}" url to name a host; got ${JSON.stringify(redactUrl(url))}`);
  if (parsed.port !== '' && !(Number(parsed.port) > 0)) {
    throw new QueryBatchError('INVALID_DATASOURCE_URL', `Expected datasource "${name}" url port to be a number; got ${parsed.port}`);
  }
  return redactUrl(url);
}

/**
 * The URL with its password (if any) replaced by ***, for messages and logs. Everything
 * between "user:" and the last "@" before the path is the password (WHATWG URL parsing,
 * which mysql2 uses, reads a raw "@" in a password the same way).
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^/]*@/i, '$1***@');
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

function resolveDatasource(name: string, value: DatasourceOptions | string | undefined): { url: string; options: Omit<PoolOptions, 'uri'> } {
  if (!isDatasourceName(name)) {
    throw configError(`Expected datasource names of letters, digits, _ and - (at most 64, not starting with -, not a JavaScript object property like "constructor"); got ${JSON.stringify(name)}`);
  }
  const spec = typeof value === 'string' ? { url: value } : value;
  if (spec === undefined || spec === null || typeof spec !== 'object') {
    throw configError(`Expected datasource "${name}" to be a URL string or { "url": ... }; got ${describeValue(spec)}`);
  }
  onlyKeys(spec, ['url', 'options'], `datasource "${name}"`);
  checkDatasourceUrl(name, spec.url);
  if (spec.options !== undefined && (spec.options === null || typeof spec.options !== 'object' || Array.isArray(spec.options))) {
    throw configError(`Expected datasource "${name}" options to be an object of mysql2 pool options; got ${describeValue(spec.options)}`);
  }
  return { url: spec.url, options: { ...spec.options } };
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

  const datasources: Record<string, { url: string; options: Omit<PoolOptions, 'uri'> }> = Object.create(null) as Record<string, never>;
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
  const limits = optionGroup(merged.limits, 'limits', ['maxSqlBytes', 'maxParamsBytes', 'maxFileBytes']);
  const logs = optionGroup(merged.logs, 'logs', ['maxSize', 'maxFiles', 'logParams']);
  if (logs.logParams !== undefined && typeof logs.logParams !== 'boolean') {
    throw configError(`Expected \`logs.logParams\` to be true or false; got ${JSON.stringify(logs.logParams)}`);
  }
  return {
    home,
    datasources,
    defaultDatasource,
    maxConnectionAttempts: wholeNumber(merged.maxConnectionAttempts, 'maxConnectionAttempts', 1, base.maxConnectionAttempts),
    durability,
    dropInSettleMs: wholeNumber(merged.dropInSettleMs, 'dropInSettleMs', 0, base.dropInSettleMs),
    limits: {
      maxSqlBytes: wholeNumber(limits.maxSqlBytes, 'limits.maxSqlBytes', 1, base.limits.maxSqlBytes),
      maxParamsBytes: wholeNumber(limits.maxParamsBytes, 'limits.maxParamsBytes', 2, base.limits.maxParamsBytes),
      maxFileBytes: wholeNumber(limits.maxFileBytes, 'limits.maxFileBytes', 64, base.limits.maxFileBytes),
    },
    logs: {
      maxSize: wholeNumber(logs.maxSize, 'logs.maxSize', 1024, base.logs.maxSize),
      maxFiles: wholeNumber(logs.maxFiles, 'logs.maxFiles', 1, base.logs.maxFiles),
      logParams: (logs.logParams as boolean | undefined) ?? base.logs.logParams,
    },
  };
}
