import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { newEtcdClient, type EtcdAccess } from './etcd-access.js';
import { configureAuth, type AuthSpec, type EtcdAuth } from './etcd-auth.js';
import type { EtcdTiming } from './etcd-member.js';
import { clientTls, makeEtcdTls, type EtcdTls } from './etcd-tls.js';

/** What startEtcd and startEtcdCluster share: options, the temp dir, and the admin client. */

export interface EtcdOptions {
  /** `--enable-v2`: etcd 3.4 also serves the v2 API (`/v2/keys`, `/v2/auth`). */
  readonly enableV2?: boolean;
  /**
   * https with a fresh test CA and `--client-cert-auth`: every client must present a certificate
   * from that CA. The certificates are made with certs.ts: call its removeCertFiles() in afterAll.
   */
  readonly tls?: boolean;
  /** Turn password auth on once the server runs (same as calling `enableAuth`). */
  readonly auth?: AuthSpec;
  /** Raft timing; etcd's defaults (100 ms / 1000 ms) when absent. */
  readonly timing?: EtcdTiming;
}

/** The temp dir of one server or cluster, and its TLS material when asked for. */
export async function prepareDirs(options: EtcdOptions): Promise<{ baseDir: string; tls: EtcdTls | undefined }> {
  const baseDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-etcd-'));
  if (!options.tls) return { baseDir, tls: undefined };
  const tlsDir = path.join(baseDir, 'tls');
  await mkdir(tlsDir, { mode: 0o700 });
  return { baseDir, tls: await makeEtcdTls(tlsDir) };
}

/**
 * The server's own client, with every right: the trusted client certificate under TLS, root once
 * auth is on. Auth replaces the client, so read `client` each time rather than keeping it.
 */
export interface AdminClient {
  readonly client: Etcd3;
  readonly access: EtcdAccess;
  readonly auth: EtcdAuth | undefined;
  enableAuth(spec: AuthSpec): Promise<EtcdAuth>;
  close(): void;
}

export function adminClient(endpoints: readonly string[], tls: EtcdTls | undefined, v2: boolean): AdminClient {
  let access: EtcdAccess = tls ? { tls: clientTls(tls) } : {};
  let client = newEtcdClient(endpoints, access);
  let auth: EtcdAuth | undefined;
  return {
    get client() {
      return client;
    },
    get access() {
      return access;
    },
    get auth() {
      return auth;
    },
    async enableAuth(spec) {
      const added = await configureAuth(endpoints, access, v2, spec);
      auth = added;
      if (access.auth === undefined) {
        access = { ...access, auth: added.root };
        client.close();
        client = newEtcdClient(endpoints, access);
      }
      return added;
    },
    close() {
      client.close();
    },
  };
}
