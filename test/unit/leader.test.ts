import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EtcdFailure } from '../../src/etcd/errors.js';
import type { KvLease, KvStore } from '../../src/etcd/store.js';
import { createLogger } from '../../src/log.js';
import { LeaderElection } from '../../src/acme/lease-election.js';

// The ACME leader election against a fake keyspace and a fake clock: it leads once its claim
// holds the key, follows the key through snapshots, and ignores snapshots older than its claim
// (one taken before the claim would otherwise say the key is gone and end leading).

afterEach(() => {
  vi.useRealTimers();
});

function fakeStore(claims: { created: boolean; holder: string | undefined; revision: string }[]) {
  const lost: ((failure: EtcdFailure) => void)[] = [];
  const lease: KvLease = {
    put: async () => undefined,
    claim: async () => claims.shift() ?? { created: false, holder: 'someone-else', revision: '999' },
    revoke: async () => undefined,
    release: () => undefined,
    onLost: (listener) => void lost.push(listener),
    onRenewed: () => undefined,
  };
  const store = { lease: () => lease, fencedWrite: async () => ({ succeeded: true, revision: '0' }) } as unknown as KvStore;
  return { store, lost };
}

describe('LeaderElection', () => {
  it('leads after its claim, ignores a snapshot from before the claim, and steps down on a newer one without the key', async () => {
    vi.useFakeTimers();
    const { store } = fakeStore([{ created: true, holder: 'me', revision: '10' }]);
    const changes: boolean[] = [];
    const election = new LeaderElection({
      store,
      key: '/lb/acme/leader',
      id: 'me',
      ttlSeconds: 3,
      logger: createLogger('silent', false),
      onChange: (leading) => changes.push(leading),
    });
    election.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(election.isLeader()).toBe(true);

    election.observe(undefined, '9'); // read before the claim: says nothing about it
    expect(election.isLeader()).toBe(true);
    election.observe('me', '10');
    expect(election.isLeader()).toBe(true);
    election.observe('other', '12'); // someone else holds it now
    expect(election.isLeader()).toBe(false);
    expect(changes).toEqual([true, false]);
    await election.stop();
  });

  it('once no longer leading, campaigns at once when a snapshot shows the key gone, even one older than its old claim (a restored cluster)', async () => {
    vi.useFakeTimers();
    const { store } = fakeStore([
      { created: true, holder: 'me', revision: '10' },
      { created: true, holder: 'me', revision: '4' },
    ]);
    const election = new LeaderElection({
      store,
      key: '/lb/acme/leader',
      id: 'me',
      ttlSeconds: 30,
      logger: createLogger('silent', false),
      onChange: () => undefined,
    });
    election.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(election.isLeader()).toBe(true);
    election.observe('other', '12');
    expect(election.isLeader()).toBe(false);
    election.observe(undefined, '3'); // revisions went back: the cluster was restored
    await vi.advanceTimersByTimeAsync(0);
    expect(election.isLeader()).toBe(true);
    await election.stop();
  });
});
