import { writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parseConnLimit, parseRateLimit } from '../../src/model/limits.js';
import { EntryError } from '../../src/model/values.js';
import { parseAndRender, testRenderSettings } from '../support/render-check.js';

// rate_limit and conn_limit (issue 15): the values accepted, what the service is served with when
// one is invalid, and the lines rendered, which HAProxy accepts. What clients see is in
// test/integration/limits.test.ts.

describe('rate_limit values', () => {
  it.each([
    ['100/10s', { requests: 100, periodMs: 10_000 }],
    ['20/1s', { requests: 20, periodMs: 1000 }],
    ['600/1m', { requests: 600, periodMs: 60_000 }],
    [' 5/250ms ', { requests: 5, periodMs: 250 }],
    ['1000000/1h', { requests: 1_000_000, periodMs: 3_600_000 }],
    ['1/60m', { requests: 1, periodMs: 3_600_000 }],
  ])('%j', (raw, expected) => expect(parseRateLimit(raw)).toEqual(expected));

  it.each(['', '100', '100/', '/10s', '100/10', '100/10 s', '1e3/1s', '0/1s', '1000001/1s', '10/0s', '10/3601s', '10/2h', '10/1d', '10/1S'])(
    'rejects %j',
    (raw) => expect(() => parseRateLimit(raw)).toThrow(EntryError),
  );
});

describe('conn_limit values', () => {
  it.each([
    ['1', 1],
    [' 20 ', 20],
    ['100000', 100_000],
  ])('%j', (raw, expected) => expect(parseConnLimit(raw)).toBe(expected));

  it.each(['', '0', '100001', '-1', '1.5', '1e3', '10 20', '0x10'])('rejects %j', (raw) => expect(() => parseConnLimit(raw)).toThrow(EntryError));
});

describe('rendered limits', () => {
  const settings = testRenderSettings();
  const { parsed, config } = parseAndRender(
    new Map(
      Object.entries({
        'services/rated/virtual_hosts': 'rated.test',
        'services/rated/rate_limit': '20/500ms',
        'services/rated/upstreams/one': '127.0.0.1:8081',
        'services/both/virtual_hosts': 'both.test',
        'services/both/rate_limit': '600/1m',
        'services/both/conn_limit': '10',
        'services/both/upstreams/one': '127.0.0.1:8082',
        'services/bad/virtual_hosts': 'bad.test',
        'services/bad/rate_limit': 'lots',
        'services/bad/upstreams/one': '127.0.0.1:8083',
        'services/closed/virtual_hosts': 'closed.test',
        'services/closed/conn_limit': 'many',
        'services/closed/upstreams/one': '127.0.0.1:8084',
        'tcp-services/db/external_port': '25432',
        'tcp-services/db/conn_limit': '3',
        'tcp-services/db/upstreams/one': '127.0.0.1:5432',
        'tcp-services/shut/external_port': '25433',
        'tcp-services/shut/conn_limit': '-',
        'tcp-services/shut/upstreams/one': '127.0.0.1:5433',
      }),
    ),
    settings,
  );
  const section = (name: string) => config.slice(config.indexOf(`${name}\n`), config.indexOf('\n\n', config.indexOf(`${name}\n`)));

  it('serves a service with an invalid rate_limit without the limit, and closes one with an invalid conn_limit', () => {
    const reasons = Object.fromEntries(parsed.rejected.map((r) => [r.key, r.reason]));
    expect(reasons['services/bad/rate_limit']).toMatch(/using the default/);
    expect(reasons['services/closed/conn_limit']).toMatch(/closed \(403/);
    expect(reasons['tcp-services/shut/conn_limit']).toMatch(/refused/);
    expect(parsed.state.http.map((s) => s.name)).toEqual(['bad', 'both', 'closed', 'rated']);
    expect(section('backend http-bad')).not.toContain('stick-table');
    expect(section('backend http-closed')).toMatch(/^ {4}http-request deny deny_status 403$/m);
    expect(section('listen tcp-shut')).toMatch(/^ {4}tcp-request connection reject$/m);
  });

  it('counts each limited service in its own stick table, under the peers section', () => {
    expect(config).toMatch(/^ {4}localpeer edgelb$/m);
    expect(config).toContain(`peers edgelb\n    peer edgelb unix@${settings.peerSocket}\n`);
    const rated = section('backend http-rated');
    expect(rated).toContain('stick-table type ipv6 size 100k expire 500ms store http_req_rate(500ms) peers edgelb');
    // Retry-After in whole seconds, rounded up.
    expect(rated).toContain('hdr Retry-After 1 if { sc_http_req_rate(0) gt 20 }');
    const both = section('backend http-both');
    expect(both).toContain('expire 60000ms store http_req_rate(60000ms),conn_cur peers edgelb');
    expect(both).toContain('hdr Retry-After 60 if { sc_http_req_rate(0) gt 600 }');
    expect(both).toContain('if { sc_conn_cur(0) gt 10 }');
    const db = section('listen tcp-db');
    expect(db).toContain('stick-table type ipv6 size 100k expire 60000ms store conn_cur peers edgelb');
    expect(db).toContain('tcp-request session reject if { sc0_conn_cur gt 3 }');
  });

  it('is a config HAProxy accepts', async () => {
    const file = `${settings.stateDir}/haproxy.cfg`;
    writeFileSync(file, config);
    const result = await execa('haproxy', ['-c', '-f', file], { reject: false });
    expect(result.exitCode, result.stderr).toBe(0);
  });
});
