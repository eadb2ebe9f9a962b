import { logSink } from '../support/log-capture.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ApiDecision } from '../../src/etcd/choose-api.js';
import type { EtcdConnection } from '../../src/etcd/connection.js';
import { EtcdFailure } from '../../src/etcd/errors.js';
import type { EtcdApi, KvChange, KvStore, KvWatchHandlers } from '../../src/etcd/store.js';
import { createLogger } from '../../src/log.js';
import { EtcdSource, type Snapshot, type SourceClient } from '../../src/sources/etcd.js';

// The source's state machine with a fake keyspace per API and fake timers: snapshots from changes
// (a v2 directory delete takes everything under it), resumption vs re-reading, backoff, and
// ETCD_API=auto watching both keyspaces until the first write decides.

class FakeStore implements KvStore {
  readonly endpoints = ['http://fake:2379'];
  entries = new Map<string, string>();
  revision = 10;
  lists = 0;
  failNextList: EtcdFailure | undefined;
  handlers: KvWatchHandlers | undefined;
  watchedFrom: string | undefined;
  constructor(readonly api: EtcdApi) {}

  async list(): Promise<{ entries: Map<string, string>; revision: string }> {
    this.lists++;
    const failure = this.failNextList;
    this.failNextList = undefined;
    if (failure) throw failure;
    return { entries: new Map(this.entries), revision: String(this.revision) };
  }

  async watch(_prefix: string, revision: string, handlers: KvWatchHandlers) {
    this.handlers = handlers;
    this.watchedFrom = revision;
    return {
      cancel: async () => {
        if (this.handlers === handlers) this.handlers = undefined;
      },
    };
  }

  /** A change arriving on the watch. */
  emit(changes: KvChange[]): void {
    this.revision++;
    this.handlers!.onChanges(changes, String(this.revision));
  }

  get = async () => undefined;
  put = async () => undefined;
  delete = async () => undefined;
  lease = () => {
    throw new Error('not used');
  };
  fencedWrite = async () => ({ succeeded: true, revision: '0' });
  close = () => undefined;
}

class FakeClient implements SourceClient {
  readonly connection: EtcdConnection = { endpoints: ['http://fake:2379'], endpointsFrom: 'default', api: 'auto', tls: undefined, auth: undefined };
  readonly stores = { v3: new FakeStore('v3'), v2: new FakeStore('v2') };
  decision: ApiDecision = { api: 'v3', reason: 'test' };
  chosen: EtcdApi | undefined;

  get api() {
    return this.chosen;
  }
  get reason() {
    return this.chosen && 'test';
  }
  async choose(): Promise<ApiDecision> {
    if (this.chosen) return { api: this.chosen, reason: 'decided' };
    if (this.decision.api) this.chosen = this.decision.api;
    return this.decision;
  }
  store(api: EtcdApi): KvStore {
    return this.stores[api];
  }
  decide(api: EtcdApi): void {
    this.chosen ??= api;
  }
}

const flush = () => vi.advanceTimersByTimeAsync(0);

/** The next `count` reads are refused as a wrong password would be. */
function refuseListings(store: FakeStore, count: number): void {
  let refusals = count;
  const list = store.list.bind(store);
  store.list = async () => {
    if (refusals-- > 0) throw new EtcdFailure('auth', 'authentication failed');
    return list();
  };
}

