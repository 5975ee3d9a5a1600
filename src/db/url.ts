/**
 * Datasource URLs, read without a driver: the scheme that picks the driver (db/registry.ts),
 * and the URL as it may be shown in messages and logs. Pure.
 */

/**
 * The URL with its password (if any) replaced by ***, for messages and logs. Everything
 * between "user:" and the last "@" before the path is the password (WHATWG URL parsing,
 * which mysql2 uses, reads a raw "@" in a password the same way).
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^/]*@/i, '$1***@');
}

/**
 * The URL's scheme, lower-cased, with its colon (`mysql:`), as `new URL(url).protocol`
 * reads it (leading spaces and control characters skipped); null when it has none.
 */
export function schemeOf(url: string): string | null {
  // eslint-disable-next-line no-control-regex -- the WHATWG URL parser skips leading C0 controls and spaces
  const match = /^[\x00-\x20]*([A-Za-z][A-Za-z0-9+.-]*:)/.exec(url);
  return match ? match[1]!.toLowerCase() : null;
}

/** A scheme as a URL spells it, for messages: `mysql://` when `url` goes on with `//`, else `sqlite:`. */
export function shownScheme(scheme: string, url: string): string {
  const rest = url.slice(url.toLowerCase().indexOf(scheme) + scheme.length);
  return rest.startsWith('//') ? `${scheme}//` : scheme;
}
