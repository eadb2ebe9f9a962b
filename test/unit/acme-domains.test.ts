import { describe, expect, it } from 'vitest';
import { parseEntries } from '../../src/model/parse.js';
import { acmeDomains, challengeOf, splitDomainList } from '../../src/acme/domains.js';
import { certKeyOf, domainOfCertName } from '../../src/acme/keys.js';

const stateOf = (entries: Record<string, string>) => parseEntries(new Map(Object.entries(entries)), { reservedPorts: [] }).state;

describe('acmeDomains', () => {
  it('takes the exact virtual hosts of services with acme=true, and nothing from the others', () => {
    const state = stateOf({
      'services/shop/virtual_hosts': 'Shop.Example.com,www.shop.example.com',
      'services/shop/acme': 'true',
      'services/blog/virtual_hosts': 'blog.example.com',
      'services/blog/acme': 'false',
      'services/api/virtual_hosts': 'api.example.com',
    });
    expect(acmeDomains(state, [])).toEqual({ domains: ['shop.example.com', 'www.shop.example.com'], skipped: [] });
  });

  it('adds KONTENA_LB_ACME_DOMAINS, lower-cased, without a trailing dot, without duplicates, sorted', () => {
    const state = stateOf({ 'services/a/virtual_hosts': 'b.example.com', 'services/a/acme': 'true' });
    expect(acmeDomains(state, ['Z.example.com.', 'b.example.com', ' a.example.com ', '']).domains).toEqual(['a.example.com', 'b.example.com', 'z.example.com']);
  });

  it('without a DNS publisher, reports wildcards with what to set, keeping the exact names', () => {
    const state = stateOf({ 'services/a/virtual_hosts': '*.apps.example.com,apps.example.com', 'services/a/acme': 'true' });
    const result = acmeDomains(state, ['*.example.org']);
    expect(result.domains).toEqual(['apps.example.com']);
    expect(result.skipped).toEqual([
      {
        domain: '*.apps.example.com',
        source: 'services/a',
        reason: expect.stringMatching(/^a wildcard: only DNS-01 can validate it, .*KONTENA_LB_ACME_DNS_HOOK/),
      },
      { domain: '*.example.org', source: 'KONTENA_LB_ACME_DOMAINS', reason: expect.stringMatching(/wildcard/) },
    ]);
  });

  it('with a DNS publisher, wants wildcards (by DNS-01) beside their base names; exact names keep the preferred challenge', () => {
    const state = stateOf({ 'services/a/virtual_hosts': '*.apps.example.com,apps.example.com', 'services/a/acme': 'true' });
    const result = acmeDomains(state, ['*.example.org', '*.10.0.0.1'], true);
    expect(result.domains).toEqual(['*.apps.example.com', '*.example.org', 'apps.example.com']);
    expect(result.skipped).toEqual([{ domain: '*.10.0.0.1', source: 'KONTENA_LB_ACME_DOMAINS', reason: expect.stringMatching(/IP address/) }]);
    expect(challengeOf('*.apps.example.com')).toBe('dns-01');
    expect(challengeOf('*.apps.example.com', 'http-01')).toBe('dns-01');
    expect(challengeOf('apps.example.com')).toBe('http-01');
    expect(challengeOf('apps.example.com', 'dns-01')).toBe('dns-01');
    expect(certKeyOf('*.apps.example.com')).toBe('certs/acme-_wildcard.apps.example.com');
    expect(domainOfCertName('_wildcard.apps.example.com')).toBe('*.apps.example.com');
    expect(certKeyOf('apps.example.com')).toBe('certs/acme-apps.example.com');
  });

  it('skips IP addresses, single-label names and invalid names', () => {
    const result = acmeDomains(stateOf({}), ['10.0.0.1', 'localhost', 'bad_name.example.com', 'ok.example.com']);
    expect(result.domains).toEqual(['ok.example.com']);
    expect(Object.fromEntries(result.skipped.map((s) => [s.domain, s.reason]))).toEqual({
      '10.0.0.1': expect.stringMatching(/IP address/),
      localhost: expect.stringMatching(/not a fully qualified name/),
      'bad_name.example.com': 'not a valid host name',
    });
  });

  it('says so when a service asks for acme without any virtual host', () => {
    const state = stateOf({ 'services/a/virtual_path': '/a', 'services/a/acme': 'true' });
    expect(acmeDomains(state, [])).toEqual({
      domains: [],
      skipped: [{ domain: '', source: 'services/a', reason: 'acme is true but the service has no virtual_hosts' }],
    });
  });

  it('does not list a name as skipped when another source wants it', () => {
    const state = stateOf({ 'services/a/virtual_hosts': 'a.example.com', 'services/a/acme': 'true' });
    // The same name is wanted by the env and the service: one domain, no duplicate.
    expect(acmeDomains(state, ['a.example.com'])).toEqual({ domains: ['a.example.com'], skipped: [] });
  });

  it('ignores a service whose acme value is invalid (the model rejects it and defaults to false)', () => {
    const parsed = parseEntries(
      new Map([
        ['services/a/virtual_hosts', 'a.example.com'],
        ['services/a/acme', 'yes please'],
      ]),
      { reservedPorts: [] },
    );
    expect(parsed.rejected.map((r) => r.key)).toContain('services/a/acme');
    expect(acmeDomains(parsed.state, []).domains).toEqual([]);
  });
});

describe('splitDomainList', () => {
  it('splits on commas and white space', () => {
    expect(splitDomainList(' a.example.com, b.example.com\nc.example.com  ,,')).toEqual(['a.example.com', 'b.example.com', 'c.example.com']);
    expect(splitDomainList(undefined)).toEqual([]);
  });
});
