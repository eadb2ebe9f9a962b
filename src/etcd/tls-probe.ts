import type { EtcdConnection } from './connection.js';
import { EtcdFailure } from './errors.js';
import { V2Http } from './v2-http.js';

/**
 * Why the TLS connection to etcd fails, when gRPC does not say. A refused client certificate
 * reaches the client after its side of the TLS 1.3 handshake is done; grpc-js then sometimes
 * reports only `14 UNAVAILABLE: No connection established. Last error: null` (every time for the
 * etcd3 library's Authenticate call, which uses a fresh channel each time: seen against etcd
 * 3.4 with ETCD_USERNAME set), which would read as 'unreachable'. So the handshake is tried once
 * more with Node's TLS, same certificates, on `GET /version` (every etcd serves it, with or
 * without the v2 API and auth). Returns that 'tls' failure, or undefined when the handshake
 * works or no member answers (the caller's failure stands).
 */
export async function probeTls(connection: EtcdConnection, timeoutMs = 2000): Promise<EtcdFailure | undefined> {
  if (!connection.endpoints.some((url) => url.startsWith('https://'))) return undefined;
  // Only the handshake matters: the password is not sent along.
  const http = new V2Http({ ...connection, auth: undefined });
  try {
    await http.version(timeoutMs);
    return undefined;
  } catch (error) {
    return error instanceof EtcdFailure && error.code === 'tls' ? error : undefined;
  } finally {
    http.close();
  }
}
