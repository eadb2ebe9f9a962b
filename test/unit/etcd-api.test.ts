import { describe, expect, it } from 'vitest';
import { decideApi, hasV3Api, type ApiProbe } from '../../src/etcd/choose-api.js';
import { defaultGatewayOf, platformFacts } from '../../src/etcd/platform.js';

// ETCD_API=auto's choice, and where a container finds the platform's etcd.

describe('decideApi (ETCD_API=auto)', () => {
  const probe = (over: Partial<ApiProbe>): ApiProbe => ({ serverVersion: '3.4.23', v2: 'absent', v3Keys: false, ...over });

  it.each([
    ['etcd 2.3 (no v3 API): v2', probe({ serverVersion: '2.3.7', v3Keys: undefined }), 'v2', /etcd 2\.3\.7 has no v3 API/],
    ['v2 switched off: v3', probe({ v2: 'off' }), 'v3', /v2 API switched off/],
    ['keys in v3: v3', probe({ v3Keys: true }), 'v3', /keys in the v3 keyspace/],
    ['the prefix only in v2 (a Kontena master made the directories): v2', probe({ v2: 'present' }), 'v2', /only in the v2 keyspace/],
    ['empty in both: undecided', probe({}), undefined, /watching both/],
    ['v2 off and nothing in v3: v3 (nothing else could hold it)', probe({ v2: 'off', v3Keys: false }), 'v3', /switched off/],
  ])('%s', (_, input, api, reason) => {
    const decision = decideApi(input);
    expect(decision.api).toBe(api);
    expect(decision.reason).toMatch(reason);
  });

  it('warns when the prefix is in both keyspaces, and reads v3', () => {
    const decision = decideApi(probe({ v3Keys: true, v2: 'present' }));
    expect(decision).toMatchObject({ api: 'v3', warning: expect.stringMatching(/also exists in the v2 keyspace.*ETCD_API=v2/) });
  });

  it.each([
    ['2.3.7', false],
    ['2.2.0', false],
    ['3.0.0', true],
    ['3.4.23', true],
    ['3.5.17', true],
  ])('etcd %s has a v3 API: %s', (version, expected) => {
    expect(hasV3Api(version)).toBe(expected);
  });
});

describe('the default gateway (/proc/net/route)', () => {
  const table = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t0011AC0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    'eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  ].join('\n');

  it("reads the default route's gateway in the kernel's byte order", () => {
    expect(defaultGatewayOf(table)).toBe('172.17.0.1');
  });

  it('finds none without a default route through a gateway', () => {
    expect(defaultGatewayOf(table.split('\n').slice(0, 2).join('\n'))).toBeUndefined();
    expect(defaultGatewayOf(table.replace('\t0003\t', '\t0001\t'))).toBeUndefined();
    expect(defaultGatewayOf('')).toBeUndefined();
  });

  it('looks for it only inside a container (/.dockerenv, /run/.containerenv or $container)', () => {
    const read = (files: Record<string, string>, env: Record<string, string> = {}) =>
      platformFacts({
        exists: (file) => file in files,
        readFile: (file) => files[file],
        env,
      });
    expect(read({ '/.dockerenv': '', '/proc/net/route': table })).toEqual({ inContainer: true, defaultGateway: '172.17.0.1' });
    expect(read({ '/run/.containerenv': '', '/proc/net/route': table })).toEqual({ inContainer: true, defaultGateway: '172.17.0.1' });
    expect(read({ '/proc/net/route': table }, { container: 'podman' })).toEqual({ inContainer: true, defaultGateway: '172.17.0.1' });
    expect(read({ '/proc/net/route': table })).toEqual({ inContainer: false, defaultGateway: undefined });
  });
});
