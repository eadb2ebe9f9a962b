import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerCertCommands, type CertCliSettings, type CertListRow } from '../../src/cli/cert.js';
import { decryptBundle, encryptBundle, isEncrypted } from '../../src/tls/vault.js';
import { makeCa, makeCrl, makeLeaf, removeCertFiles, type CertAuthority, type LeafCert } from '../support/certs.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { etcdConnection } from '../support/etcd-connection.js';
import { freePort } from '../support/ports.js';

// `edgelb cert import` and `edgelb cert list` against a real etcd.

const PREFIX = '/kontena/haproxy/cli-test';
const KEY = 'cli test vault key 0123456789abcdef';

let etcd: EtcdServer;
let tmp: string;
let www: LeafCert;
let wildcard: LeafCert;
let expired: LeafCert;
let ca: CertAuthority;

class Failed extends Error {}

beforeAll(async () => {
  etcd = await startEtcd();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'edgelb-cert-cli-'));
  ca = await makeCa('cli CA');
  [www, wildcard, expired] = await Promise.all([
    makeLeaf({ names: ['www.example.com', 'example.com'], issuer: ca }),
    makeLeaf({ names: ['*.apps.example.com'] }),
    makeLeaf({ names: ['old.example.com'], expired: true }),
  ]);
});

afterAll(async () => {
  await etcd?.stop();
  rmSync(tmp, { recursive: true, force: true });
  removeCertFiles();
});

beforeEach(async () => {
  await etcd.client.delete().prefix(`${PREFIX}/`);
});

function file(name: string, content: string): string {
  const target = path.join(tmp, name);
  writeFileSync(target, content);
  return target;
}

/** Runs `edgelb <args>` in-process; resolves with its output, rejects with Failed(message) on deps.fail. */
async function cli(args: string[], settings: Partial<CertCliSettings> = {}): Promise<string[]> {
  const lines: string[] = [];
  const program = new Command('edgelb').exitOverride();
  program.configureOutput({ writeOut: (text) => void lines.push(...text.trimEnd().split('\n')), writeErr: () => undefined });
  registerCertCommands(program, {
    loadSettings: () => ({ etcd: etcdConnection(etcd.endpoint), etcdPath: PREFIX, vaultKey: KEY, ...settings }),
    out: (line) => void lines.push(line),
    fail: (message) => {
      throw new Failed(message);
    },
    etcdTimeoutMs: 5000,
  });
  await program.parseAsync(args, { from: 'user' });
  return lines;
}

async function failure(args: string[], settings: Partial<CertCliSettings> = {}): Promise<string> {
  try {
    await cli(args, settings);
  } catch (error) {
    if (error instanceof Failed) return error.message;
    throw error;
  }
  throw new Error(`expected ${args.join(' ')} to fail`);
}

async function stored(name: string): Promise<string | null> {
  return etcd.client.get(`${PREFIX}/certs/${name}`).string();
}

async function listJson(settings: Partial<CertCliSettings> = {}): Promise<CertListRow[]> {
  return JSON.parse((await cli(['cert', 'list', '--json'], settings)).join('\n')) as CertListRow[];
}

describe('edgelb cert import-ca', () => {
  it('stores a CA bundle, a CRL bundle and a backend CA bundle in the clear, each checked first', async () => {
    expect(await cli(['cert', 'import-ca', file('ca.pem', ca.certPem), '--name', 'partners'])).toEqual([
      'imported /kontena/haproxy/cli-test/client-cas/partners: 1 certificate',
    ]);
    expect(await etcd.client.get(`${PREFIX}/client-cas/partners`).string()).toBe(ca.certPem);
    const crl = await makeCrl(ca, [www]);
    expect((await cli(['cert', 'import-ca', file('crl.pem', crl), '--name', 'partners', '--crl']))[0]).toMatch(/client-crls\/partners: 1 CRL$/);
    expect((await cli(['cert', 'import-ca', file('ca.pem', ca.certPem), '--name', 'internal', '--backend']))[0]).toMatch(/backend-cas\/internal/);
    expect((await cli(['cert', 'import-ca', file('ca.pem', ca.certPem), '--name', 'partners']))[0]).toMatch(/^replaced /);
  });

  it('refuses a bundle without a CA, a private key, a certificate as a CRL, and a missing name; writes nothing', async () => {
    expect(await failure(['cert', 'import-ca', file('leaf.pem', www.certPem), '--name', 'x'])).toMatch(/not a valid CA bundle: holds no CA certificate/);
    expect(await failure(['cert', 'import-ca', file('key.pem', ca.certPem + ca.keyPem), '--name', 'x'])).toMatch(/private key/);
    expect(await failure(['cert', 'import-ca', file('ca.pem', ca.certPem), '--name', 'x', '--crl'])).toMatch(/not a valid CRL bundle: no X509 CRL/);
    expect(await failure(['cert', 'import-ca', file('ca.pem', ca.certPem)])).toMatch(/--name is required/);
    expect(await failure(['cert', 'import-ca', file('ca.pem', ca.certPem), '--name', '../x'])).toMatch(/not valid/);
    expect(await etcd.client.getAll().prefix(`${PREFIX}/`).keys()).toEqual([]);
  });
});

