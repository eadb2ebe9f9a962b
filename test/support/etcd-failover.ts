import http from 'node:http';
import https from 'node:https';
import { setMaxListeners } from 'node:events';
import { noop } from 'cockatiel';
import type { EtcdApi } from '../../src/etcd/store.js';
import { newEtcdClient, withEtcdClient } from './etcd-access.js';
import type { EtcdCluster } from './etcd-cluster.js';
import { keyPath, v2Request } from './etcd-v2.js';
import { sleep, waitFor } from './wait.js';

/**
 * What the cluster failover test and benchmark share: which member holds a client's watch, moving
 * the leadership to a chosen member (so a kill hits the case wanted), and a write through the
 * members still running that tells when etcd accepted it (the end of etcd's own leader election,
 * when the leader was the member killed).
 */

/** etcd 3.4's gauges of the watchers a member serves: v3 (mvcc) watchers and v2 store watchers. */
const WATCHER_GAUGE: Readonly<Record<EtcdApi, RegExp>> = {
  v3: /^etcd_debugging_mvcc_watcher_total (\d+)/m,
  v2: /^etcd_debugging_store_watchers (\d+)/m,
};

/**
 * The running members that serve at least one `api` watch, read from each member's /metrics.
 * The test clients never watch, so in a test these are the members edgelb's watch is on.
 */
export async function watchingMembers(cluster: EtcdCluster, api: EtcdApi): Promise<number[]> {
  const counts = await Promise.all(
    cluster.members.map(async (member, index) => {
      if (!member.running) return 0;
      const text = await metricsOf(member.endpoint, cluster).catch(() => '');
      return Number(WATCHER_GAUGE[api].exec(text)?.[1] ?? 0) > 0 ? index : -1;
    }),
  );
  return counts.filter((index) => index >= 0);
}

function metricsOf(endpoint: string, cluster: EtcdCluster): Promise<string> {
  const tls = cluster.adminAccess.tls;
  const url = new URL('/metrics', endpoint);
  const send = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = send(url, { timeout: 2000, agent: false, ...(tls && { ca: tls.ca, cert: tls.cert, key: tls.key }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('metrics timed out')));
    req.on('error', reject);
  });
}

/**
 * Makes member `to` the leader with etcd's MoveLeader (asked of the current leader, which hands
 * over at once instead of an election); returns once the members report `to` as the leader.
 */
export async function moveLeader(cluster: EtcdCluster, to: number): Promise<void> {
  const target = cluster.members[to];
  if (!target?.running) throw new Error(`moveLeader: member ${to} is not running`);
  const leader = await cluster.leaderIndex();
  if (leader === to) return;
  const targetID = await withEtcdClient(target.endpoint, cluster.adminAccess, async (client) => (await client.maintenance.status()).header.member_id);
  await withEtcdClient(cluster.members[leader]!.endpoint, cluster.adminAccess, (client) => client.maintenance.moveLeader({ targetID }));
  await waitFor(async () => (await cluster.leaderIndex()) === to, { timeoutMs: 10_000, intervalMs: 20, what: `member ${to} to lead` });
}

export interface SurvivorWrite {
  /** Epoch ms when the first attempt was sent and when etcd acknowledged one. */
  readonly sentAt: number;
  readonly ackedAt: number;
  /** Attempts started before one was acknowledged. */
  readonly attempts: number;
}

/** A new attempt is started this often while none has been acknowledged. */
const ATTEMPT_EVERY_MS = 25;
/** How long one attempt may wait (a member without a leader holds a write instead of refusing it). */
const ATTEMPT_TIMEOUT_MS = 3000;

/**
 * Writes `key` = `value` (a full etcd key) through the running members only, with `api`, until
 * etcd acknowledges it. While the cluster has no leader a write waits rather than fails, so
 * instead of one attempt after another a new attempt starts every 25 ms, spread over the members: the first acknowledgement comes within about 25 ms plus one
 * round trip of etcd accepting writes again. Attempts sent just after a leader died are lost with
 * it (they wait out their 3 s), later ones are held and committed once a leader is elected, so
 * etcd may record the value several times: harmless, the controller finds nothing changed.
 * A fresh client: a long-lived one could still be backing off from the member just killed.
 */
export async function writeThroughSurvivors(cluster: EtcdCluster, api: EtcdApi, key: string, value: string, timeoutMs = 20_000): Promise<SurvivorWrite> {
  const survivors = cluster.members.filter((m) => m.running).map((m) => m.endpoint);
  if (survivors.length === 0) throw new Error('writeThroughSurvivors: no member is running');
  const client = api === 'v3' ? newEtcdClient(survivors, cluster.adminAccess, { faultHandling: { host: () => noop, global: noop } }) : undefined;
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per attempt while the election lasts
  const attemptOn = async (endpoint: string): Promise<boolean> => {
    try {
      if (client) {
        await client
          .put(key)
          .value(value)
          .options({ deadline: Date.now() + ATTEMPT_TIMEOUT_MS });
        return true;
      }
      const reply = await v2Request({ endpoint, ...cluster.adminAccess }, 'PUT', keyPath(key), {
        form: { value },
        timeoutMs: ATTEMPT_TIMEOUT_MS,
        signal: abort.signal,
      });
      return reply.status === 200 || reply.status === 201;
    } catch {
      return false;
    }
  };
  const sentAt = Date.now();
  let ackedAt: number | undefined;
  let acked: () => void = () => undefined;
  const firstAck = new Promise<void>((resolve) => (acked = resolve));
  let attempts = 0;
  const pending: Promise<unknown>[] = [];
  try {
    while (ackedAt === undefined) {
      if (Date.now() - sentAt > timeoutMs) throw new Error(`etcd did not accept a write through ${survivors.join(', ')} within ${timeoutMs} ms`);
      const endpoint = survivors[attempts % survivors.length]!;
      attempts++;
      pending.push(
        attemptOn(endpoint).then((ok) => {
          if (!ok || ackedAt !== undefined) return;
          ackedAt = Date.now();
          acked();
        }),
      );
      await Promise.race([firstAck, sleep(ATTEMPT_EVERY_MS)]);
    }
    return { sentAt, ackedAt, attempts };
  } finally {
    // v2 attempts still waiting are aborted (and already caught). gRPC calls cannot be aborted:
    // those still waiting end by their deadline, caught too; a client closed under them lets them finish.
    abort.abort();
    client?.close();
    if (!client) await Promise.all(pending);
  }
}
