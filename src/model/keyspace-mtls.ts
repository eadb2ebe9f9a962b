import { CLOSED_CA_NAME, parseCaName, parseClientVerify, type ClientVerify } from './client-auth.js';
import { byDefault, fieldRow } from './keyspace-rows.js';

/**
 * Issue 16's client-certificate rows (mTLS per service), spread into HTTP_SECTION (keyspace.ts).
 * Each is a security setting: a value that cannot be used closes the service (403) rather than
 * serving it without the check. The CA bundles they name are resolved in pipeline/ca-resolution.ts.
 */

/** Named CA bundles and revocation lists (issue 16 mTLS, issue 15 backend_ca), read by tls/ca-bundles.ts; part of KEY_PATHS. */
export const CA_PATHS = Object.freeze({ clientCas: 'client-cas/', clientCrls: 'client-crls/', backendCas: 'backend-cas/' } as const);

const CLOSED = { value: CLOSED_CA_NAME, note: 'the service is closed (403 to every request) until this is fixed' } as const;

export const CLIENT_AUTH_ROWS = [
  fieldRow('clientCa', {
    scope: 'http',
    key: 'client_ca',
    parse: parseCaName,
    invalid: 'close-service',
    absent: byDefault<string | undefined>(undefined),
    closed: CLOSED,
    defaultDoc: '— (no client certificates)',
    example: 'partners',
    doc: "the name of a CA bundle in `<path>/client-cas/<name>` (or `client-cas/<name>.pem` in `KONTENA_LB_CERTS_DIR`): HTTPS clients of the service's hosts must present a certificate it issued (see [Client certificates (mTLS)](#client-certificates-mtls)); the backend gets `X-SSL-Client-Verify`, `X-SSL-Client-DN` and `X-SSL-Client-Serial`. Plain HTTP requests get `403` (or the `ssl_redirect`). A bundle that is missing or holds no CA certificate closes the service (`403`)",
  }),
  fieldRow('clientVerify', {
    scope: 'http',
    key: 'client_verify',
    parse: parseClientVerify,
    invalid: 'close-service',
    absent: byDefault<ClientVerify | undefined>(undefined),
    closed: { value: 'closed' as ClientVerify, note: CLOSED.note },
    defaultDoc: '`required` (with `client_ca`)',
    example: 'optional',
    doc: '`required`: no TLS session without a valid client certificate (the handshake fails); `optional`: a client may send none (`X-SSL-Client-Verify: NONE`), but one it sends must be valid. Without `client_ca` the service is closed',
  }),
  fieldRow('clientCrl', {
    scope: 'http',
    key: 'client_crl',
    parse: parseCaName,
    invalid: 'close-service',
    absent: byDefault<string | undefined>(undefined),
    closed: CLOSED,
    defaultDoc: '— (no revocation check)',
    example: 'partners',
    doc: 'with `client_ca`: the name of a PEM revocation list (CRL) bundle in `<path>/client-crls/<name>` (or `client-crls/<name>.pem` in the directory); a revoked client certificate fails the handshake. HAProxy checks every certificate of the chain, so the bundle needs a current CRL of each CA in it (an expired CRL fails every handshake). Missing or invalid: the service is closed',
  }),
] as const;
