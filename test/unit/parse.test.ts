import { describe, expect, it } from 'vitest';
import { parseEntries } from '../../src/model/parse.js';
import { findService } from '../../src/model/state-changes.js';

const parse = (entries: Record<string, string>, reservedPorts = [80, 443, 1000]) => parseEntries(new Map(Object.entries(entries)), { reservedPorts });

describe('parseEntries: HTTP services', () => {
  it('parses a full service with defaults filled in', () => {
    const { state, rejected } = parse({
      'services/web/virtual_hosts': 'www.Foo.com, *.foo.com',
      'services/web/virtual_path': '/api/,/v1',
      'services/web/upstreams/web-2': '10.0.0.2:8080',
      'services/web/upstreams/web-1': 'web-1.stack.local:80',
    });
    expect(rejected).toEqual([]);
    expect(state.http).toHaveLength(1);
    const web = state.http[0]!;
    expect(web.virtualHosts).toEqual([
      { name: 'www.foo.com', wildcard: false },
      { name: 'foo.com', wildcard: true },
    ]);
    expect(web.virtualPaths).toEqual(['/api', '/v1']);
    expect(web.balance).toBe('roundrobin');
    expect(web.keepVirtualPath).toBe(false);
    expect(web.cookie).toBeUndefined();
    expect(web.upstreams.map((u) => u.name)).toEqual(['web-1', 'web-2']);
    expect(web.upstreams[0]).toEqual({ name: 'web-1', host: 'web-1.stack.local', port: 80, weight: 100 });
    expect(Object.isFrozen(web)).toBe(true);
    expect(Object.isFrozen(web.upstreams)).toBe(true);
  });

  it('sorts services by name whatever the key order', () => {
    const { state } = parse({ 'services/b/virtual_path': '/b', 'services/a/virtual_path': '/a', 'services/C/virtual_path': '/c' });
    expect(state.http.map((s) => s.name)).toEqual(['C', 'a', 'b']);
  });

  it('sorts by name, not by key, when one name is a prefix of another ("web" before "web-next", whose keys sort first)', () => {
    const { state } = parse({
      'services/web-next/virtual_path': '/n',
      'services/web/virtual_path': '/w',
      'services/web.v2/virtual_path': '/v',
      'tcp-services/db-2/external_port': '7002',
      'tcp-services/db-2/upstreams/a': '10.0.0.1:1',
      'tcp-services/db/external_port': '7001',
      'tcp-services/db/upstreams/a': '10.0.0.1:1',
    });
    expect(state.http.map((s) => s.name)).toEqual(['web', 'web-next', 'web.v2']);
    expect(state.tcp.map((s) => s.name)).toEqual(['db', 'db-2']);
    expect(findService(state, 'http:web')?.name).toBe('web');
  });

  it('keeps a service without upstreams (it answers 503)', () => {
    const { state, rejected } = parse({ 'services/web/virtual_hosts': 'a.com' });
    expect(rejected).toEqual([]);
    expect(state.http[0]?.upstreams).toEqual([]);
  });

  it('carries cookie, health check, custom settings and basic auth', () => {
    const { state, rejected } = parse({
      'services/web/virtual_path': '/',
      'services/web/cookie': '',
      'services/web/health_check_uri': '/health',
      'services/web/health_check_port': '8081',
      'services/web/custom_settings': 'option http-server-close\n  timeout server 2m\n',
      'services/web/basic_auth_secrets': 'user admin insecure-password s3cret',
      'services/web/keep_virtual_path': 'true',
      'services/web/balance': 'leastconn',
    });
    expect(rejected).toEqual([]);
    expect(state.http[0]).toMatchObject({
      cookie: '',
      healthCheckUri: '/health',
      healthCheckPort: 8081,
      customSettings: ['option http-server-close', 'timeout server 2m'],
      basicAuth: { users: [{ name: 'admin', kind: 'insecure-password', secret: 's3cret' }] },
      keepVirtualPath: true,
      balance: 'leastconn',
    });
  });
});

