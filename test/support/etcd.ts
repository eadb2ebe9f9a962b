import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import type { EtcdAccess } from './etcd-access.js';
import { adminClient, prepareDirs, type EtcdOptions } from './etcd-admin.js';
import type { AuthSpec, EtcdAuth } from './etcd-auth.js';
import type { EtcdCluster } from './etcd-cluster.js';
import { etcdProcess } from './etcd-member.js';
import type { EtcdTls } from './etcd-tls.js';
import type { V2Target } from './etcd-v2.js';
import { freePort } from './ports.js';

export type { EtcdOptions } from './etcd-admin.js';
export type { AuthSpec, EtcdAuth } from './etcd-auth.js';
export type { EtcdTls, CertKeyPair } from './etcd-tls.js';
export { startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';

export interface EtcdServer {
  /** `http://127.0.0.1:port`, or `https://` with `tls`. */
  readonly endpoint: string;
  /**
   * The admin client (the trusted client certificate under TLS, root once auth is on). Enabling
   * auth replaces it: read `server.client` each time instead of keeping it.
   */
  readonly client: Etcd3;
  readonly dataDir: string;
  /** True when started with `enableV2`. */
  readonly v2: boolean;
  /** CA, server and client certificates when started with `tls`. */
  readonly tls: EtcdTls | undefined;
  /** How the admin client reaches this server (for more clients, e.g. etcd-v2.ts requests as root). */
  readonly adminAccess: EtcdAccess;
  /** The credentials made by the last `enableAuth` (or the `auth` option). */
  readonly auth: EtcdAuth | undefined;
  /** v3 RBAC (and v2 auth when v2 is on) restricting `spec.username` to `<spec.prefix>/`. */
  enableAuth(spec: AuthSpec): Promise<EtcdAuth>;
  /** Stops the server (SIGKILL when `kill`), keeping its data dir. */
  halt(kill?: boolean): Promise<void>;
  /** Starts it again on the same ports and data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A real etcd (Debian's etcd-server 3.4) on random loopback ports with a temp data dir. */
export async function startEtcd(options: EtcdOptions = {}): Promise<EtcdServer> {
  const { baseDir, tls } = await prepareDirs(options);
  const v2 = options.enableV2 ?? false;
  const name = 'test';
  const peerPort = await freePort();
  const member = etcdProcess({
    name,
    dataDir: path.join(baseDir, 'data'),
    clientPort: await freePort(),
    peerPort,
    initialCluster: `${name}=http://127.0.0.1:${peerPort}`,
    clusterToken: path.basename(baseDir),
    enableV2: v2,
    tls,
    timing: options.timing,
  });
  const admin = adminClient([member.endpoint], tls, v2);
  const launch = async () => {
    member.spawn();
    await member.waitServing(admin.access);
  };
  const stop = async () => {
    admin.close();
    await member.halt('SIGTERM');
    await rm(baseDir, { recursive: true, force: true });
  };
  try {
    await launch();
    if (options.auth) await admin.enableAuth(options.auth);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    endpoint: member.endpoint,
    get client() {
      return admin.client;
    },
    dataDir: member.spec.dataDir,
    v2,
    tls,
    get adminAccess() {
      return admin.access;
    },
    get auth() {
      return admin.auth;
    },
    enableAuth: (spec) => admin.enableAuth(spec),
    halt: (kill = false) => member.halt(kill ? 'SIGKILL' : 'SIGTERM'),
    restart: launch,
    stop,
  };
}

/** Where v2 requests go as the admin (its certificate, root once auth is on): the server, or member `member` of a cluster. */
export function v2Admin(target: EtcdServer | EtcdCluster, member = 0): V2Target {
  const endpoint = 'endpoint' in target ? target.endpoint : target.endpoints[member];
  if (endpoint === undefined) throw new Error(`v2Admin: no member ${member}`);
  return { endpoint, ...target.adminAccess };
}

/** `target.enableAuth(spec)`, for callers holding either a server or a cluster. */
export function enableAuth(target: EtcdServer | EtcdCluster, spec: AuthSpec): Promise<EtcdAuth> {
  return target.enableAuth(spec);
}
