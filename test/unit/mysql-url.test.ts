import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolveConfig } from '../../src/config.js';
import { URL_QUERY_OPTIONS, checkMysqlDatasource } from '../../src/db/mysql/options.js';
import { expectError } from './thrown.js';

const SECRET = 'Hunter2secret';

/** Checks a datasource "main" with this URL as the config does. */
function check(url: string): Record<string, unknown> {
  return resolveConfig({ configFile: false, datasources: { main: url } }).datasources.main!.options;
}

describe('a MySQL datasource URL is checked when the configuration is read', () => {
  it.each([
    ['a bad %-escape in the password', `mysql://app:${SECRET}%zz@db/x`, 'url password to be %-escaped UTF-8 (a % as %25); got a % not followed by two hex digits of UTF-8'],
    ['a %-escape of no UTF-8 in the password', `mysql://app:${SECRET}%C3@db/x`, 'url password to be %-escaped UTF-8'],
    ['a bad %-escape in the user', `mysql://ap%p:${SECRET}@db/x`, 'url user to be %-escaped UTF-8 (a % as %25); got "ap%p"'],
    ['a bad %-escape in the database', `mysql://app:${SECRET}@db/50%off`, 'url database to be %-escaped UTF-8 (a % as %25); got "50%off"'],
    ['ssl=true', `mysql://app:${SECRET}@db/x?ssl=true`, 'url ssl to be a JSON object of TLS options (ssl={"rejectUnauthorized":true}), false, or an SSL profile mysql2 knows ("Amazon RDS"); got "true"'],
    ['ssl=required', `mysql://app:${SECRET}@db/x?ssl=required`, 'url ssl to be a JSON object of TLS options', 'got "required"'],
    ['ssl that is a broken JSON object, its text not shown', `mysql://app@db/x?ssl={"passphrase":"${SECRET}"`, 'url ssl to be a JSON object of TLS options', 'got an object that is not valid JSON'],
    ['ssl that is a JSON object with a bare word, its text not shown', `mysql://app@db/x?ssl={"passphrase":${SECRET}}`, 'got an object that is not valid JSON'],
    ['ssl=[]', `mysql://app:${SECRET}@db/x?ssl=[]`, 'url ssl to be a JSON object of TLS options', 'got "[]"'],
    ['an unknown query option', `mysql://app:${SECRET}@db/x?sslmode=require`, 'url query parameters to be mysql2 connection options (bigNumberStrings, charset,', 'got "sslmode"'],
    ['a misspelt query option', `mysql://app:${SECRET}@db/x?connectTimeout=5&conectTimeout=5`, 'got "conectTimeout"'],
    ['the password as a query option', `mysql://app@db/x?password=${SECRET}`, 'url to give its password before the query (mysql2 ignores ?password=); got ?password='],
    ['an unknown charset', `mysql://app:${SECRET}@db/x?charset=utf9`, 'url charset to be a character set mysql2 knows (utf8mb4, latin1, …); got "utf9"'],
  ])('refuses %s with INVALID_DATASOURCE_URL naming the datasource, the password hidden', (_label, url, ...fragments) => {
    const error = expectError(() => check(url), 'INVALID_DATASOURCE_URL', 'Expected datasource "main" ', ...fragments);
    expect(error.message).not.toContain(SECRET);
  });

  it.each([
    'mysql://app:p%40ss%25@db/na%C3%AFve',
    'mysql://app@db/x?ssl={"rejectUnauthorized":false}',
    'mysql://app@db/x?ssl=%7B%22ca%22%3A%22-----BEGIN%22%7D',
    'mysql://app@db/x?ssl=Amazon%20RDS',
    'mysql://app@db/x?ssl=false',
    'mysql://app@db/x?charset=utf8mb4_unicode_ci&connectTimeout=5000&timezone=%2B02:00&dateStrings=true',
    'mysql://root@localhost/test?socketPath=/run/mysqld/mysqld.sock',
  ])('accepts %s', (url) => {
    expect(check(url)).toEqual({});
    expect(checkMysqlDatasource('main', new URL(url), { connectTimeout: 5 })).toEqual({ connectTimeout: 5 });
  });

  it("names every option mysql2's validOptions has but the URL's own parts and what a URL can't spell", () => {
    // Read from the mysql2 installed: a new option there shows up here.
    const source = readFileSync(createRequire(import.meta.url).resolve('mysql2').replace(/index\.js$/, 'lib/connection_config.js'), 'utf8');
    const block = /const validOptions = \{([\s\S]*?)\n\};/.exec(source)![1]!;
    const valid = [...block.matchAll(/^\s*(\w+): 1,/gm)].map((m) => m[1]!);
    const notFromUrl = ['host', 'port', 'database', 'user', 'password', 'uri', 'authPlugins', 'authSwitchHandler', 'infileStreamFactory', 'isServer', 'pool', 'queryFormat', 'stream', 'Promise'];
    expect([...URL_QUERY_OPTIONS].sort()).toEqual(valid.filter((name) => !notFromUrl.includes(name)).sort());
  });
});
