import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { withEtcdClient, type EtcdAccess } from './etcd-access.js';
import { adminClient, prepareDirs, type EtcdOptions } from './etcd-admin.js';
import type { AuthSpec, EtcdAuth } from './etcd-auth.js';
import { etcdProcess, type EtcdProcess, type MemberSpec } from './etcd-member.js';
import type { EtcdTls } from './etcd-tls.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/** A multi-member etcd 3.4 cluster on loopback, for failover tests. */

export interface EtcdClusterMember {
  readonly name: string;
  /** This member's client URL. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** False between `kill(i)` and `restart(i)`. */
  readonly running: boolean;
}

export interface EtcdCluster {
  readonly members: readonly EtcdClusterMember[];
  /** Every member's client URL, in member order (what a client is configured with). */
  readonly endpoints: readonly string[];
  /** Admin client over all endpoints (see EtcdServer.client: replaced when auth is enabled). */
  readonly client: Etcd3;
  readonly v2: boolean;
  readonly tls: EtcdTls | undefined;
  readonly adminAccess: EtcdAccess;
  readonly auth: EtcdAuth | undefined;
  enableAuth(spec: AuthSpec): Promise<EtcdAuth>;
  /** SIGKILLs member `i`; its data dir and ports stay for `restart(i)`. */
  kill(i: number): Promise<void>;
  /** Starts member `i` again with its data; returns once it serves a linearizable read (it has rejoined). */
  restart(i: number): Promise<void>;
  /** The index of the current leader, as the running members report it; waits (with a deadline) while there is none. */
  leaderIndex(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * `size` members started together (`--initial-cluster-state new`, every member listed);
 * returns once each serves a read, which needs a quorum and so an elected leader.
 */
export async function startEtcdCluster(size = 3, options: EtcdOptions = {}): Promise<EtcdCluster> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`startEtcdCluster: size must be a positive integer, not ${size}`);
  const { baseDir, tls } = await prepareDirs(options);
  const v2 = options.enableV2 ?? false;
  const ports: { name: string; clientPort: number; peerPort: number }[] = [];
  for (let i = 0; i < size; i++) ports.push({ name: `member${i}`, clientPort: await freePort(), peerPort: await freePort() });
  const initialCluster = ports.map((p) => `${p.name}=http://127.0.0.1:${p.peerPort}`).join(',');
  const processes = ports.map((p) =>
    etcdProcess({
      ...p,
      dataDir: path.join(baseDir, p.name),
      initialCluster,
      clusterToken: path.basename(baseDir),
      enableV2: v2,
      tls,
      timing: options.timing,
    } satisfies MemberSpec),
  );
  const endpoints = processes.map((p) => p.endpoint);
  const admin = adminClient(endpoints, tls, v2);
  const member = (i: number): EtcdProcess => {
    const found = processes[i];
    if (!found) throw new Error(`no member ${i} in a cluster of ${size}`);
    return found;
  };
  const stop = async () => {
    admin.close();
    await Promise.all(processes.map((p) => p.halt('SIGTERM')));
    await rm(baseDir, { recursive: true, force: true });
  };

  try {
    for (const p of processes) p.spawn();
    await Promise.all(processes.map((p) => p.waitServing(admin.access, 30_000)));
    if (options.auth) await admin.enableAuth(options.auth);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    members: processes.map((p) => ({
      name: p.spec.name,
      endpoint: p.endpoint,
      dataDir: p.spec.dataDir,
      get running() {
        return p.running;
      },
    })),
    endpoints,
    get client() {
      return admin.client;
    },
    v2,
    tls,
    get adminAccess() {
      return admin.access;
    },
    get auth() {
      return admin.auth;
    },
    enableAuth: (spec) => admin.enableAuth(spec),
    kill: (i) => member(i).halt('SIGKILL'),
    async restart(i) {
      member(i).spawn();
      await member(i).waitServing(admin.access, 30_000);
    },
    leaderIndex: (timeoutMs = 15_000) => waitFor(() => findLeader(processes, admin.access), { timeoutMs, intervalMs: 50, what: 'an etcd leader' }),
    stop,
  };
}

/**
 * Asks each running member for its status: a member is the leader when the leader ID it reports
 * is its own ID. Undefined while no running member reports itself as leader.
 */
async function findLeader(processes: readonly EtcdProcess[], access: EtcdAccess): Promise<number | undefined> {
  const statuses = await Promise.all(
    processes.map(async (p, index) => {
      if (!p.running) return undefined;
      try {
        const status = await withEtcdClient(p.endpoint, access, (client) => client.maintenance.status());
        return { index, self: String(status.header.member_id), leader: String(status.leader) };
      } catch {
        return undefined; // starting, or cut off: the others answer
      }
    }),
  );
  return statuses.find((s) => s !== undefined && s.leader !== '0' && s.self === s.leader)?.index;
}
