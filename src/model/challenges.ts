import { KEY_PATHS } from './keyspace.js';
import type { Entries, Rejection } from './types.js';
import { EntryError, parseChallengeToken, parseKeyAuthorization } from './values.js';

/** Where ACME HTTP-01 tokens are in etcd: `acme/challenges/<token>` (relative to the load balancer's path). */
export const CHALLENGE_PREFIX = KEY_PATHS.acmeChallenges;

/** ACME HTTP-01 tokens to answer: token → key authorization. */
export type Challenges = ReadonlyMap<string, string>;

/**
 * Collects the challenge tokens from etcd (`acme/challenges/<token>`: the entries may be all of
 * them or only those under CHALLENGE_PREFIX) and the environment
 * (`ACME_CHALLENGE_<token>`, the Kontena way). Both end up in an HAProxy map file, so they are
 * held to base64url (values.ts): nothing else may reach it.
 */
export function parseChallenges(entries: Entries, env: Readonly<Record<string, string | undefined>> = {}): { challenges: Challenges; rejected: Rejection[] } {
  const challenges = new Map<string, string>();
  const rejected: Rejection[] = [];
  const add = (key: string, token: string, value: string) => {
    try {
      challenges.set(parseChallengeToken(token), parseKeyAuthorization(value));
    } catch (error) {
      if (!(error instanceof EntryError)) throw error;
      rejected.push({ key, code: 'invalid_challenge', reason: error.message });
    }
  };
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('ACME_CHALLENGE_') && value !== undefined) add(name, name.slice('ACME_CHALLENGE_'.length), value);
  }
  for (const [key, value] of entries) {
    if (key.startsWith(CHALLENGE_PREFIX)) add(key, key.slice(CHALLENGE_PREFIX.length), value);
  }
  return { challenges: new Map([...challenges].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), rejected };
}

export function sameChallenges(a: Challenges, b: Challenges): boolean {
  return a.size === b.size && [...a].every(([token, value]) => b.get(token) === value);
}
