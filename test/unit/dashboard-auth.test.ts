import { describe, expect, it } from 'vitest';
import { admit, cookieOf, isLoopback, parseListen, sessionValue } from '../../src/http/auth.js';
import { resolveConfig } from '../../src/config.js';
import { resolveDashboard } from '../../src/http/server.js';
import { isQueryBatchError } from '../../src/errors.js';

describe('dashboard token rules', () => {
  it('loopback hosts are 127.0.0.0/8, ::1 and localhost; nothing else', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '128.0.0.1', 'localhost.evil.com']) expect(isLoopback(h), h).toBe(false);
  });

  it('admits by Bearer header, by cookie (an HMAC of the token), or by ?token=; nothing else', () => {
    expect(admit('tok', { authorization: 'Bearer tok' })).toBe('bearer');
    expect(admit('tok', { authorization: 'bearer   tok' })).toBe('bearer');
    expect(admit('tok', { authorization: 'Bearer tok2' })).toBe('denied');
    expect(admit('tok', { authorization: 'Basic tok' })).toBe('denied');
    expect(admit('tok', { cookie: sessionValue('tok') })).toBe('cookie');
    expect(admit('tok', { cookie: 'tok' })).toBe('denied');
    expect(admit('tok', { authorization: `Bearer ${sessionValue('tok')}` })).toBe('denied');
    expect(admit('tok', { queryToken: 'tok' })).toBe('query');
    expect(admit('tok', { queryToken: 'to' })).toBe('denied');
    expect(admit('tok', {})).toBe('denied');
    expect(sessionValue('a')).not.toBe(sessionValue('b'));
  });

  it('reads a cookie out of a Cookie header', () => {
    expect(cookieOf('a=1; querybatch_session=xyz; b=2', 'querybatch_session')).toBe('xyz');
    expect(cookieOf('a=1', 'querybatch_session')).toBeUndefined();
    expect(cookieOf(undefined, 'x')).toBeUndefined();
  });

  it('parses [HOST:]PORT', () => {
    expect(parseListen('9464', '127.0.0.1')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListen('0.0.0.0:80', '127.0.0.1')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseListen('[::1]:0', '127.0.0.1')).toEqual({ host: '::1', port: 0 });
    for (const bad of ['', 'x', 'host:', ':80', '70000', 'a:b']) expect(() => parseListen(bad, '127.0.0.1'), bad).toThrow(/Expected \[HOST:\]PORT/);
  });

  it('needs a token for a non-loopback host; takes it from the options, else the config', () => {
    const config = resolveConfig({ home: '/tmp/x', configFile: false });
    expect(resolveDashboard({}, config)).toEqual({ host: '127.0.0.1', port: 9464, token: null, readOnly: false });
    let thrown: unknown;
    try {
      resolveDashboard({ host: '0.0.0.0' }, config);
    } catch (error) {
      thrown = error;
    }
    expect(isQueryBatchError(thrown, 'DASHBOARD_TOKEN_REQUIRED') && thrown.isUsageError).toBe(true);
    const withToken = resolveConfig({ home: '/tmp/x', configFile: false, dashboard: { token: 'c' } });
    expect(resolveDashboard({ host: '0.0.0.0' }, withToken).token).toBe('c');
    expect(resolveDashboard({ host: '0.0.0.0', token: 'o' }, withToken).token).toBe('o');
    expect(() => resolveDashboard({ port: 70000 }, config)).toThrow(/port/);
  });

  it('config: dashboard.token must be a non-empty string; unknown dashboard keys are refused', () => {
    expect(() => resolveConfig({ configFile: false, dashboard: { token: '' } })).toThrow('Expected `dashboard.token` to be a non-empty string');
    expect(() => resolveConfig({ configFile: false, dashboard: { token: 5 as unknown as string } })).toThrow('dashboard.token');
    expect(() => resolveConfig({ configFile: false, dashboard: { tokn: 'x' } as never })).toThrow(/tokn/);
  });
});
