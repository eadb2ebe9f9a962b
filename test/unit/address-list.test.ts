import { describe, expect, it } from 'vitest';
import { parseAddress, parseAddresses, parseAddressList } from '../../src/model/address-list.js';
import { parseAndRender, testRenderSettings } from '../support/render-check.js';

describe('address lists (ip_allow, ip_deny, KONTENA_LB_TRUSTED_PROXIES)', () => {
  it.each(['10.0.0.1', '10.0.0.0/8', '0.0.0.0/0', '255.255.255.255/32', '::1', '2001:DB8::/32', '::ffff:10.0.0.1', 'fe80::1/128'])('accepts %s', (raw) => {
    expect(parseAddress(raw)).toBe(raw.toLowerCase());
  });

  it.each([
    '10.0.0.256',
    '10.0.0',
    '010.0.0.1',
    '10.0.0.0/33',
    '10.0.0.0/8/8',
    '10.0.0.0/',
    '::1/129',
    'fe80::1%eth0',
    'example.com',
    '10.0.0.1 if TRUE',
    '10.0.0.1#x',
    "10.0.0.1'",
    '%[src]',
    '${HOME}',
    '1.2.3.4\u0000',
  ])('refuses %j', (raw) => {
    expect(() => parseAddress(raw)).toThrow(/not an IPv4 or IPv6 address or CIDR/);
  });

  it('splits on commas, trims, drops duplicates, refuses an empty list, a control byte and more than 500', () => {
    expect(parseAddresses(' 10.0.0.1 ,10.0.0.1, ::1,', 'ip_allow')).toEqual(['10.0.0.1', '::1']);
    expect(() => parseAddresses(' , ', 'ip_allow')).toThrow(/ip_allow lists no address/);
    expect(() => parseAddresses('10.0.0.1\n10.0.0.2', 'ip_allow')).toThrow(/line break or control/);
    const many = Array.from({ length: 501 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(',');
    expect(() => parseAddresses(many, 'ip_deny')).toThrow(/more than 500/);
    expect(parseAddressList('192.0.2.0/24', 'ip_deny')).toEqual({ addresses: ['192.0.2.0/24'] });
  });

  it('renders allow and deny ACLs, 50 addresses a line, and a closed service when either is invalid', () => {
    const many = Array.from({ length: 120 }, (_, i) => `10.0.0.${i}`).join(',');
    const { config } = parseAndRender(
      new Map(
        Object.entries({
          'services/a/virtual_hosts': 'a.test',
          'services/a/upstreams/one': '127.0.0.1:1',
          'services/a/ip_allow': many,
          'services/a/ip_deny': '10.0.0.7',
          'services/b/virtual_hosts': 'b.test',
          'services/b/upstreams/one': '127.0.0.1:1',
          'services/b/ip_allow': '10.0.0.0/8',
          'services/b/ip_deny': 'nonsense',
          'tcp-services/t/external_port': '20000',
          'tcp-services/t/upstreams/one': '127.0.0.1:1',
          'tcp-services/t/ip_deny': '192.0.2.1',
        }),
      ),
      testRenderSettings(),
    );
    const section = (name: string) => config.split(/\n(?=backend |listen )/).find((s) => s.startsWith(name))!;
    expect(section('backend http-a').match(/acl ip_allowed src/g)).toHaveLength(3);
    expect(section('backend http-a')).toContain(
      '    http-request deny deny_status 403 unless ip_allowed\n    http-request deny deny_status 403 if ip_denied\n',
    );
    expect(section('backend http-b')).toMatch(/\n {4}http-request deny deny_status 403\n/);
    expect(section('backend http-b')).not.toContain('acl ip_allowed');
    expect(section('listen tcp-t')).toContain('    acl ip_denied src 192.0.2.1\n    tcp-request session reject if ip_denied\n');
  });
});
