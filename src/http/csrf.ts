import { randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * CSRF protection for the dashboard's POSTs: a double-submit cookie. Pure but for
 * newCsrfToken. A page sets `querybatch_csrf` (random, HttpOnly, SameSite=Strict) once per
 * browser session and puts the same value in each form; a POST is accepted only when the
 * form's `csrf` field equals the cookie. Another site can make a browser send the cookie
 * (SameSite=Strict already stops that in current browsers) but can never read it to fill
 * the field.
 */

export const CSRF_COOKIE = 'querybatch_csrf';
export const CSRF_FIELD = 'csrf';

export function newCsrfToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Whether a cookie value looks like one newCsrfToken made (so a page keeps it rather than minting another). */
export function isCsrfToken(value: string | undefined): value is string {
  return value !== undefined && /^[A-Za-z0-9_-]{32}$/.test(value);
}

/** Whether a POST's form field matches its cookie, in constant time. */
export function csrfMatches(cookie: string | undefined, field: unknown): boolean {
  if (!isCsrfToken(cookie) || typeof field !== 'string') return false;
  const a = Buffer.from(cookie);
  const b = Buffer.from(field);
  return a.length === b.length && timingSafeEqual(a, b);
}
