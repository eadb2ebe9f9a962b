import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withheldFromHook } from '../../src/settings/acme-dns.js';
import { parseSettings, SETTINGS } from '../../src/settings/schema.js';

// The DNS-01 settings: each mistake is one line saying what to fix, and the TSIG secret never
// appears in one.

const dir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-dns-settings-'));
const hook = path.join(dir, 'hook.sh');
writeFileSync(hook, '#!/bin/sh\nexit 0\n');
chmodSync(hook, 0o755);
const notExecutable = path.join(dir, 'plain.sh');
writeFileSync(notExecutable, '#!/bin/sh\n');
chmodSync(notExecutable, 0o644);
const secretFile = path.join(dir, 'tsig.secret');
const SECRET = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtMzItYnl0ZXMhISE=';
writeFileSync(secretFile, `${SECRET}\n`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE = { KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_ACME_EMAIL: 'ops@example.com' };
const platform = { inContainer: false, defaultGateway: undefined };
const parse = (env: Record<string, string>) => parseSettings({ ...BASE, ...env }, { platform, readFiles: true });
const problem = (env: Record<string, string>) => {
  try {
    parse(env);
  } catch (error) {
    return (error as Error).message;
  }
  return 'no error';
};

describe('ACME DNS-01 settings', () => {
  it('defaults: HTTP-01, no publisher, a 2 minute propagation wait', () => {
    expect(parse({}).acmeDns).toEqual({ challenge: 'http-01', publisher: undefined, resolvers: undefined, propagationTimeoutMs: 120_000 });
  });

  it('a hook, resolvers and the challenge', () => {
    const { acmeDns } = parse({
      KONTENA_LB_ACME_DNS_HOOK: hook,
      KONTENA_LB_ACME_DNS_RESOLVERS: '127.0.0.1:5353, [::1], ns.example.com',
      KONTENA_LB_ACME_CHALLENGE: 'dns-01',
    });
    expect(acmeDns).toMatchObject({
      challenge: 'dns-01',
      publisher: { kind: 'hook', path: hook, timeoutMs: 60_000 },
      resolvers: [
        { host: '127.0.0.1', port: 5353 },
        { host: '::1', port: 53 },
        { host: 'ns.example.com', port: 53 },
      ],
    });
  });

  it('RFC 2136 with the secret from a file or the environment; sha256 by default', () => {
    const fromFile = parse({
      KONTENA_LB_ACME_RFC2136_SERVER: '10.0.0.53',
      KONTENA_LB_ACME_RFC2136_TSIG_KEY: 'edgelb',
      KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE: secretFile,
    });
    expect(fromFile.acmeDns.publisher).toEqual({
      kind: 'rfc2136',
      server: { host: '10.0.0.53', port: 53 },
      keyName: 'edgelb',
      algorithm: 'hmac-sha256',
      secret: Buffer.from(SECRET, 'base64'),
    });
    const fromEnv = parse({
      KONTENA_LB_ACME_RFC2136_SERVER: '10.0.0.53:5300',
      KONTENA_LB_ACME_RFC2136_TSIG_KEY: 'edgelb',
      KONTENA_LB_ACME_RFC2136_TSIG_SECRET: SECRET,
      KONTENA_LB_ACME_RFC2136_TSIG_ALGORITHM: 'HMAC-SHA512',
    });
    expect(fromEnv.acmeDns.publisher).toMatchObject({ server: { port: 5300 }, algorithm: 'hmac-sha512' });
  });

  it.each([
    [{ KONTENA_LB_ACME_RFC2136_SERVER: '10.0.0.53' }, /KONTENA_LB_ACME_RFC2136_SERVER needs KONTENA_LB_ACME_RFC2136_TSIG_KEY/],
    [
      { KONTENA_LB_ACME_RFC2136_SERVER: '10.0.0.53', KONTENA_LB_ACME_RFC2136_TSIG_KEY: 'k' },
      /needs the TSIG secret: KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE or/,
    ],
    [{ KONTENA_LB_ACME_RFC2136_TSIG_KEY: 'k', KONTENA_LB_ACME_RFC2136_TSIG_SECRET: SECRET }, /need KONTENA_LB_ACME_RFC2136_SERVER/],
    [
      {
        KONTENA_LB_ACME_RFC2136_SERVER: '10.0.0.53',
        KONTENA_LB_ACME_RFC2136_TSIG_KEY: 'k',
        KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE: path.join(dir, 'missing'),
      },
      /^KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE: cannot read .*missing \(ENOENT\)$/,
    ],
    [
      {
        KONTENA_LB_ACME_RFC2136_SERVER: '10.0.0.53',
        KONTENA_LB_ACME_RFC2136_TSIG_KEY: 'k',
        KONTENA_LB_ACME_RFC2136_TSIG_SECRET: SECRET,
        KONTENA_LB_ACME_RFC2136_TSIG_ALGORITHM: 'hmac-md5',
      },
      /KONTENA_LB_ACME_RFC2136_TSIG_ALGORITHM must be one of hmac-sha256, hmac-sha1, hmac-sha512, got "hmac-md5"/,
    ],
    [
      { KONTENA_LB_ACME_RFC2136_SERVER: '10.0.0.53', KONTENA_LB_ACME_RFC2136_TSIG_KEY: 'k', KONTENA_LB_ACME_RFC2136_TSIG_SECRET: 'not base64!!' },
      /the TSIG secret is not base64/,
    ],
    [{ KONTENA_LB_ACME_RFC2136_SERVER: 'dns:server:53' }, /KONTENA_LB_ACME_RFC2136_SERVER must be one host:port/],
    [{ KONTENA_LB_ACME_DNS_HOOK: notExecutable }, /KONTENA_LB_ACME_DNS_HOOK: .*plain\.sh is not an executable file \(not executable: chmod \+x it\)/],
    [{ KONTENA_LB_ACME_DNS_HOOK: path.join(dir, 'nope') }, /KONTENA_LB_ACME_DNS_HOOK: .*nope is not an executable file \(ENOENT\)/],
    [{ KONTENA_LB_ACME_DNS_HOOK: hook, KONTENA_LB_ACME_RFC2136_SERVER: '10.0.0.53' }, /not both/],
    [{ KONTENA_LB_ACME_CHALLENGE: 'dns-01' }, /KONTENA_LB_ACME_CHALLENGE=dns-01 needs a DNS publisher/],
    [{ KONTENA_LB_ACME_CHALLENGE: 'tls-alpn-01' }, /KONTENA_LB_ACME_CHALLENGE must be http-01 or dns-01/],
    [{ KONTENA_LB_ACME_DNS_RESOLVERS: '127.0.0.1:99999' }, /KONTENA_LB_ACME_DNS_RESOLVERS must be a comma-separated list of host:port/],
  ])('%j → one line saying what to fix', (env, message) => {
    const line = problem(env);
    expect(line).toMatch(message);
    expect(line).not.toContain('\n');
    expect(line).not.toContain(SECRET);
  });

  it("withholds edgelb's secrets from a DNS hook: environment-only settings and their families present", () => {
    const withheld = withheldFromHook(SETTINGS, ['PATH', 'SSL_CERT_shop', 'ACME_CHALLENGE_x', 'DNS_API_TOKEN']);
    for (const name of ['KONTENA_LB_ACME_RFC2136_TSIG_SECRET', 'KONTENA_LB_VAULT_KEY', 'ETCD_PASSWORD', 'SSL_CERTS', 'SSL_CERT_shop'])
      expect(withheld).toContain(name);
    expect(withheld).not.toContain('PATH');
    expect(withheld).not.toContain('DNS_API_TOKEN');
  });

  it('DNS-01 settings without ACME are an error', () => {
    expect(() => parseSettings({ KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_ACME_DNS_HOOK: hook }, { platform, readFiles: true })).toThrow(
      /need KONTENA_LB_ACME_EMAIL/,
    );
  });
});
