import { describe, expect, it } from 'vitest';
import { authoritativeServers } from '../../src/acme/dns-propagation.js';
import { challengeRecordName } from '../../src/acme/dns-publisher.js';
import { parseServer, txtRdata } from '../../src/acme/dns-wire.js';

/** A system resolver that knows one zone, example.com, served by two name servers. */
const resolver = {
  resolveSoa: async (name: string) => {
    if (name === 'example.com') return { nsname: 'ns1.example.com', hostmaster: 'h', serial: 1, refresh: 1, retry: 1, expire: 1, minttl: 1 };
    throw Object.assign(new Error(`querySoa ENODATA ${name}`), { code: 'ENODATA' });
  },
  resolveNs: async (zone: string) => (zone === 'example.com' ? ['ns2.example.com', 'ns1.example.com'] : []),
  resolve4: async (name: string) => ({ 'ns1.example.com': ['192.0.2.1'], 'ns2.example.com': ['192.0.2.2', '192.0.2.1'] })[name] ?? [],
  resolve6: async (name: string) => {
    throw Object.assign(new Error(`queryAaaa ENODATA ${name}`), { code: 'ENODATA' });
  },
};

describe('DNS-01 record names and propagation', () => {
  it('the record name of a name and of a wildcard (its base name)', () => {
    expect(challengeRecordName('*.shop.example.com')).toBe('_acme-challenge.shop.example.com.');
    expect(challengeRecordName('shop.example.com.')).toBe('_acme-challenge.shop.example.com.');
  });

  it("finds the zone's authoritative servers: the nearest SOA above the record, its NS names, their addresses (port 53)", async () => {
    expect(await authoritativeServers('_acme-challenge.a.b.example.com.', resolver as never)).toEqual([
      { host: '192.0.2.1', port: 53 },
      { host: '192.0.2.2', port: 53 },
    ]);
    await expect(authoritativeServers('_acme-challenge.other.test.', resolver as never)).rejects.toThrow(
      /cannot find the zone of _acme-challenge\.other\.test\./,
    );
  });

  it('takes the IPv6 addresses of name servers that have no IPv4 one', async () => {
    const v6Only = {
      ...resolver,
      resolve4: async () => [] as string[],
      resolve6: async (name: string) => (name === 'ns1.example.com' ? ['2001:db8::53'] : []),
    };
    expect(await authoritativeServers('_acme-challenge.example.com.', v6Only as never)).toEqual([{ host: '2001:db8::53', port: 53 }]);
  });

  it('parses host:port lists and splits long TXT values into 255-byte strings', () => {
    expect(parseServer('[2001:db8::1]:5353')).toEqual({ host: '2001:db8::1', port: 5353 });
    expect(parseServer('ns.example.com')).toEqual({ host: 'ns.example.com', port: 53 });
    expect(parseServer('a:b:c')).toBeUndefined();
    const rdata = txtRdata('x'.repeat(300));
    expect([rdata[0], rdata[256], rdata.length]).toEqual([255, 45, 302]);
  });
});
