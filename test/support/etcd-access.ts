import { Etcd3, type IOptions } from 'etcd3';

/**
 * How a test client reaches an etcd: the TLS material it presents and the user it logs in as.
 * One shape for the v3 (gRPC, etcd3) client and the v2 HTTP client (etcd-v2.ts).
 */

export interface BasicCredentials {
  readonly username: string;
  readonly password: string;
}

/** PEM text, as Node's tls options take it. No cert/key: the client presents no certificate. */
export interface ClientTls {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface EtcdAccess {
  readonly tls?: ClientTls;
  readonly auth?: BasicCredentials;
}

/** An etcd3 client for `hosts` with `access`; `options` adds e.g. dialTimeout or faultHandling. */
export function newEtcdClient(
  hosts: string | readonly string[],
  access: EtcdAccess = {},
  options: Omit<IOptions, 'hosts' | 'credentials' | 'auth'> = {},
): Etcd3 {
  const { tls, auth } = access;
  return new Etcd3({
    ...options,
    hosts: typeof hosts === 'string' ? hosts : [...hosts],
    ...(tls && {
      // grpc-js sends the host as SNI, and Node warns (DEP0123) when that is an IP address; the
      // test server certificates name localhost as well as 127.0.0.1, so verify against that.
      grpcOptions: { 'grpc.ssl_target_name_override': 'localhost', ...options.grpcOptions },
      credentials: {
        rootCertificate: Buffer.from(tls.ca),
        ...(tls.key !== undefined && { privateKey: Buffer.from(tls.key) }),
        ...(tls.cert !== undefined && { certChain: Buffer.from(tls.cert) }),
      },
    }),
    ...(auth && { auth: { username: auth.username, password: auth.password } }),
  });
}

/**
 * Runs `use` with a fresh client and closes it. A fresh one per probe: one client's circuit
 * breaker stays open for 5 s after three refused attempts, which would make every restart
 * look 5 s slower than it is.
 */
export async function withEtcdClient<T>(hosts: string | readonly string[], access: EtcdAccess, use: (client: Etcd3) => Promise<T>): Promise<T> {
  const client = newEtcdClient(hosts, access, { dialTimeout: 1000 });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}
