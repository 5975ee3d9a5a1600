import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/**
 * The dashboard's token rules (docs/dashboard.md). Pure.
 *
 * With a token, a request is let in when it carries `Authorization: Bearer <token>`, the
 * cookie a page load with `?token=<token>` set, or that query parameter itself. The cookie
 * holds an HMAC of the token, not the token: it can't be replayed as a Bearer header, and it
 * changes when the token does.
 */

export const COOKIE_NAME = 'querybatch_session';

/** Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost): only these may be bound without a token. */
export function isLoopback(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./i.test(h);
  return false;
}

/** The cookie value a token gives. */
export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('querybatch dashboard session').digest('base64url');
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The value of cookie `name` in a Cookie header, if there. */
export function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** What a request carries that may let it in. */
export interface Credentials {
  readonly authorization?: string | undefined;
  readonly cookie?: string | undefined;
  readonly queryToken?: string | undefined;
}

/** How a request got in: by header, cookie or query (the last sets the cookie), or not at all. */
export type Admission = 'bearer' | 'cookie' | 'query' | 'denied';

export function admit(token: string, c: Credentials): Admission {
  const bearer = /^Bearer\s+(.+)$/i.exec(c.authorization ?? '')?.[1]?.trim();
  if (bearer !== undefined && same(bearer, token)) return 'bearer';
  if (c.cookie !== undefined && same(c.cookie, sessionValue(token))) return 'cookie';
  if (c.queryToken !== undefined && same(c.queryToken, token)) return 'query';
  return 'denied';
}

/** `[HOST:]PORT` (as `start --http` takes it; IPv6 in brackets) into host and port. Throws a message. */
export function parseListen(value: string, defaultHost: string): { host: string; port: number } {
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d+)$/.exec(value.trim());
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !Number.isSafeInteger(port) || port > 65535) {
    throw new Error(`Expected [HOST:]PORT like 9464 or 0.0.0.0:9464 (port 0-65535); got ${JSON.stringify(value)}`);
  }
  const host = m[1] === undefined ? defaultHost : m[1].replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}
