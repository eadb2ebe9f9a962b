import { describe, expect, it } from 'vitest';
import { settingsReportOf } from '../../src/admin/service-settings.js';
import { parseEntries } from '../../src/model/parse.js';

// /status lists each service's keys set to other than their default, by etcd key, never a secret.

describe('settingsReportOf', () => {
  const parse = (entries: Record<string, string>) => parseEntries(new Map(Object.entries(entries)), { reservedPorts: [] });

  it('lists the keys set to other than their defaults, closed ones as "closed", and no secret', () => {
    const { state } = parse({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/a': '10.0.0.1:80',
      'services/web/rate_limit': '100/10s',
      'services/web/ip_deny': 'not an address',
      'services/web/compression': 'true',
      'services/web/backend_protocol': 'h2',
      'services/web/basic_auth_secrets': 'user alice insecure-password s3cret',
      'tcp-services/db/external_port': '5432',
      'tcp-services/db/upstreams/a': '10.0.0.2:5432',
      'tcp-services/db/timeout_server': '30s',
    });
    const web = settingsReportOf(state.http[0]!);
    expect(web).toMatchObject({ rate_limit: { requests: 100 }, ip_deny: 'closed', compression: true, backend_protocol: 'h2' });
    expect(Object.keys(web)).not.toContain('basic_auth_secrets');
    expect(JSON.stringify(web)).not.toContain('s3cret');
    expect(Object.keys(web)).not.toContain('virtual_hosts');
    expect(settingsReportOf(state.tcp[0]!)).toEqual({ timeout_server: expect.anything() });
  });

  it('is empty for a service with every default', () => {
    const { state } = parse({ 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/a': '10.0.0.1:80' });
    expect(settingsReportOf(state.http[0]!)).toEqual({});
  });
});
