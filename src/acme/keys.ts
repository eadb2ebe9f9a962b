/**
 * Where ACME keeps its keys under the load balancer's etcd path: one table, so the manager, the
 * challenge acknowledgements, the election and `edgelb cert list` never spell a key themselves.
 */

/** Per-domain progress (JSON, see state.ts): a new leader resumes from it. */
export const STATE_DIR = 'acme/state/';
/** HTTP-01 key authorizations by token: every replica's HAProxy serves them. */
export const CHALLENGE_DIR = 'acme/challenges/';
/** The ACME account key (encrypted with the vault key when there is one). */
export const ACCOUNT_KEY = 'acme/account';
/** v2 only: the leader key, holding the leader's id (v3 uses etcd's election, ELECTION_DIR). */
export const LEADER_KEY = 'acme/leader';
/** v3 only: the etcd3 library's election `leader` in the namespace `acme/` (`election/<name>/<lease>`). */
export const ELECTION_NAMESPACE = 'acme/';
export const ELECTION_NAME = 'leader';
/** Replicas announce themselves here (on their lease), with their HTTP port. */
export const REPLICA_DIR = 'acme/replicas/';
/** `acme/acks/<token>/<replica>`: that replica's HAProxy serves the token. */
export const ACK_DIR = 'acme/acks/';
/** Certificates land in the vault as `certs/acme-<domain>`, like any imported one. */
export const CERT_PREFIX = 'certs/acme-';
