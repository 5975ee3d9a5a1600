/**
 * Datasource URLs, read without a driver: the scheme that picks the driver (db/registry.ts),
 * and the URL as it may be shown in messages and logs. Pure.
 */

/**
 * The URL with its password (if any) replaced by ***, for messages and logs; also for a
 * malformed URL (`mysql//u:pw@h`, `mysql:/u:pw@h/db`, `u:pw@h`, a raw "/" in the password).
 * The user info is everything before the last "@" (WHATWG URL parsing, which mysql2 uses,
 * reads a raw "@" in a password the same way), less a scheme followed by slashes; the
 * password is what follows its first ":". An "@" in the query makes more hidden, never less.
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const scheme = /^[\x00-\x20]*[a-z][a-z0-9+.-]*:[/\\]+/i.exec(url); // eslint-disable-line no-control-regex -- as schemeOf
  const start = scheme === null ? 0 : scheme[0].length;
  const colon = url.indexOf(':', start);
  if (colon < 0 || colon > at) return url;
  return `${url.slice(0, colon + 1)}***${url.slice(at)}`;
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

/**
 * Checks that a URL's user, password, host and database are %-escaped UTF-8 (what the
 * drivers decode with decodeURIComponent); throws `fail(message)` naming the part (never
 * showing a password). `where`: how messages name the URL (`datasource "main" url`).
 */
export function checkUrlEscapes(url: URL, where: string, fail: (message: string) => Error): void {
  const parts: Array<[string, string]> = [['user', url.username], ['password', url.password], ['host', url.hostname], ['database', url.pathname.slice(1)]];
  for (const [part, text] of parts) {
    try {
      decodeURIComponent(text);
    } catch {
      const got = part === 'password' ? 'a % not followed by two hex digits of UTF-8' : JSON.stringify(text);
      throw fail(`Expected ${where} ${part} to be %-escaped UTF-8 (a % as %25); got ${got}`);
    }
  }
}
