import { KEY_PATHS } from './keyspace.js';
import type { StoredRow } from './keyspace-rows.js';
import { parsePeerAddress } from './peers.js';
import { parseKeyAuthorization } from './values.js';

/** The keys edgelb writes itself (the vault, ACME): documented with the rest of the keyspace. */
/** Keys edgelb itself writes (`edgelb cert import`, the ACME leader, every replica), read back by tls/ and challenges.ts. */
export const STORED_SECTION: { readonly title: string; readonly rows: readonly StoredRow[] } = {
  title:
    'Keys edgelb writes itself, `<path>/certs/`, `<path>/acme/` and `<path>/peers/`, and the CA bundles it reads, `<path>/client-cas/`, `client-crls/`, `backend-cas/`:',
  rows: [
    {
      key: `${KEY_PATHS.certs}<name>`,
      scope: 'certificate',
      defaultDoc: '`edgelb cert import`; the ACME leader as `certs/acme-<domain>`',
      example: '-----BEGIN CERTIFICATE-----',
      doc: 'a PEM bundle (certificate, optional chain, private key), encrypted (AES-256-GCM) when `KONTENA_LB_VAULT_KEY` is set; `<name>` of letters, digits, `_`, `.`, `-`',
    },
    {
      key: `${KEY_PATHS.clientCas}<name>`,
      scope: 'certificate',
      defaultDoc: 'the operator (`edgelb cert import-ca`, `etcdctl put`)',
      example: '-----BEGIN CERTIFICATE-----',
      doc: 'a CA bundle for `client_ca`: PEM certificates, at least one a CA (basicConstraints CA:TRUE), no private key; plain (public data), or a vault value. One that cannot be used is logged (`invalid_ca_bundle`) and closes the services naming it',
    },
    {
      key: `${KEY_PATHS.clientCrls}<name>`,
      scope: 'certificate',
      defaultDoc: 'the operator (`edgelb cert import-ca --crl`)',
      example: '-----BEGIN X509 CRL-----',
      doc: 'revocation lists for `client_crl`: one or more PEM `X509 CRL` blocks, a current one for each CA of the chain',
    },
    {
      key: `${KEY_PATHS.backendCas}<name>`,
      scope: 'certificate',
      defaultDoc: 'the operator (`edgelb cert import-ca --backend`)',
      example: '-----BEGIN CERTIFICATE-----',
      doc: 'a CA bundle for `backend_ca`, as `client-cas/<name>`',
    },
    {
      key: `${KEY_PATHS.acmeChallenges}<token>`,
      scope: 'acme',
      parse: parseKeyAuthorization,
      code: 'invalid_challenge',
      defaultDoc: 'the ACME leader',
      example: 'dGhlLXRva2Vu.thumbprint_1',
      doc: 'the key authorization answered at `/.well-known/acme-challenge/<token>` (see [ACME challenges](#acme-challenges))',
    },
    {
      key: `${KEY_PATHS.acmeState}<domain>`,
      scope: 'acme',
      defaultDoc: 'the ACME leader',
      example: '{"domain":"www.example.com","status":"valid"}',
      doc: "the domain's ACME state (JSON): valid, pending (an order in progress) or failing, with the last error and the backoff",
    },
    {
      key: KEY_PATHS.acmeAccount,
      scope: 'acme',
      defaultDoc: 'the ACME leader',
      example: '-----BEGIN PRIVATE KEY-----',
      doc: "the ACME account's private key, encrypted like the vault's bundles when `KONTENA_LB_VAULT_KEY` is set",
    },
    {
      key: KEY_PATHS.acmeLeader,
      scope: 'acme',
      defaultDoc: 'every replica (election)',
      example: 'lb-1-4f2a',
      doc: 'the id of the replica elected to order certificates, on a lease of `KONTENA_LB_ACME_LEADER_TTL` seconds (with etcd v3 the leader holds it on its campaign lease, for replicas of earlier versions)',
    },
    {
      key: `${KEY_PATHS.acmeElection}<lease id>`,
      scope: 'acme',
      defaultDoc: 'every replica (v3)',
      example: 'lb-1-4f2a',
      doc: "with etcd v3, each replica's candidacy in etcd's own election (the oldest key leads), on its lease; its lease fences the leader's writes",
    },
    {
      key: `${KEY_PATHS.acmeReplicas}<id>`,
      scope: 'acme',
      defaultDoc: 'every replica',
      example: '{"httpPort":80}',
      doc: 'a running replica (JSON: its HTTP port), on its own lease: the leader waits for its confirmations',
    },
    {
      key: `${KEY_PATHS.acmeAcks}<token>/<id>`,
      scope: 'acme',
      defaultDoc: 'every replica',
      example: '1764646800000',
      doc: 'when (Unix ms) replica `<id>` found that it answers challenge `<token>` itself; the CA is asked to validate once every replica has',
    },
    {
      key: `${KEY_PATHS.peers}<name>`,
      scope: 'peers',
      parse: parsePeerAddress,
      code: 'invalid_peer',
      defaultDoc: 'every replica, with `KONTENA_LB_PEERS=etcd`',
      example: '10.81.0.5:7946',
      doc: "a replica's HAProxy peer address (`KONTENA_LB_PEERS_ADDRESS`) under its peer name (`KONTENA_LB_PEER_NAME`), on its own lease: every replica renders the set into its `peers` section and shares its rate and connection counters with them (see [Shared counters between replicas](#shared-counters-between-replicas))",
    },
  ],
};
