import { describe, expect, it } from 'vitest';
import { parseBasicAuthSecrets } from '../../src/model/basic-auth.js';
import { EntryError } from '../../src/model/values.js';
import { parseEntries } from '../../src/model/parse.js';
import { entryWarnings } from '../../src/model/warnings.js';

// Hashes made with `openssl passwd -6/-5/-1 s3cret`.
// bcrypt of "s3cret" (cost 10); test/integration/basic-auth.test.ts verifies bcrypt through HAProxy.
const BCRYPT = '$2b$10$5lNe7DxSTh/NgXCNIYrGierZHZOwWQlwsoSMIc.yaEsT7Kn.IbcyK';
const SHA512 = '$6$abcdefgh$Z7KfoKnKTSZrzo5VZ0YubGLQOj9ov6sHo9TmE3zIU/LHKhpE30zCnZ0mcIXYf9r9rQ4DYaXoxAFSPFlcWdxjB.';
const SHA256 = '$5$B57cFm6dwhVCBsVX$M.uVu3Snjrk1kjter2yaJmIlhiTiXNu7J0J8diIm6l5';
const MD5 = '$1$Ma9tw2hT$8YpAqWayq7afY9JYpLm2b1';

describe('parseBasicAuthSecrets', () => {
  it('reads plain and hashed users, one per line, ignoring blank lines and CRLF', () => {
    const auth = parseBasicAuthSecrets(
      `user alice insecure-password pa$$:w0rd!\r\n\n  user bob password ${SHA512}\nuser carol password ${SHA256}\nuser dave password ${MD5}\n`,
    );
    expect(auth).toEqual({
      users: [
        { name: 'alice', kind: 'insecure-password', secret: 'pa$$:w0rd!' },
        { name: 'bob', kind: 'password', secret: SHA512 },
        { name: 'carol', kind: 'password', secret: SHA256 },
        { name: 'dave', kind: 'password', secret: MD5 },
      ],
    });
  });

  it('accepts a SHA hash with explicit rounds', () => {
    const hash = `$6$rounds=10000$saltsalt$${'a'.repeat(86)}`;
    expect(parseBasicAuthSecrets(`user x password ${hash}`)?.users[0]?.secret).toBe(hash);
  });

  it('treats an empty value as no basic auth (as the Kontena load balancer did)', () => {
    expect(parseBasicAuthSecrets('')).toBeUndefined();
    expect(parseBasicAuthSecrets(' \n ')).toBeUndefined();
  });

  const secret = 'Sup3rS3cret';
  it.each([
    ['a bare user:password', `admin:${secret}`, /line 1 is not "user <name>/],
    ['a password with a space', `user a insecure-password ${secret} more`, /line 1 has more than/],
    ['a password with a quote', `user a insecure-password "${secret}"`, /line 1: the password may only hold printable ASCII/],
    ['a password with a hash sign', `user a insecure-password ${secret}#x`, /line 1: the password/],
    ['a password with a backslash', `user a insecure-password ${secret}\\x`, /line 1: the password/],
    ['a non-ASCII password', `user a insecure-password ${secret}é`, /line 1: the password/],
    ['an unsupported hash', `user a password $2y$10$${secret}`, /line 1: the hash is not a SHA-512/],
    ['a bcrypt hash of cost 03', `user a password ${BCRYPT.replace('$10$', '$03$')}`, /line 1: the hash is not .*bcrypt .*cost 04-31/],
    ['a bcrypt hash of cost 32', `user a password ${BCRYPT.replace('$10$', '$32$')}`, /line 1: the hash is not/],
    ['a $2x$ bcrypt hash (the buggy pre-2011 variant)', `user a password ${BCRYPT.replace('$2b$', '$2x$')}`, /line 1: the hash is not/],
    ['a truncated bcrypt hash', `user a password ${BCRYPT.slice(0, -1)}`, /line 1: the hash is not/],
    ['a bcrypt hash with a character outside its alphabet', `user a password ${BCRYPT.slice(0, -1)}+`, /line 1: the hash is not/],
    ['a truncated hash', `user a password ${SHA512.slice(0, -3)}`, /line 1: the hash is not/],
    ['a plain password given as a hash', `user a password ${secret}`, /line 1: the hash is not/],
    ['an unknown password kind', `user a secret ${secret}`, /line 1: expected "insecure-password" or "password"/],
    ['a user name with a colon', `user a:b insecure-password ${secret}`, /line 1: the user name/],
    ['groups', `user a insecure-password ${secret} groups admins`, /groups .* not supported/],
    ['a duplicate user on line 2', `user a insecure-password ${secret}\nuser a insecure-password x`, /line 2: user "a" is listed twice/],
    ['a new section', `userlist evil\nuser a insecure-password ${secret}`, /may not open a new section/],
    ['a control byte', `user a insecure-password ${secret}\u0007`, /control character/],
  ])('rejects %s with the line and the reason, never the secret', (_label, raw, reason) => {
    let error: unknown;
    try {
      parseBasicAuthSecrets(raw);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EntryError);
    expect((error as Error).message).toMatch(reason);
    expect((error as Error).message).not.toContain(secret);
  });
});

describe('parseEntries: basic_auth_secrets', () => {
  const parse = (entries: Record<string, string>) => parseEntries(new Map(Object.entries(entries)), { reservedPorts: [] });

  it('closes a service with unusable secrets (no users: 401 to all) instead of leaving it out', () => {
    const { state, rejected } = parse({
      'services/web/virtual_hosts': 'www.foo.com',
      'services/web/basic_auth_secrets': 'user admin insecure-password ok\nadmin:TopSecret',
      'services/web/upstreams/a': '10.0.0.1:80',
    });
    expect(state.http.map((s) => s.name)).toEqual(['web']);
    expect(state.http[0]?.basicAuth).toEqual({ users: [] });
    expect(rejected).toEqual([
      { key: 'services/web/basic_auth_secrets', code: 'invalid_value', reason: expect.stringMatching(/^line 2 is not .*closed \(401 to every request\)/) },
    ]);
    expect(JSON.stringify(rejected)).not.toContain('TopSecret');
  });

  it('leaves a service without the key open', () => {
    const { state } = parse({ 'services/web/virtual_path': '/' });
    expect(state.http[0]?.basicAuth).toBeUndefined();
  });
});

describe('bcrypt hashes', () => {
  it.each(['$2a$', '$2b$', '$2y$'])('accepts %s with a cost of 04 to 31', (prefix) => {
    for (const cost of ['04', '10', '31']) {
      const hash = BCRYPT.replace('$2b$10$', `${prefix}${cost}$`);
      expect(parseBasicAuthSecrets(`user a password ${hash}`)?.users[0]).toEqual({ name: 'a', kind: 'password', secret: hash });
    }
  });

  it('warns once per service, naming the users and costs but never the hashes', () => {
    const { state, rejected } = parseEntries(
      new Map(
        Object.entries({
          'services/web/virtual_hosts': 'www.foo.com',
          'services/web/basic_auth_secrets': `user alice password ${BCRYPT}\nuser bob password ${SHA512}\nuser carol password ${BCRYPT.replace('$2b$10$', '$2y$12$')}`,
          'services/fast/virtual_path': '/fast',
          'services/fast/basic_auth_secrets': `user dave password ${SHA512}`,
        }),
      ),
      { reservedPorts: [] },
    );
    expect(rejected).toEqual([]);
    const warnings = entryWarnings(state);
    expect(warnings).toEqual([
      {
        key: 'services/web/basic_auth_secrets',
        reason: expect.stringMatching(
          /^bcrypt hashes \(alice \(cost 10\), carol \(cost 12\)\): HAProxy runs a bcrypt verification on every request .*openssl passwd -6/,
        ),
      },
    ]);
    expect(JSON.stringify(warnings)).not.toMatch(/\$2[aby]\$|\$6\$/);
  });
});