function startSource(client: FakeClient) {
  const snapshots: { revision: string; entries: Record<string, string> }[] = [];
  const logs: Record<string, unknown>[] = [];
  const sink = logSink(logs);
  const source = new EtcdSource({
    client,
    prefix: '/lb',
    logger: createLogger('debug', false, sink),
    onSnapshot: (s: Snapshot) => snapshots.push({ revision: s.revision, entries: Object.fromEntries(s.entries) }),
  });
  source.start();
  return { source, snapshots, logs, last: () => snapshots[snapshots.length - 1]! };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('EtcdSource', () => {
  it('emits the listing, then one snapshot per batch of changes; a directory delete takes everything under it', async () => {
    vi.useFakeTimers();
    const client = new FakeClient();
    client.decision = { api: 'v2', reason: 'test' };
    const v2 = client.stores.v2;
    v2.entries = new Map([
      ['services/web/virtual_hosts', 'a.test'],
      ['services/web/upstreams/web-1', '10.0.0.1:80'],
      ['services/webx/virtual_hosts', 'x.test'],
    ]);
    const { source, snapshots, last } = startSource(client);
    await flush();
    expect(snapshots).toHaveLength(1);
    expect(v2.watchedFrom).toBe('10');
    expect(source.status()).toMatchObject({ connected: true, api: 'v2' });

    v2.emit([{ type: 'put', key: 'services/web/upstreams/web-2', value: '10.0.0.2:80' }]);
    expect(last().entries['services/web/upstreams/web-2']).toBe('10.0.0.2:80');
    // The platform's unlink: one recursive delete of services/web; services/webx stays.
    v2.emit([{ type: 'delete', key: 'services/web', dir: true }]);
    expect(last()).toEqual({ revision: '12', entries: { 'services/webx/virtual_hosts': 'x.test' } });
    // A directory made (no change to entries) moves the revision but emits nothing.
    v2.emit([]);
    expect(snapshots).toHaveLength(3);
    await source.stop();
  });

  it('keeps the watch through an interruption (it resumes by itself) and reads again only when the history is lost', async () => {
    vi.useFakeTimers();
    const client = new FakeClient();
    const v3 = client.stores.v3;
    const { source } = startSource(client);
    await flush();
    expect(v3.lists).toBe(1);

    v3.handlers!.onInterrupted!(new EtcdFailure('unreachable', 'member gone'));
    expect(source.status()).toMatchObject({ connected: false, failure: { code: 'unreachable' } });
    v3.handlers!.onConnected!();
    expect(source.status()).toMatchObject({ connected: true, failure: undefined });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(v3.lists).toBe(1);

    v3.handlers!.onLost(new EtcdFailure('history-lost', 'compacted'));
    await vi.advanceTimersByTimeAsync(100);
    expect(v3.lists).toBe(2);
    await source.stop();
  });

  it('reads everything again when a lost watch has not resumed by itself within 5 s', async () => {
    vi.useFakeTimers();
    const client = new FakeClient();
    const v3 = client.stores.v3;
    const { source } = startSource(client);
    await flush();
    v3.handlers!.onInterrupted!(new EtcdFailure('unreachable', 'member gone'));
    await vi.advanceTimersByTimeAsync(4999);
    expect(v3.lists).toBe(1);
    await vi.advanceTimersByTimeAsync(10);
    expect(v3.lists).toBe(2);
    expect(source.status().connected).toBe(true);
    await source.stop();
  });

  it('with a store whose watches resume by themselves (v3), keeps the watch however long it is down; a watch etcd ended reopens from its revision without a read', async () => {
    vi.useFakeTimers();
    const client = new FakeClient();
    const v3 = Object.assign(client.stores.v3, { watchResumes: true });
    const { source, snapshots, last } = startSource(client);
    await flush();
    v3.emit([{ type: 'put', key: 'services/web/virtual_hosts', value: 'a.test' }]);
    expect(v3.watchedFrom).toBe('10');

    v3.handlers!.onInterrupted!(new EtcdFailure('unreachable', 'member gone'));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(v3.lists).toBe(1);
    expect(source.status().connected).toBe(false);
    v3.handlers!.onConnected!();
    expect(source.status().connected).toBe(true);

    // Refused (a permission revoked and granted again): opened again from the last revision, after the backoff.
    v3.handlers!.onLost(new EtcdFailure('permission', 'permission denied'));
    await vi.advanceTimersByTimeAsync(100);
    expect(v3.lists).toBe(1);
    expect(v3.watchedFrom).toBe('11');
    expect(source.status()).toMatchObject({ connected: true, failure: undefined });
    v3.emit([{ type: 'put', key: 'services/web/upstreams/a', value: '10.0.0.1:80' }]);
    expect(last()).toMatchObject({ revision: '12', entries: { 'services/web/virtual_hosts': 'a.test', 'services/web/upstreams/a': '10.0.0.1:80' } });
    expect(snapshots).toHaveLength(3);

    // Only a lost history is read again.
    v3.handlers!.onLost(new EtcdFailure('history-lost', 'compacted'));
    await vi.advanceTimersByTimeAsync(100);
    expect(v3.lists).toBe(2);
    await source.stop();
  });

  it('retries a refused read with a growing backoff and reports the failure until it succeeds', async () => {
    vi.useFakeTimers();
    const client = new FakeClient();
    const v3 = client.stores.v3;
    refuseListings(v3, 3);
    const { source, snapshots } = startSource(client);
    await flush();
    expect(source.status().failure?.code).toBe('auth');
    await vi.advanceTimersByTimeAsync(100); // 2nd attempt after 100 ms
    await vi.advanceTimersByTimeAsync(199);
    expect(snapshots).toHaveLength(0); // 3rd not before 200 ms more
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(400); // 4th after 400 ms succeeds
    expect(snapshots).toHaveLength(1);
    expect(source.status()).toMatchObject({ connected: true, failure: undefined });
    await source.stop();
  });

  it('logs a failure that repeats on every retry once in full, then at debug level, and again after a success', async () => {
    vi.useFakeTimers();
    const client = new FakeClient();
    const v3 = client.stores.v3;
    refuseListings(v3, 3);
    const { source, logs } = startSource(client);
    await vi.advanceTimersByTimeAsync(1000);
    const refused = logs.filter((l) => l.code === 'auth');
    expect(refused.map((l) => l.level)).toEqual([50, 20, 20]);
    expect(refused.map((l) => l.retryInMs)).toEqual([100, 200, 400]);
    expect(logs.filter((l) => l.msg === 'watching etcd')).toHaveLength(1);
    // After a success the same cause is news again.
    v3.handlers!.onLost(new EtcdFailure('auth', 'authentication failed'));
    expect(logs.filter((l) => l.code === 'auth').map((l) => l.level)).toEqual([50, 20, 20, 50]);
    await source.stop();
  });

  it('ignores what a watch of an earlier read says after the source started over', async () => {
    vi.useFakeTimers();
    const client = new FakeClient();
    const v3 = client.stores.v3;
    const { source, snapshots } = startSource(client);
    await flush();
    const stale = v3.handlers!;
    source.resync();
    await flush();
    expect(v3.lists).toBe(2);
    stale.onChanges([{ type: 'put', key: 'services/ghost/virtual_hosts', value: 'ghost.test' }], '5');
    stale.onLost(new EtcdFailure('history-lost', 'late'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(snapshots).toHaveLength(2);
    expect(v3.lists).toBe(2);
    await source.stop();
  });

  it("with ETCD_API=auto, is up only while both keyspaces' watches are, and reads again when one does not come back", async () => {
    vi.useFakeTimers();
    const client = new FakeClient();
    client.decision = { api: undefined, reason: 'empty in both' };
    const { source } = startSource(client);
    await flush();
    const [v3, v2] = [client.stores.v3.handlers!, client.stores.v2.handlers!];
    v3.onInterrupted!(new EtcdFailure('unreachable', 'v3 gone'));
    v2.onInterrupted!(new EtcdFailure('unreachable', 'v2 gone'));
    v2.onConnected!();
    expect(source.status().connected).toBe(false);
    await vi.advanceTimersByTimeAsync(4990);
    expect(client.stores.v3.lists).toBe(1);
    await vi.advanceTimersByTimeAsync(20);
    expect(client.stores.v3.lists).toBe(2);
    expect(client.stores.v2.lists).toBe(2);
    expect(source.status().connected).toBe(true);
    await source.stop();
  });

  it('with ETCD_API=auto and an empty prefix, watches both keyspaces; the first write decides and is read in full', async () => {
    vi.useFakeTimers();
    const client = new FakeClient();
    client.decision = { api: undefined, reason: 'empty in both' };
    const { source, snapshots, last } = startSource(client);
    await flush();
    expect(snapshots).toEqual([{ revision: '10', entries: {} }]);
    expect(client.stores.v3.handlers).toBeDefined();
    expect(client.stores.v2.handlers).toBeDefined();
    expect(source.status()).toMatchObject({ connected: true, api: undefined });

    // The platform makes its directories, then writes a key, through v2.
    client.stores.v2.entries.set('services/web/virtual_hosts', 'a.test');
    client.stores.v2.emit([]);
    await flush();
    expect(client.chosen).toBe('v2');
    expect(client.stores.v3.handlers).toBeUndefined();
    expect(last()).toEqual({ revision: '11', entries: { 'services/web/virtual_hosts': 'a.test' } });
    expect(source.status()).toMatchObject({ connected: true, api: 'v2' });
    await source.stop();
  });
});
