import { EntryError, parseSettingLines } from './values.js';

/** One `user` line of a service's userlist. The secret is a password or a crypt(3) hash: never logged. */
export interface BasicAuthUser {
  readonly name: string;
  readonly kind: 'insecure-password' | 'password';
  readonly secret: string;
}

/**
 * A service's HTTP basic auth. `users` empty means closed: basic_auth_secrets was set but
 * could not be used, and every request gets 401 rather than the service being left open.
 */
export interface BasicAuth {
  readonly users: readonly BasicAuthUser[];
}

// A user name may not hold ':' (HTTP basic auth splits user and password at the first one).
const USER_NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
// Printable ASCII without space, quotes, '#' or backslash: HAProxy's tokenizer reads those as
// syntax, and a password is written unquoted. ('$' is literal outside double quotes.)
const PLAIN_PASSWORD = /^[!$%&()*+,\-./0-9:;<=>?@A-Z[\]^_`a-z{|}~]{1,256}$/;
// crypt(3) hashes HAProxy checks through libc: SHA-512 ($6$), SHA-256 ($5$), MD5 ($1$), and bcrypt.
const CRYPT_HASHES: readonly RegExp[] = [
  /^\$6\$(?:rounds=[0-9]{1,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$/,
  /^\$5\$(?:rounds=[0-9]{1,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{43}$/,
  /^\$1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}$/,
];
// bcrypt, as Kontena's docs show it: $2a$, $2b$ or $2y$, a cost of 04-31, then a 22-character salt and
// a 31-character hash in bcrypt's base64 alphabet. Debian 12's libcrypt (libxcrypt), which HAProxy
// calls, verifies all three prefixes (test/integration/basic-auth.test.ts proves it for each).
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;

/**
 * Parses `basic_auth_secrets`: one `user <name> insecure-password <password>` or
 * `user <name> password <crypt hash>` per line. Throws an EntryError whose message names
 * the line number and what is wrong with it, and never quotes the line (it holds a secret).
 * An empty value means no basic auth, as with the Kontena load balancer.
 */
export function parseBasicAuthSecrets(raw: string): BasicAuth | undefined {
  const lines = parseSettingLines(raw, 'basic_auth_secrets');
  if (lines.length === 0) return undefined;
  const users: BasicAuthUser[] = [];
  const seen = new Set<string>();
  lines.forEach((line, i) => {
    const user = parseUserLine(line, `line ${i + 1}`);
    if (seen.has(user.name)) throw new EntryError(`line ${i + 1}: user ${JSON.stringify(user.name)} is listed twice`);
    seen.add(user.name);
    users.push(user);
  });
  return { users };
}

function parseUserLine(line: string, where: string): BasicAuthUser {
  const words = line.split(/[ \t]+/);
  if (words[0] !== 'user' || words.length < 4) {
    throw new EntryError(`${where} is not "user <name> insecure-password <password>" or "user <name> password <hash>"`);
  }
  if (words.length > 4) {
    throw new EntryError(`${where} has more than a user name, a password kind and one secret (groups and spaces in passwords are not supported)`);
  }
  const [, name = '', kind, secret = ''] = words;
  if (!USER_NAME.test(name)) throw new EntryError(`${where}: the user name may only contain letters, digits, '_', '.', '@' and '-'`);
  if (kind === 'insecure-password') {
    if (!PLAIN_PASSWORD.test(secret)) {
      throw new EntryError(`${where}: the password may only hold printable ASCII without spaces, quotes, '#' or backslashes`);
    }
    return { name, kind, secret };
  }
  if (kind === 'password') {
    if (!CRYPT_HASHES.some((re) => re.test(secret)) && !BCRYPT_HASH.test(secret)) {
      throw new EntryError(
        `${where}: the hash is not a SHA-512 ($6$), SHA-256 ($5$), MD5 ($1$) or bcrypt ($2a$, $2b$, $2y$, cost 04-31) crypt hash (make one with openssl passwd -6)`,
      );
    }
    return { name, kind, secret };
  }
  throw new EntryError(`${where}: expected "insecure-password" or "password" after the user name`);
}

/**
 * HAProxy 2.6 runs crypt(3) on every request that carries credentials, with no cache, on the
 * thread that serves the request: a bcrypt hash of cost 10 holds that thread for about 50 ms
 * (cost 12: 200 ms), against about 1.5 ms for SHA-512 crypt. The users are named with their
 * cost; the hashes never are.
 */
export function bcryptWarning(auth: BasicAuth | undefined): string | undefined {
  const slow = (auth?.users ?? []).filter((u) => u.kind === 'password' && BCRYPT_HASH.test(u.secret));
  if (slow.length === 0) return undefined;
  const users = slow.map((u) => `${u.name} (cost ${u.secret.slice(4, 6)})`).join(', ');
  return (
    `bcrypt hashes (${users}): HAProxy runs a bcrypt verification on every request with credentials, holding ` +
    'one of its threads while it computes (cost 10: about 50 ms per request, doubling with each step); a SHA-512 crypt hash (openssl passwd -6) takes about 1-2 ms'
  );
}
