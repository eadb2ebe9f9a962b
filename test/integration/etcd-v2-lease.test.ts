import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EtcdFailure } from '../../src/etcd/errors.js';
import { V2Store } from '../../src/etcd/v2-store.js';
import { startEtcd, v2Admin, type EtcdServer } from '../support/etcd.js';
import { etcdConnection } from '../support/etcd-connection.js';
import { keyPath, v2Json, v2Request, type V2KeyReply } from '../support/etcd-v2.js';
import { waitFor } from '../support/wait.js';

// Leases over etcd v2, which has none: TTL keys refreshed every TTL/3 (refresh=true, checked
// with prevValue), against a real etcd 3.4 with --enable-v2.

let etcd: EtcdServer;
let store: V2Store;
const prefix = `/edgelb-lease-${process.pid}`;

beforeAll(async () => {
  etcd = await startEtcd({ enableV2: true });
  store = new V2Store(etcdConnection(etcd.endpoint, { api: 'v2' }));
});

afterAll(async () => {
  store?.close();
  await etcd?.stop();
});

async function node(key: string): Promise<{ value?: string; expiration?: string } | undefined> {
  const reply = await v2Request(v2Admin(etcd), 'GET', keyPath(key));
  return reply.status === 200 ? (v2Json<V2KeyReply>(reply)?.node as { value?: string; expiration?: string }) : undefined;
}

/** Waits until `key`'s expiration moved past `after` (the lease refreshed it). */
async function refreshedAfter(key: string, after: string | undefined): Promise<string> {
  return waitFor(
    async () => {
      const expiration = (await node(key))?.expiration;
      return expiration !== undefined && expiration !== after && expiration;
    },
    { timeoutMs: 5000, intervalMs: 50, what: `${key} to be refreshed` },
  );
}

describe('V2Lease', () => {
  it('keeps its keys alive past the TTL, survives a later key deleted by someone else, and ends when its key is taken over', async () => {
    const lease = store.lease(1);
    const lost: EtcdFailure[] = [];
    let renewals = 0;
    lease.onLost((failure) => lost.push(failure));
    lease.onRenewed(() => renewals++);
    await lease.put(`${prefix}/replicas/a`, 'announce');
    await lease.put(`${prefix}/acks/t1/a`, 'ack');

    // Three refreshes of a 1 s TTL: the keys outlive it.
    let expiration = (await node(`${prefix}/replicas/a`))?.expiration;
    for (let i = 0; i < 3; i++) expiration = await refreshedAfter(`${prefix}/replicas/a`, expiration);
    expect(await node(`${prefix}/acks/t1/a`)).toMatchObject({ value: 'ack' });
    // etcd shows a refresh before the lease has read etcd's answer to it: its callback follows.
    await waitFor(() => renewals >= 3, { timeoutMs: 2000, intervalMs: 20, what: 'three renewals reported' });

    // The ACME leader removes a finished token's acknowledgements: the lease goes on.
    await v2Request(v2Admin(etcd), 'DELETE', keyPath(`${prefix}/acks/t1`), { query: { recursive: 'true' } });
    expiration = await refreshedAfter(`${prefix}/replicas/a`, expiration);
    expiration = await refreshedAfter(`${prefix}/replicas/a`, expiration);
    expect(lost).toEqual([]);

    // Someone else's value in its key: never extended, the lease is over.
    await v2Request(v2Admin(etcd), 'PUT', keyPath(`${prefix}/replicas/a`), { form: { value: 'someone-else' } });
    await waitFor(() => lost.length > 0, { timeoutMs: 5000, what: 'the lease to end' });
    expect((await node(`${prefix}/replicas/a`))?.value).toBe('someone-else');
    await lease.revoke();
    // Revoking deletes only what still holds this lease's values.
    expect((await node(`${prefix}/replicas/a`))?.value).toBe('someone-else');
  });

  it('claims a key once: the second claimant sees the holder; revoking hands it over', async () => {
    const first = store.lease(2);
    const second = store.lease(2);
    const a = await first.claim(`${prefix}/leader`, 'id-a');
    const b = await second.claim(`${prefix}/leader`, 'id-b');
    expect(a).toMatchObject({ created: true, holder: 'id-a' });
    expect(b).toMatchObject({ created: false, holder: 'id-a' });
    expect(BigInt(b.revision)).toBeGreaterThanOrEqual(BigInt(a.revision));
    await first.revoke();
    expect(await node(`${prefix}/leader`)).toBeUndefined();
    expect(await second.claim(`${prefix}/leader`, 'id-b')).toMatchObject({ created: true, holder: 'id-b' });
    await second.revoke();
  });

  it('ends when its first key (what the owner announced) is deleted by someone else', async () => {
    const lease = store.lease(1);
    const lost: EtcdFailure[] = [];
    lease.onLost((failure) => lost.push(failure));
    await lease.put(`${prefix}/announce-b`, 'b');
    await lease.put(`${prefix}/acks/t2/b`, 'ack');
    await v2Request(v2Admin(etcd), 'DELETE', keyPath(`${prefix}/announce-b`));
    await waitFor(() => lost.length > 0, { timeoutMs: 5000, what: 'the lease to end' });
    await lease.revoke();
  });

  it('a released lease lets its keys expire within the TTL', async () => {
    const lease = store.lease(1);
    await lease.put(`${prefix}/gone-soon`, 'x');
    lease.release();
    await waitFor(async () => (await node(`${prefix}/gone-soon`)) === undefined, { timeoutMs: 5000, what: 'the key to expire' });
  });
});
