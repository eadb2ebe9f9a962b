import { capturingLogger } from '../support/log-capture.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { KvStore } from '../../src/etcd/store.js';
import { SnapshotParser } from '../../src/model/incremental.js';
import { EntryStore } from '../../src/sources/entry-store.js';
import { AcmeManager } from '../../src/acme/manager.js';

// What the ACME manager takes in, without starting it (no leader, no CA): its domains from the
// parsed routes it is handed (never a parse of its own), its stored state from its own keys,
// read again only when one of them changed.

const { logger, logs } = capturingLogger();

function manager(): AcmeManager {
  return new AcmeManager({ store: {} as KvStore, prefix: '/lb', logger, email: 'ops@example.com', directoryUrl: 'https://acme.invalid/dir' });
}

function keyspace(entries: Record<string, string>) {
  const store = new EntryStore();
  store.replace(new Map(Object.entries(entries)));
  const parser = new SnapshotParser({ reservedPorts: [] });
  let revision = 0;
  const next = () => {
    const snapshot = store.seal(String(++revision));
    return { snapshot, routes: parser.parse(snapshot).state };
  };
  return { store, next };
}

const base = {
  'services/web/virtual_hosts': 'web.example.com',
  'services/web/acme': 'true',
  'services/web/upstreams/a': '10.0.0.1:80',
  'services/api/virtual_hosts': 'api.example.com',
  'services/api/upstreams/a': '10.0.0.2:80',
};

afterEach(() => {
  vi.useRealTimers();
  logs.length = 0;
});

describe('AcmeManager inputs', () => {
  it('takes its domains from the routes it is handed, looking only at the services that changed', () => {
    const acme = manager();
    const { store, next } = keyspace(base);
    acme.offerServices(next().routes);
    expect(acme.status().domains.map((d) => d.domain)).toEqual(['web.example.com']);

    store.set('services/api/upstreams/b', '10.0.0.3:80');
    acme.offerServices(next().routes);
    store.set('services/api/acme', 'true');
    acme.offerServices(next().routes);
    expect(acme.status().domains.map((d) => d.domain)).toEqual(['api.example.com', 'web.example.com']);

    store.delete('services/web/acme');
    acme.offerServices(next().routes);
    expect(acme.status().domains.map((d) => d.domain)).toEqual(['api.example.com']);
    expect(logs.filter((l) => l.msg === 'ACME domains changed').map((l) => l.domains)).toEqual([
      ['web.example.com'],
      ['api.example.com', 'web.example.com'],
      ['api.example.com'],
    ]);
  });

  it('reads its stored state from its own keys, and not again while none of them changed', async () => {
    vi.useFakeTimers();
    const acme = manager();
    const state = {
      domain: 'web.example.com',
      status: 'failing',
      failures: 2,
      updatedAt: '2026-01-01T00:00:00.000Z',
      lastError: { at: '2026-01-01T00:00:00.000Z', message: 'boom' },
    };
    const { store, next } = keyspace({ ...base, 'acme/state/web.example.com': JSON.stringify(state) });
    const first = next();
    acme.offerServices(first.routes);
    const firstReads = vi.spyOn(first.snapshot, 'under');
    acme.offer(first.snapshot);
    await vi.advanceTimersByTimeAsync(50);
    expect(acme.status().domains[0]!.state).toMatchObject({ status: 'failing', failures: 2 });
    expect(firstReads.mock.calls.map(([dir]) => dir).sort()).toEqual(['acme/', 'acme/state/', 'certs/acme-']);

    store.set('services/api/upstreams/b', '10.0.0.3:80');
    const second = next();
    const secondReads = vi.spyOn(second.snapshot, 'under');
    acme.offer(second.snapshot);
    await vi.advanceTimersByTimeAsync(50);
    expect(secondReads).not.toHaveBeenCalled();

    store.set('acme/state/web.example.com', JSON.stringify({ ...state, failures: 3 }));
    const third = next();
    acme.offer(third.snapshot);
    await vi.advanceTimersByTimeAsync(50);
    expect(acme.status().domains[0]!.state).toMatchObject({ failures: 3 });
  });
});
