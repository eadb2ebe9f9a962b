import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

// Settings of the load-balancer-wide features: PROXY protocol, tunnel timeout, health URI, stats.
const load = (env: Record<string, string>) => loadConfig({ KONTENA_SERVICE_NAME: 'lb', ...env }, { checkFilesystem: false });

describe('loadConfig: load balancer features', () => {
  it('defaults: no PROXY protocol, 1h tunnel timeout, no health URI, statistics page off', () => {
    expect(load({})).toMatchObject({ acceptProxy: false, tunnelTimeout: '1h', healthUri: undefined, statsPassword: undefined });
  });

  it('KONTENA_LB_TRUSTED_PROXIES: none by default, a list of addresses and CIDRs, one line naming it for a bad one', () => {
    expect(load({}).trustedProxies).toBeUndefined();
    expect(load({ KONTENA_LB_TRUSTED_PROXIES: '' }).trustedProxies).toBeUndefined();
    expect(load({ KONTENA_LB_TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.3,::1' }).trustedProxies).toEqual(['10.0.0.0/8', '127.0.0.3', '::1']);
    expect(() => load({ KONTENA_LB_TRUSTED_PROXIES: '10.0.0.1 if TRUE' })).toThrow(
      /^KONTENA_LB_TRUSTED_PROXIES: "10.0.0.1 if TRUE" is not an IPv4 or IPv6 address/,
    );
    const many = Array.from({ length: 51 }, (_, i) => `10.0.0.${i}`).join(',');
    expect(() => load({ KONTENA_LB_TRUSTED_PROXIES: many })).toThrow(/^KONTENA_LB_TRUSTED_PROXIES lists more than 50 addresses$/);
  });

  it('reads every setting', () => {
    expect(
      load({
        KONTENA_LB_ACCEPT_PROXY: 'true',
        KONTENA_LB_TUNNEL_TIMEOUT: '30m',
        KONTENA_LB_HEALTH_URI: '/health',
        STATS_PASSWORD: 'pa$$:w0rd!',
      }),
    ).toMatchObject({ acceptProxy: true, tunnelTimeout: '30m', healthUri: '/health', statsPassword: 'pa$$:w0rd!' });
    expect(load({ STATS_PASSWORD: '' }).statsPassword).toBeUndefined();
  });

  it.each([
    [{ KONTENA_LB_ACCEPT_PROXY: 'maybe' }, /^KONTENA_LB_ACCEPT_PROXY must be true or false, got "maybe"$/],
    [{ KONTENA_LB_TUNNEL_TIMEOUT: '1 hour' }, /^KONTENA_LB_TUNNEL_TIMEOUT must be a duration like 30s, 15m or 1h/],
    [{ KONTENA_LB_TUNNEL_TIMEOUT: '-5s' }, /^KONTENA_LB_TUNNEL_TIMEOUT must be a duration/],
    [{ KONTENA_LB_HEALTH_URI: 'health' }, /^KONTENA_LB_HEALTH_URI must be a path like \/health/],
    [{ KONTENA_LB_HEALTH_URI: '/a b' }, /^KONTENA_LB_HEALTH_URI must be a path/],
    [{ KONTENA_LB_HEALTH_URI: '/a#b' }, /^KONTENA_LB_HEALTH_URI must be a path/],
  ])('refuses %o with one line', (env, message) => {
    expect(() => load(env)).toThrow(ConfigError);
    expect(() => load(env)).toThrow(message);
  });

  // Each of these would end HAProxy's `stats auth` token early or add config syntax.
  it.each([
    ['a space', 'Secret1 stats enable'],
    ['a newline', 'Secret1\nlisten evil'],
    ['a double quote', 'Secret1"'],
    ['a single quote', "Secret1'"],
    ['a hash sign', 'Secret1#'],
    ['a backslash', 'Secret1\\'],
    ['a tab', 'Secret1\t'],
    ['non-ASCII', 'Secret1é'],
  ])('refuses a STATS_PASSWORD with %s, without repeating it', (_label, password) => {
    let error: unknown;
    try {
      load({ STATS_PASSWORD: password });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^STATS_PASSWORD may only contain printable ASCII/);
    expect((error as Error).message).not.toContain('Secret1');
    expect((error as Error).message).not.toContain('\n');
  });
});