describe('edgelb cert import', () => {
  it('stores a valid bundle encrypted, named after its first DNS name', async () => {
    const out = await cli(['cert', 'import', file('www.pem', www.bundlePem)]);
    expect(out).toEqual([
      expect.stringMatching(/^imported \/kontena\/haproxy\/cli-test\/certs\/www\.example\.com: www\.example\.com, example\.com, expires \S+, encrypted$/),
    ]);
    const value = (await stored('www.example.com'))!;
    expect(isEncrypted(value)).toBe(true);
    expect(value).not.toContain('PRIVATE KEY');
    const pem = decryptBundle(value, KEY);
    expect(pem).toContain(www.certPem.trim());
    expect(pem).toContain(www.keyPem.trim());
  });

  it('names a wildcard certificate wildcard.<domain>, and takes --name', async () => {
    await cli(['cert', 'import', file('star.pem', wildcard.bundlePem)]);
    expect(await stored('wildcard.apps.example.com')).not.toBeNull();
    await cli(['cert', 'import', file('star.pem', wildcard.bundlePem), '--name', 'apps']);
    expect(await stored('apps')).not.toBeNull();
  });

  it('stores plain PEM when no vault key is set, and says so', async () => {
    const out = await cli(['cert', 'import', file('www.pem', www.bundlePem)], { vaultKey: undefined });
    expect(out[0]).toMatch(/NOT encrypted \(KONTENA_LB_VAULT_KEY is not set\)$/);
    expect((await stored('www.example.com'))!.startsWith('-----BEGIN CERTIFICATE-----')).toBe(true);
  });

  it('replaces an existing entry and says so', async () => {
    await cli(['cert', 'import', file('www.pem', www.bundlePem), '--name', 'site']);
    const out = await cli(['cert', 'import', file('star.pem', wildcard.bundlePem), '--name', 'site']);
    expect(out[0]).toMatch(/^replaced \/kontena\/haproxy\/cli-test\/certs\/site: \*\.apps\.example\.com,/);
    expect(decryptBundle((await stored('site'))!, KEY)).toContain(wildcard.certPem.trim());
  });

  it('refuses an invalid bundle with the reason, and writes nothing', async () => {
    expect(await failure(['cert', 'import', file('nokey.pem', www.certPem)])).toBe(
      `${path.join(tmp, 'nokey.pem')} is not a valid certificate bundle: no private key in the bundle`,
    );
    expect(await failure(['cert', 'import', file('mismatch.pem', www.certPem + wildcard.keyPem)])).toMatch(/the private key does not match the certificate$/);
    expect(await failure(['cert', 'import', file('garbage.pem', 'hello')])).toMatch(/no certificate in the bundle$/);
    const all = await etcd.client.getAll().prefix(`${PREFIX}/`).keys();
    expect(all).toEqual([]);
  });

  it('refuses an expired certificate unless --allow-expired', async () => {
    expect(await failure(['cert', 'import', file('old.pem', expired.bundlePem)])).toMatch(/expired on 2020-01-02T00:00:00.000Z \(pass --allow-expired/);
    expect(await stored('old.example.com')).toBeNull();
    await cli(['cert', 'import', file('old.pem', expired.bundlePem), '--allow-expired']);
    expect(await stored('old.example.com')).not.toBeNull();
  });

  it('refuses a bad --name and a missing file', async () => {
    expect(await failure(['cert', 'import', file('www.pem', www.bundlePem), '--name', 'a/b'])).toMatch(/--name "a\/b" is not a valid vault name/);
    expect(await failure(['cert', 'import', path.join(tmp, 'missing.pem')])).toMatch(/^cannot read .*missing\.pem: ENOENT$/);
  });

  it('never prints key material', async () => {
    const out = await cli(['cert', 'import', file('www.pem', www.bundlePem)]);
    const listed = await cli(['cert', 'list']);
    const json = await cli(['cert', 'list', '--json']);
    const text = [...out, ...listed, ...json].join('\n');
    expect(text).not.toMatch(/PRIVATE KEY|BEGIN/);
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(www.keyPem.split('\n')[1]!.slice(0, 20));
  });
});

describe('edgelb cert list', () => {
  it('says so when the vault is empty', async () => {
    expect(await cli(['cert', 'list'])).toEqual([`no certificates in ${PREFIX}/certs/`]);
  });

  it('shows name, subject, names, expiry, days left, encryption and status', async () => {
    await cli(['cert', 'import', file('www.pem', www.bundlePem)]);
    await cli(['cert', 'import', file('old.pem', expired.bundlePem), '--allow-expired']);
    await etcd.client.put(`${PREFIX}/certs/plain`).value(wildcard.bundlePem);
    await etcd.client.put(`${PREFIX}/certs/other-key`).value(encryptBundle(wildcard.bundlePem, 'some other key'));
    await etcd.client.put(`${PREFIX}/certs/broken`).value(encryptBundle(www.certPem, KEY));
    await etcd.client.put(`${PREFIX}/certs/nested/x`).value(encryptBundle(www.bundlePem, KEY));

    const lines = await cli(['cert', 'list']);
    expect(lines[0]).toMatch(/^NAME\s+SOURCE\s+SUBJECT CN\s+ALT NAMES\s+NOT AFTER\s+DAYS LEFT\s+ENCRYPTED\s+STATUS$/);
    // After a blank line: the warnings (issue 16), here the expired certificate still served.
    const blank = lines.indexOf('');
    expect(lines.slice(blank + 1).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(['WARNING CERTIFICATE', expect.stringMatching(/^expiring vault-/)]);
    const byName = Object.fromEntries(lines.slice(1, blank).map((line) => [line.split(/\s+/)[0], line]));
    expect(Object.keys(byName).sort()).toEqual(['broken', 'nested/x', 'old.example.com', 'other-key', 'plain', 'www.example.com']);
    expect(byName['www.example.com']).toMatch(
      /^www\.example\.com\s+vault\s+www\.example\.com\s+www\.example\.com,example\.com\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+(89|90)\s+yes\s+valid$/,
    );
    expect(byName['old.example.com']).toMatch(/2020-01-02T00:00:00Z\s+-\d+\s+yes\s+expired$/);
    expect(byName.plain).toMatch(/\s+no\s+invalid:not encrypted, but KONTENA_LB_VAULT_KEY is set/);
    expect(byName['other-key']).toMatch(/\s+yes\s+invalid:encrypted with a different KONTENA_LB_VAULT_KEY$/);
    expect(byName.broken).toMatch(/\s+yes\s+invalid:no private key in the bundle$/);
    expect(byName['nested/x']).toMatch(/invalid:the name is not valid/);

    const rows = await listJson();
    const row = rows.find((r) => r.name === 'www.example.com')!;
    expect(row).toMatchObject({
      source: { kind: 'vault', ref: 'certs/www.example.com' },
      subject: 'www.example.com',
      names: ['www.example.com', 'example.com'],
      status: 'valid',
      encrypted: true,
    });
    expect(row.daysLeft).toBeGreaterThanOrEqual(89);
    expect(row.fingerprint).toMatch(/^[0-9A-F:]+$/);
  });

  it('without a vault key, reads plain values and marks encrypted ones invalid', async () => {
    await etcd.client.put(`${PREFIX}/certs/plain`).value(wildcard.bundlePem);
    await etcd.client.put(`${PREFIX}/certs/secret`).value(encryptBundle(www.bundlePem, KEY));
    const rows = await listJson({ vaultKey: undefined });
    expect(rows.map((row) => [row.name, row.status, row.encrypted])).toEqual([
      ['plain', 'valid', false],
      ['secret', 'invalid:encrypted, but KONTENA_LB_VAULT_KEY is not set', true],
    ]);
  });

  it('also shows the environment and directory certificates when given', async () => {
    const dir = mkdtempSync(path.join(tmp, 'dir-'));
    writeFileSync(path.join(dir, 'site.pem'), wildcard.bundlePem);
    const rows = await listJson({ env: { SSL_CERTS: www.bundlePem, SSL_CERT_bad: 'nope' }, certsDir: dir });
    expect(rows.map((row) => [row.name, row.source.kind, row.status])).toEqual([
      ['SSL_CERTS#1', 'env', 'valid'],
      ['SSL_CERT_bad', 'env', 'invalid:no certificate in the bundle'],
      ['site.pem', 'dir', 'valid'],
    ]);
  });
});

describe('failures and help', () => {
  it('reports an unreachable etcd in one line', async () => {
    const port = await freePort();
    const message = await failure(['cert', 'list'], { etcd: etcdConnection(`http://127.0.0.1:${port}`) });
    expect(message).toMatch(new RegExp(`^cannot reach etcd at http://127\\.0\\.0\\.1:${port}: `));
    expect(message).not.toContain('\n');
    const importMessage = await failure(['cert', 'import', file('www.pem', www.bundlePem)], { etcd: etcdConnection(`http://127.0.0.1:${port}`) });
    expect(importMessage).toMatch(/^cannot reach etcd at /);
  });

  it('reports settings that cannot work in one line', async () => {
    const program = new Command('edgelb').exitOverride();
    let message = '';
    registerCertCommands(program, {
      loadSettings: () => {
        throw new Error('set KONTENA_SERVICE_NAME (with KONTENA_STACK_NAME) or ETCD_PATH');
      },
      out: () => undefined,
      fail: (m) => {
        message = m;
        throw new Failed(m);
      },
    });
    await expect(program.parseAsync(['cert', 'list'], { from: 'user' })).rejects.toThrow(Failed);
    expect(message).toBe('set KONTENA_SERVICE_NAME (with KONTENA_STACK_NAME) or ETCD_PATH');
  });

  it('passes the etcd flags to loadSettings', async () => {
    const seen: unknown[] = [];
    const program = new Command('edgelb').exitOverride();
    registerCertCommands(program, {
      loadSettings: (flags) => {
        seen.push(flags);
        return { etcd: etcdConnection(etcd.endpoint), etcdPath: PREFIX, vaultKey: undefined };
      },
      out: () => undefined,
      fail: (m) => {
        throw new Failed(m);
      },
    });
    await program.parseAsync(['cert', 'list', '--etcd-path', '/x/y', '--service-name', 'lb'], { from: 'user' });
    expect(seen).toEqual([
      expect.objectContaining({ etcdEndpoints: undefined, etcdNode: undefined, etcdPath: '/x/y', stackName: undefined, serviceName: 'lb' }),
    ]);
  });

  it.each([
    [['cert', '--help'], /manage the TLS certificates in the etcd vault[\s\S]*import[\s\S]*list[\s\S]*KONTENA_LB_VAULT_KEY/],
    [
      ['cert', 'import', '--help'],
      /Usage: edgelb cert import \[options\] <file>[\s\S]*--name <name>[\s\S]*--allow-expired[\s\S]*--etcd-endpoints <value>[\s\S]*Examples:/,
    ],
    [['cert', 'list', '--help'], /Usage: edgelb cert list \[options\][\s\S]*--json[\s\S]*invalid:<reason>/],
  ])('%j explains itself', async (args, pattern) => {
    const lines: string[] = [];
    const program = new Command('edgelb').exitOverride();
    program.configureOutput({ writeOut: (text) => void lines.push(text), writeErr: () => undefined });
    registerCertCommands(program, {
      loadSettings: () => {
        throw new Error('not called');
      },
      out: () => undefined,
      fail: (m) => {
        throw new Failed(m);
      },
    });
    await expect(program.parseAsync(args, { from: 'user' })).rejects.toThrow(CommanderError);
    expect(lines.join('')).toMatch(pattern);
  });
});
