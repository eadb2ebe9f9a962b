import { describe, expect, it } from 'vitest';
import { ControllerInputs } from '../../src/controller/inputs.js';
import { parseEntries } from '../../src/model/parse.js';
import type { Entries } from '../../src/model/types.js';
import { EntryStore } from '../../src/sources/entry-store.js';

// What the controller reads from each snapshot: routes, challenge tokens and vault certificates,
// each again only when a key it depends on changed.

const options = { reservedPorts: [80] };

function setup(entries: Record<string, string>) {
  const store = new EntryStore();
  store.replace(new Map(Object.entries(entries)));
  const vaultReads: Entries[] = [];
  const inputs = new ControllerInputs({
    parseOptions: options,
    envChallenges: { ACME_CHALLENGE_envtoken: 'envtoken.thumb' },
    vaultCerts: (certs) => {
      vaultReads.push(certs);
      return { certs: [...certs].map(([key, pem]) => ({ source: { kind: 'vault' as const, ref: key }, pem })), rejected: [] };
    },
  });
  let revision = 0;
  const read = () => inputs.read(store.seal(String(++revision)));
  return { store, read, vaultReads };
}

const base = {
  'services/web/virtual_hosts': 'web.test',
  'services/web/upstreams/web-1': '10.0.0.1:80',
  'certs/site': 'PEM',
  'acme/challenges/tok': 'tok.thumb',
  'acme/challenges/bad token': 'x',
};

describe('ControllerInputs', () => {
  it('reads routes, challenges (etcd and environment) and the vault on the first snapshot, from their own keys', () => {
    const { read, vaultReads } = setup(base);
    const inputs = read();
    expect(inputs.parsed).toEqual(parseEntries(new Map(Object.entries(base)), options));
    expect([...inputs.challenges]).toEqual([
      ['envtoken', 'envtoken.thumb'],
      ['tok', 'tok.thumb'],
    ]);
    expect(inputs.challengeRejections.map((r) => r.key)).toEqual(['acme/challenges/bad token']);
    expect(vaultReads.map((r) => [...r.keys()])).toEqual([['certs/site']]);
    expect(inputs.vault.certs).toHaveLength(1);
  });

  it('an instance change reads neither the challenges nor the vault again: the same objects come back', () => {
    const { store, read, vaultReads } = setup(base);
    const first = read();
    store.set('services/web/upstreams/web-2', '10.0.0.2:80');
    const second = read();
    expect(second.parsed.state.http[0]!.upstreams).toHaveLength(2);
    expect(second.challenges).toBe(first.challenges);
    expect(second.challengeRejections).toBe(first.challengeRejections);
    expect(second.vault).toBe(first.vault);
    expect(vaultReads).toHaveLength(1);
  });

  it('reads what changed: a token, a certificate; and everything after a fresh read', () => {
    const { store, read, vaultReads } = setup(base);
    const first = read();
    store.set('acme/challenges/new', 'new.thumb');
    const second = read();
    expect(second.challenges.get('new')).toBe('new.thumb');
    expect(second.vault).toBe(first.vault);
    expect(second.parsed).toBe(first.parsed);

    store.set('certs/other', 'PEM2');
    const third = read();
    expect(vaultReads.map((r) => r.size)).toEqual([1, 2]);
    expect(third.challenges).toBe(second.challenges);

    store.replace(store.copy());
    const fourth = read();
    expect(vaultReads).toHaveLength(3);
    expect(fourth.parsed).toEqual(third.parsed);
    expect(fourth.challenges).not.toBe(third.challenges);
  });
});
