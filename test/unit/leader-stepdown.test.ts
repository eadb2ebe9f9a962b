import { capturingLogger } from '../support/log-capture.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Election, ElectionOptions } from '../../src/acme/election.js';
import { LeaderElection } from '../../src/acme/lease-election.js';
import { AcmeManager } from '../../src/acme/manager.js';
import type { EtcdFailure } from '../../src/etcd/errors.js';
import type { KvFence, KvLease, KvStore } from '../../src/etcd/store.js';
import { createLogger } from '../../src/log.js';
import { SnapshotParser } from '../../src/model/incremental.js';
import { EntryStore } from '../../src/sources/entry-store.js';

// Leader step-down, with fakes and fake timers: a manager that stops leading mid-order stops
// working on it (no CA call, no write) and starts nothing more, while the replica that leads now
// orders; and the v2 election steps down when its lease is lost and leads again with a new claim.

afterEach(() => {
  vi.useRealTimers();
});

/** An election the test decides: `lead(true|false)` as etcd would. */
class FakeElection implements Election {
  leading = false;
  private onChange: ((leading: boolean) => void) | undefined;

  constructor(readonly id: string) {}

  make = (options: ElectionOptions): Election => {
    this.onChange = options.onChange;
    return this;
  };

  lead(leading: boolean): void {
    this.leading = leading;
    this.onChange?.(leading);
  }

  start(): void {}
  isLeader(): boolean {
    return this.leading;
  }
  fence(): KvFence | undefined {
    return this.leading ? { key: '/lb/acme/leader', value: this.id } : undefined;
  }
  follow(): void {}
  async stop(): Promise<void> {
    this.leading = false;
  }
}

/** A keyspace that records the leader's calls; reading the account key waits until released. */
function fakeStore() {
  const calls: string[] = [];
  const pending: (() => void)[] = [];
  const store = {
    api: 'v3',
    list: async () => ({ entries: new Map(), revision: '1' }),
    get: (key: string) => {
      calls.push(`get ${key}`);
      return new Promise<undefined>((resolve) => pending.push(() => resolve(undefined)));
    },
    fencedWrite: async (_fence: KvFence, ops: readonly { key: string }[]) => {
      calls.push(`write ${ops.map((o) => o.key).join(',')}`);
      return { succeeded: true, revision: '2' };
    },
  } as unknown as KvStore;
  return {
    store,
    calls,
    release: () => {
      for (const resolve of pending.splice(0)) resolve();
    },
  };
}

function routes() {
  const entries = new EntryStore();
  entries.replace(
    new Map([
      ['services/web/virtual_hosts', 'web.example.com'],
      ['services/web/acme', 'true'],
      ['services/web/upstreams/a', '10.0.0.1:80'],
    ]),
  );
  return new SnapshotParser({ reservedPorts: [] }).parse(entries.seal('1')).state;
}

function startReplica(id: string) {
  const { logger, logs } = capturingLogger();
  const election = new FakeElection(id);
  const etcd = fakeStore();
  const manager = new AcmeManager({
    store: etcd.store,
    prefix: '/lb',
    logger,
    email: 'ops@example.com',
    directoryUrl: 'https://acme.invalid/dir',
    id,
    election: election.make,
  });
  manager.offerServices(routes());
  manager.start();
  return { manager, election, etcd, logs };
}

describe('ACME leader step-down', () => {
  it('a leader that loses the election mid-order stops issuing and writing; the new leader orders', async () => {
    vi.useFakeTimers();
    const a = startReplica('a');
    const b = startReplica('b');
    a.election.lead(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(a.manager.status().domains[0]).toMatchObject({ domain: 'web.example.com', running: true });
    expect(a.etcd.calls).toEqual(['get /lb/acme/account']); // the attempt's first step: the account key

    // A's lease is gone (expired, or another replica won): it steps down while reading the account.
    a.election.lead(false);
    a.etcd.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.logs.some((l) => l.msg === 'ACME: attempt interrupted; the pending order is resumed later')).toBe(true);
    expect(a.manager.status()).toMatchObject({ leader: false, domains: [{ running: false }] });
    // Nothing more from A: no write (no account key created), no new attempt, however long it waits.
    await vi.advanceTimersByTimeAsync(3 * 3600_000);
    expect(a.etcd.calls).toEqual(['get /lb/acme/account']);
    expect(a.logs.filter((l) => l.msg === 'ACME: ordering a certificate')).toHaveLength(1);

    // B leads now and orders.
    b.election.lead(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(b.manager.status()).toMatchObject({ leader: true, domains: [{ running: true }] });
    expect(b.etcd.calls).toEqual(['get /lb/acme/account']);

    await a.manager.stop();
    b.etcd.release();
    await b.manager.stop();
  });

  it('a follower never orders', async () => {
    vi.useFakeTimers();
    const a = startReplica('a');
    await vi.advanceTimersByTimeAsync(3600_000);
    expect(a.etcd.calls).toEqual([]);
    expect(a.manager.status()).toMatchObject({ leader: false, domains: [{ running: false }] });
    await a.manager.stop();
  });
});

describe('LeaderElection (v2) step-down', () => {
  it('a lost lease ends leading at once; the next claim leads again, and a key held by another replica follows it', async () => {
    vi.useFakeTimers();
    let holder: string | undefined;
    const lost: ((failure: EtcdFailure) => void)[] = [];
    const lease = (): KvLease => ({
      put: async () => undefined,
      claim: async (_key, value) => {
        const created = holder === undefined;
        holder ??= value;
        return { created, holder, revision: '10' };
      },
      revoke: async () => undefined,
      release: () => undefined,
      onLost: (listener) => void lost.push(listener),
      onRenewed: () => undefined,
    });
    const store = { lease, fencedWrite: async () => ({ succeeded: true, revision: '0' }) } as unknown as KvStore;
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

    // The key expired (etcd lost us) and another replica claimed it first.
    holder = 'other';
    lost.at(-1)!(new Error('expired') as EtcdFailure);
    expect(election.isLeader()).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(election.isLeader()).toBe(false);
    expect(changes).toEqual([true, false]);

    // The other replica's key goes away: the next claim is ours.
    holder = undefined;
    await vi.advanceTimersByTimeAsync(1000);
    expect(election.isLeader()).toBe(true);
    expect(changes).toEqual([true, false, true]);
    await election.stop();
  });
});