describe('parseEntries: rejections', () => {
  const cases: [string, Record<string, string>, string, RegExp, boolean][] = [
    ['malformed upstream', { 'services/web/upstreams/a': 'no-port' }, 'services/web/upstreams/a', /host:port/, false],
    ['upstream port out of range', { 'services/web/upstreams/a': '10.0.0.1:70000' }, 'services/web/upstreams/a', /out of range/, false],
    ['upstream with a newline', { 'services/web/upstreams/a': '10.0.0.1:80\nserver x 1.1.1.1:80' }, 'services/web/upstreams/a', /host:port/, false],
    ['host with a space', { 'services/web/virtual_hosts': 'a.com b.com' }, 'services/web/virtual_hosts', /valid host name/, true],
    ['host with a newline', { 'services/web/virtual_hosts': 'a.com\nacl x' }, 'services/web/virtual_hosts', /line break/, true],
    ['host with a unicode look-alike', { 'services/web/virtual_hosts': 'аpple.com' }, 'services/web/virtual_hosts', /valid host name/, true],
    ['path with a space', { 'services/web/virtual_path': '/a b' }, 'services/web/virtual_path', /URL path/, true],
    ['path with a quote', { 'services/web/virtual_path': "/a'b" }, 'services/web/virtual_path', /URL path/, true],
    ['path with a hash', { 'services/web/virtual_path': '/a#b' }, 'services/web/virtual_path', /URL path/, true],
    ['custom settings opening a section', { 'services/web/custom_settings': 'backend evil' }, 'services/web/custom_settings', /new section/, true],
    ['custom settings with a control byte', { 'services/web/custom_settings': 'option a\u0000' }, 'services/web/custom_settings', /control/, true],
  ];
  it.each(cases)('%s', (_label, entries, key, reason, wholeService) => {
    const { state, rejected } = parse({
      ...entries,
      'services/web/virtual_path': entries['services/web/virtual_path'] ?? '/web',
      'services/ok/virtual_path': '/ok',
    });
    const rejection = rejected.find((r) => r.key === key);
    expect(rejection?.reason).toMatch(reason);
    expect(state.http.map((s) => s.name)).toEqual(wholeService ? ['ok'] : ['ok', 'web']);
    if (wholeService) expect(rejection?.service).toBe('web');
  });

  it('rejects service names that could not be HAProxy names', () => {
    const { state, rejected } = parse({ 'services/we b/virtual_path': '/x', 'services/{{global}}/virtual_path': '/y', 'services/ok/virtual_path': '/ok' });
    expect(state.http.map((s) => s.name)).toEqual(['ok']);
    expect(rejected.map((r) => r.key).sort()).toEqual(['services/we b', 'services/{{global}}']);
  });

  it('rejects a bad optional key but still serves the service with the default', () => {
    const { state, rejected } = parse({ 'services/web/virtual_path': '/', 'services/web/balance': 'fastest please' });
    expect(state.http[0]?.balance).toBe('roundrobin');
    expect(rejected).toEqual([{ key: 'services/web/balance', code: 'invalid_value', reason: expect.stringMatching(/not a supported algorithm.*default/) }]);
  });

  it('reports unknown settings instead of silently ignoring them', () => {
    const { rejected } = parse({ 'services/web/virtual_path': '/', 'services/web/colour': 'blue' });
    expect(rejected).toEqual([{ key: 'services/web/colour', code: 'unknown_setting', reason: 'unknown setting, ignored' }]);
  });

  it('rejects values over the size limit', () => {
    const { state, rejected } = parse({ 'services/web/virtual_hosts': `${'a'.repeat(60)}.com,`.repeat(2000) });
    expect(state.http).toEqual([]);
    expect(rejected[0]?.reason).toMatch(/larger than/);
  });

  it('limits the number of services', () => {
    const entries = new Map(Array.from({ length: 5 }, (_, i) => [`services/s${i}/virtual_path`, `/s${i}`] as const));
    const result = parseEntries(entries, { reservedPorts: [], maxServices: 3 });
    expect(result.state.http).toHaveLength(3);
    expect(result.rejected.filter((r) => /more than 3 services/.test(r.reason))).toHaveLength(2);
  });
});

describe('parseEntries: TCP services', () => {
  it('serves a TCP service only with an external port and an upstream', () => {
    const { state, rejected } = parse({
      'tcp-services/db/external_port': '5432',
      'tcp-services/db/upstreams/db-1': '10.0.0.5:5432',
      'tcp-services/noport/upstreams/a': '10.0.0.6:1',
      'tcp-services/noup/external_port': '6000',
    });
    expect(state.tcp.map((s) => [s.name, s.externalPort, s.balance])).toEqual([['db', 5432, 'leastconn']]);
    expect(rejected.map((r) => [r.key, r.reason])).toEqual([
      ['tcp-services/noport/external_port', 'not served: no external_port set'],
      ['tcp-services/noup/upstreams', 'not served: no upstreams'],
    ]);
  });

  it('refuses a port the load balancer or another TCP service already uses', () => {
    const { state, rejected } = parse({
      'tcp-services/a/external_port': '7000',
      'tcp-services/a/upstreams/x': '10.0.0.1:1',
      'tcp-services/b/external_port': '7000',
      'tcp-services/b/upstreams/x': '10.0.0.1:1',
      'tcp-services/c/external_port': '80',
      'tcp-services/c/upstreams/x': '10.0.0.1:1',
    });
    expect(state.tcp.map((s) => s.name)).toEqual(['a']);
    expect(rejected.map((r) => r.reason)).toEqual(['port 7000 is already used by tcp service a', 'port 80 is already used by the load balancer itself']);
  });

  it('ignores keys of other subtrees and reports odd layouts', () => {
    const { state, rejected } = parse({ 'certs/x': 'pem', 'services/web': 'dir?', 'services/web/upstreams/a/b': '1.1.1.1:1' });
    expect(state).toEqual({ http: [], tcp: [] });
    expect(rejected.map((r) => r.key).sort()).toEqual(['services/web', 'services/web/upstreams/a/b']);
  });

  it('reads weights/<instance> beside the instance, and reports a weights directory used as a field', () => {
    const { state, rejected } = parse({
      'services/web/upstreams/a': '10.0.0.1:80',
      'services/web/upstreams/b': '10.0.0.2:80',
      'services/web/weights/a': '0',
      'services/web/weights/b': '257',
      'services/web/weights/gone': '5',
      'services/web/weights': 'x',
      'tcp-services/db/external_port': '5432',
      'tcp-services/db/upstreams/a': '10.0.0.1:5432',
      'tcp-services/db/weights/a': '256',
    });
    expect(state.http[0]?.upstreams.map((u) => [u.name, u.weight])).toEqual([
      ['a', 0],
      ['b', 100],
    ]);
    expect(state.tcp[0]?.upstreams[0]?.weight).toBe(256);
    expect(rejected).toEqual([
      { key: 'services/web/weights', code: 'key_layout', reason: 'unexpected key layout' },
      { key: 'services/web/weights/b', code: 'invalid_value', reason: expect.stringMatching(/0 to 256; using the default/) },
    ]);
  });
});
