import { KEY_PATHS } from '../model/keyspace.js';

/**
 * Where ACME keeps its keys under the load balancer's etcd path, by the names its modules use.
 * The paths themselves are written once, in the keyspace (model/keyspace.ts KEY_PATHS).
 */

/** Per-domain progress (JSON, see state.ts): a new leader resumes from it. */
export const STATE_DIR = KEY_PATHS.acmeState;
/** HTTP-01 key authorizations by token: every replica's HAProxy serves them. */
export const CHALLENGE_DIR = KEY_PATHS.acmeChallenges;
/** The ACME account key (encrypted with the vault key when there is one). */
export const ACCOUNT_KEY = KEY_PATHS.acmeAccount;
/** v2: the leader key, holding the leader's id. v3 leads by etcd's election (ELECTION_NAME), and its leader holds this key too, so replicas of an earlier version (which lead through it) never lead beside it. */
export const LEADER_KEY = KEY_PATHS.acmeLeader;
/**
 * v3 only: the etcd3 library's election `leader` in the namespace `acme/`, which it keeps under
 * `election/<name>/<lease>`: KEY_PATHS.acmeElection (checked by the keyspace unit test).
 */
export const ELECTION_NAMESPACE = KEY_PATHS.acme;
export const ELECTION_NAME = 'leader';
/** Replicas announce themselves here (on their lease), with their HTTP port. */
export const REPLICA_DIR = KEY_PATHS.acmeReplicas;
/** `acme/acks/<token>/<replica>`: that replica's HAProxy serves the token. */
export const ACK_DIR = KEY_PATHS.acmeAcks;
/** Certificates land in the vault as `certs/acme-<domain>`, like any imported one. */
export const CERT_PREFIX = KEY_PATHS.acmeCerts;

/**
 * A wildcard's certificate is `certs/acme-_wildcard.<name>`: the vault's names have no `*`, and
 * `_` is in no host name, so no exact name takes the same key.
 */
const WILDCARD_LABEL = '_wildcard.';

/** The vault key (relative) of the certificate for `domain` (`*.example.com` → `certs/acme-_wildcard.example.com`). */
export function certKeyOf(domain: string): string {
  return `${CERT_PREFIX}${domain.startsWith('*.') ? `${WILDCARD_LABEL}${domain.slice(2)}` : domain}`;
}

/** The domain a vault name after `acme-` stands for: certKeyOf's inverse. */
export function domainOfCertName(name: string): string {
  return name.startsWith(WILDCARD_LABEL) ? `*.${name.slice(WILDCARD_LABEL.length)}` : name;
}
