import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EtcdClient } from '../../src/etcd/client.js';
import type { EtcdApi } from '../../src/etcd/store.js';
import { fixedSnapshot } from '../../src/model/snapshot.js';
import { PeerRegistration } from '../../src/sources/peer-registration.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { etcdClient } from '../support/etcd-connection.js';
import { capturingLogger } from '../support/log-capture.js';
import { waitFor } from '../support/wait.js';

// Issue 15: a replica's `peers/<name>` registration against a real etcd, over both APIs, when
// another address holds the name: another replica configured with the same name (it must not be
// taken from it: on v2 the two would take it from each other for ever, every flip a reload of
// every replica), or this replica's own earlier run, killed before it deregistered.

let etcd: EtcdServer;
const clients: EtcdClient[] = [];
const registrations: PeerRegistration[] = [];
const TTL = 1;

beforeAll(async () => {
  etcd = await startEtcd({ enableV2: true });
});

afterAll(async () => {
  await Promise.all(registrations.map((r) => r.stop()));
  for (const client of clients) client.close();
  await etcd?.stop();
});

function storeOf(api: EtcdApi) {
  const client = etcdClient(etcd.endpoint, { api });
  clients.push(client);
  return client.store(api);
}

function register(api: EtcdApi, prefix: string, address: string) {
  const { logger, logs } = capturingLogger();
  const registration = new PeerRegistration({ store: storeOf(api), prefix, peer: { name: 'lb', address }, logger, ttlSeconds: TTL });
  registrations.push(registration);
  registration.start();
  return { registration, logs, count: (event: string) => logs.filter((l) => l.event === event).length };
}

describe.each(['v2', 'v3'] as const)('PeerRegistration over etcd %s', (api) => {
  const store = () => storeOf(api);

  it('leaves the name to the replica that holds it, says so once, and never makes it register again', async () => {
    const prefix = `/peer-reg-dup-${api}-${process.pid}`;
    const key = `${prefix}/peers/lb`;
    const first = register(api, prefix, '127.0.0.1:7001');
    await waitFor(() => first.count('peers.registered') === 1, { timeoutMs: 5000, what: 'the first replica to register' });
    const second = register(api, prefix, '127.0.0.1:7002');
    // Four attempts of the second (500 ms, 1 s, 2 s apart: 3.5 s, ten of the first's v2 refreshes at TTL/3).
    await waitFor(() => second.count('peers.name_taken') >= 4, { timeoutMs: 10_000, what: 'the second replica to find the name taken four times' });
    const taken = second.logs.filter((l) => l.event === 'peers.name_taken');
    expect(taken.filter((l) => l.level === 50)).toHaveLength(1);
    expect(taken[0]).toMatchObject({ level: 50, holder: '127.0.0.1:7001', address: '127.0.0.1:7002' });
    expect(await store().get(key)).toBe('127.0.0.1:7001');
    expect(first.count('peers.registration_lost')).toBe(0);
    expect(second.count('peers.registered')).toBe(0);
    // The first stops (deregisters): the name is free, the second registers.
    await first.registration.stop();
    await waitFor(async () => (await store().get(key)) === '127.0.0.1:7002', { timeoutMs: 15_000, what: 'the second replica to register' });
    await second.registration.stop();
    expect(await store().get(key)).toBeUndefined();
  }, 30_000);

  it('registers again when its key is deleted by someone else while its lease lives on', async () => {
    const prefix = `/peer-reg-deleted-${api}-${process.pid}`;
    const key = `${prefix}/peers/lb`;
    const now = register(api, prefix, '127.0.0.1:7004');
    await waitFor(() => now.count('peers.registered') === 1, { timeoutMs: 5000, what: 'the replica to register' });
    await store().delete(key);
    // The watch's next snapshot, after the deletion: the key is missing from it.
    now.registration.offer(fixedSnapshot(new Map(), String(Number.MAX_SAFE_INTEGER)));
    await waitFor(async () => (await store().get(key)) === '127.0.0.1:7004', { timeoutMs: 5000, what: 'the registration to be written again' });
    // v2 may find it first, at its next refresh: either way, once.
    const noticed = () => now.count('peers.registration_deleted') + now.count('peers.registration_lost');
    expect(noticed()).toBe(1);
    // A snapshot from before the registration (or one holding it) changes nothing.
    await waitFor(() => now.count('peers.registered') === 2, { timeoutMs: 5000, what: 'the second registration' });
    now.registration.offer(fixedSnapshot(new Map(), '1'));
    now.registration.offer(fixedSnapshot(new Map([['peers/lb', '127.0.0.1:7004']]), String(Number.MAX_SAFE_INTEGER)));
    expect(noticed()).toBe(1);
  }, 30_000);

  it("takes over its own earlier run's registration (same address), killed before it deregistered", async () => {
    const prefix = `/peer-reg-restart-${api}-${process.pid}`;
    const key = `${prefix}/peers/lb`;
    // The earlier run: its lease is no longer renewed (killed); its key, and a witness key on the
    // same lease (v3) or TTL (v2), wait for the TTL.
    const earlier = store().lease(TTL);
    await earlier.put(key, '127.0.0.1:7003');
    await earlier.put(`${prefix}/witness`, 'x');
    earlier.release();
    const now = register(api, prefix, '127.0.0.1:7003');
    await waitFor(() => now.count('peers.registered') === 1, { timeoutMs: 5000, what: 'the replica to register' });
    await waitFor(async () => (await store().get(`${prefix}/witness`)) === undefined, { timeoutMs: 10_000, what: "the earlier run's lease to expire" });
    expect(await store().get(key)).toBe('127.0.0.1:7003');
    expect(now.count('peers.registration_lost')).toBe(0);
  }, 30_000);
});
