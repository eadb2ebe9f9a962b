import { describe, expect, it } from 'vitest';
import { fixedSnapshot, groupOf } from '../../src/model/snapshot.js';
import { EntryStore } from '../../src/sources/entry-store.js';

// The etcd source's live keys: read by group or directory, and which groups changed between
// two snapshots, without copying or scanning the whole keyspace.

const listing = new Map([
  ['services/web/virtual_hosts', 'web.test'],
  ['services/web/upstreams/web-1', '10.0.0.1:80'],
  ['services/webx/upstreams/x-1', '10.0.0.2:80'],
  ['tcp-services/db/external_port', '5432'],
  ['certs/site', 'PEM'],
  ['acme/challenges/tok', 'tok.thumb'],
  ['acme/state/web.test', '{}'],
  ['acme/leader', 'me'],
]);

function storeWith(entries: ReadonlyMap<string, string> = listing): EntryStore {
  const store = new EntryStore();
  store.replace(entries);
  return store;
}

describe('groupOf', () => {
  it.each([
    ['services/web/upstreams/web-1', 'services/web'],
    ['services/web/virtual_hosts', 'services/web'],
    ['services/web', 'services/web'],
    ['services', 'services'],
    ['tcp-services/db/external_port', 'tcp-services/db'],
    ['acme/challenges/tok', 'acme/challenges'],
    ['acme/acks/tok/replica', 'acme/acks'],
    ['acme/leader', 'acme/leader'],
    ['certs/site', 'certs'],
    ['certs/acme-web.test', 'certs'],
    ['other', 'other'],
  ])('%s is in group %s', (key, group) => {
    expect(groupOf(key)).toBe(group);
  });
});

describe('EntryStore', () => {
  it('reads one key, one group, or one directory', () => {
    const snapshot = storeWith().seal('10');
    expect(snapshot.revision).toBe('10');
    expect(snapshot.get('services/web/upstreams/web-1')).toBe('10.0.0.1:80');
    expect(snapshot.get('services/web/upstreams/nope')).toBeUndefined();
    expect([...snapshot.group('services/web').keys()]).toEqual(['services/web/virtual_hosts', 'services/web/upstreams/web-1']);
    expect([...snapshot.under('acme/challenges/')]).toEqual([['acme/challenges/tok', 'tok.thumb']]);
    expect([...snapshot.under('acme/').keys()].sort()).toEqual(['acme/challenges/tok', 'acme/leader', 'acme/state/web.test']);
    expect([...snapshot.under('certs/').keys()]).toEqual(['certs/site']);
    expect([...snapshot.under('services/web/').keys()]).toHaveLength(2);
    expect(new Map(snapshot.entries)).toEqual(listing);
  });

  it('says which groups changed since an earlier snapshot, over several batches', () => {
    const store = storeWith();
    const first = store.seal('10');
    store.set('services/web/upstreams/web-2', '10.0.0.3:80');
    const second = store.seal('11');
    store.delete('services/webx/upstreams/x-1');
    store.set('certs/site', 'PEM2');
    const third = store.seal('12');
    expect(second.changedSince(first)).toEqual(new Set(['services/web']));
    expect(third.changedSince(second)).toEqual(new Set(['services/webx', 'certs']));
    expect(third.changedSince(first)).toEqual(new Set(['services/web', 'services/webx', 'certs']));
    expect(third.changedSince(third)).toEqual(new Set());
    expect(store.size).toBe(listing.size);
  });

  it('does not count a put of the same value, nor a delete of a key that is not there', () => {
    const store = storeWith();
    const first = store.seal('10');
    store.set('services/web/virtual_hosts', 'web.test');
    store.delete('services/nothing/upstreams/a');
    expect(store.seal('11').changedSince(first)).toEqual(new Set());
  });

  it('deletes a v2 directory with everything under it, and only that', () => {
    const store = storeWith();
    const first = store.seal('10');
    store.deleteDir('services/web');
    const second = store.seal('11');
    expect(second.group('services/web').size).toBe(0);
    expect(second.get('services/webx/upstreams/x-1')).toBe('10.0.0.2:80');
    expect(second.changedSince(first)).toEqual(new Set(['services/web']));

    store.deleteDir('services');
    store.deleteDir('acme/challenges');
    const third = store.seal('12');
    expect([...third.entries.keys()].sort()).toEqual(['acme/leader', 'acme/state/web.test', 'certs/site', 'tcp-services/db/external_port']);
    expect(third.changedSince(second)).toEqual(new Set(['services/webx', 'acme/challenges']));

    store.deleteDir('');
    const fourth = store.seal('13');
    expect(fourth.entries.size).toBe(0);
    expect(fourth.changedSince(third)).toBeUndefined();
  });

  it('knows nothing about what changed across a fresh read', () => {
    const store = storeWith();
    const first = store.seal('10');
    store.replace(new Map([['services/web/virtual_hosts', 'web.test']]));
    const second = store.seal('20');
    store.set('services/web/upstreams/a', '10.0.0.9:80');
    const third = store.seal('21');
    expect(second.changedSince(first)).toBeUndefined();
    expect(third.changedSince(first)).toBeUndefined();
    expect(third.changedSince(second)).toEqual(new Set(['services/web']));
  });

  it('forgets changes older than its log, and knows nothing about snapshots from elsewhere', () => {
    const store = storeWith();
    const first = store.seal('1');
    for (let i = 0; i < 1100; i++) {
      store.set('services/web/upstreams/web-1', `10.0.${i % 250}.${i % 200}:80`);
      store.seal(String(i + 2));
    }
    store.set('services/webx/upstreams/x-1', '10.9.9.9:80');
    const last = store.seal('2000');
    expect(last.changedSince(first)).toBeUndefined();
    expect(last.changedSince(undefined)).toBeUndefined();
    expect(last.changedSince(fixedSnapshot(new Map()))).toBeUndefined();
    expect(last.changedSince(storeWith().seal('2000'))).toBeUndefined();
  });

  it('throws when a snapshot is read after a newer one arrived, its entries too', () => {
    const store = storeWith();
    const first = store.seal('10');
    const entries = first.entries;
    expect(entries.get('services/web/virtual_hosts')).toBe('web.test');
    expect([...entries.keys()]).toHaveLength(listing.size);
    store.set('services/web/upstreams/web-2', '10.0.0.3:80');
    store.seal('11');
    expect(() => first.get('services/web/virtual_hosts')).toThrow(/revision 10 read after a newer one arrived/);
    expect(() => first.group('services/web')).toThrow(/read after a newer one arrived/);
    expect(() => first.under('certs/')).toThrow(/read after a newer one arrived/);
    expect(() => entries.size).toThrow(/read after a newer one arrived/);
    expect(() => [...entries]).toThrow(/read after a newer one arrived/);
  });

  it('hands out groups as copies that later changes do not touch', () => {
    const store = storeWith();
    const group = store.seal('10').group('services/web');
    store.set('services/web/upstreams/web-2', '10.0.0.3:80');
    expect(group.has('services/web/upstreams/web-2')).toBe(false);
  });
});
