import { describe, expect, it } from 'vitest';
import { healthCheckOf } from '../../src/model/health-check.js';
import { parseEntries } from '../../src/model/parse.js';

const stateOf = (entries: Record<string, string>) => parseEntries(new Map(Object.entries(entries)), { reservedPorts: [] }).state;

describe('healthCheckOf', () => {
  it('is the HTTP check on health_check_uri (and health_check_port) when set', () => {
    const [web] = stateOf({
      'services/web/upstreams/a': '10.0.0.1:80',
      'services/web/health_check_uri': '/health',
      'services/web/health_check_port': '9000',
    }).http;
    expect(healthCheckOf(web!)).toEqual({ kind: 'http', path: '/health', port: 9000 });
  });

  it.each([
    ['h2', {}],
    ['https', { 'services/web/backend_verify': 'none' }],
  ])("leaves an HTTP check to HAProxy when backend_protocol is %s (the controller's probe speaks HTTP/1 in clear)", (protocol, extra) => {
    const [web] = stateOf({
      'services/web/upstreams/a': '10.0.0.1:80',
      'services/web/health_check_uri': '/health',
      'services/web/backend_protocol': protocol,
      ...extra,
    }).http;
    expect(healthCheckOf(web!)).toEqual({ kind: 'haproxy-only', reason: expect.stringContaining(protocol) });
  });

  it('is a TCP connect otherwise, to health_check_port when set', () => {
    const state = stateOf({
      'services/web/upstreams/a': '10.0.0.1:80',
      'services/web/health_check_port': '9000',
      'tcp-services/db/external_port': '5432',
      'tcp-services/db/upstreams/a': '10.0.0.1:5432',
    });
    expect(healthCheckOf(state.http[0]!)).toEqual({ kind: 'connect', port: 9000 });
    expect(healthCheckOf(state.tcp[0]!)).toEqual({ kind: 'connect', port: undefined });
  });

  it.each(['option httpchk HEAD /ping', 'http-check expect status 204', 'option tcp-check', 'tcp-check connect port 9', 'option mysql-check user x'])(
    'leaves the decision to HAProxy when custom_settings set the check: %s',
    (line) => {
      const [web] = stateOf({ 'services/web/upstreams/a': '10.0.0.1:80', 'services/web/custom_settings': line }).http;
      expect(healthCheckOf(web!)).toMatchObject({ kind: 'haproxy-only' });
    },
  );

  it('is not fooled by other custom settings', () => {
    const [web] = stateOf({ 'services/web/upstreams/a': '10.0.0.1:80', 'services/web/custom_settings': 'option http-server-close\ntimeout check 3s' }).http;
    expect(healthCheckOf(web!)).toEqual({ kind: 'connect', port: undefined });
  });

  it('leaves every service to HAProxy when KONTENA_LB_CUSTOM_SETTINGS set the check in the defaults', () => {
    const [web] = stateOf({ 'services/web/upstreams/a': '10.0.0.1:80', 'services/web/health_check_uri': '/health' }).http;
    expect(healthCheckOf(web!, ['option httpchk GET /status'])).toMatchObject({ kind: 'haproxy-only' });
    expect(healthCheckOf(web!, ['default-server port 9999'])).toMatchObject({ kind: 'haproxy-only' });
    expect(healthCheckOf(web!, ['timeout check 5s'])).toEqual({ kind: 'http', path: '/health', port: undefined });
    // Options whose names merely contain `addr` or `port` set nothing about the check.
    expect(healthCheckOf(web!, ['default-server init-addr none agent-port 1'])).toEqual({ kind: 'http', path: '/health', port: undefined });
  });
});
