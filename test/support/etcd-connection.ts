import { EtcdClient } from '../../src/etcd/client.js';
import type { EtcdConnection } from '../../src/etcd/connection.js';

/** A connection to test etcd members (plain http, v3 unless said otherwise), as config.ts would build it. */
export function etcdConnection(endpoints: string | readonly string[], extra: Partial<EtcdConnection> = {}): EtcdConnection {
  return {
    endpoints: typeof endpoints === 'string' ? [endpoints] : [...endpoints],
    endpointsFrom: 'ETCD_ENDPOINTS',
    api: 'v3',
    tls: undefined,
    auth: undefined,
    ...extra,
  };
}

/** An EtcdClient on those members with the API fixed (v3 unless said otherwise). */
export function etcdClient(endpoints: string | readonly string[], extra: Partial<EtcdConnection> = {}): EtcdClient {
  return new EtcdClient(etcdConnection(endpoints, extra));
}
