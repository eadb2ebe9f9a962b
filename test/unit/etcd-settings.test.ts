import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type PlatformFacts } from '../../src/config.js';
import { describeConnection } from '../../src/etcd/connection.js';
import { makeLeaf, removeCertFiles, type LeafCert } from '../support/certs.js';

// The ETCD_* settings as one validated connection: endpoints (ETCD_ENDPOINTS, ETCD_NODE, the
// container's gateway), ETCD_API, TLS files and credentials. Bad values stop edgelb with one
// line naming the setting, and no message repeats a password or a key.

const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgelb-etcd-settings-'));
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeCertFiles();
});
let client: LeafCert;
let other: LeafCert;
beforeAll(async () => {
  [client, other] = await Promise.all([makeLeaf({ names: ['edgelb-client'] }), makeLeaf({ names: ['someone-else'] })]);
});
const base = { KONTENA_SERVICE_NAME: 'lb' };
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n';

function file(name: string, text: string): string {
  const full = path.join(tmp, name);
  writeFileSync(full, text);
  return full;
}

function etcdOf(env: Record<string, string | undefined>, platform?: PlatformFacts) {
  return loadConfig({ ...base, ...env }, { checkFilesystem: false, ...(platform ? { platform } : {}) }).etcd;
}

function refusal(env: Record<string, string | undefined>, platform?: PlatformFacts): string {
  try {
    etcdOf(env, platform);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

const inContainer: PlatformFacts = { inContainer: true, defaultGateway: '172.17.0.1' };

describe('etcd endpoints', () => {
  it.each([
    ['10.0.0.1', 'http://10.0.0.1:2379'],
    ['10.0.0.1:4001', 'http://10.0.0.1:4001'],
    ['etcd.internal', 'http://etcd.internal:2379'],
    ['etcd.internal:2380', 'http://etcd.internal:2380'],
    ['[fd00::1]:2379', 'http://[fd00::1]:2379'],
    ['fd00::1', 'http://[fd00::1]:2379'],
    ['http://10.0.0.1:2379', 'http://10.0.0.1:2379'],
  ])('takes ETCD_NODE %s as %s', (node, url) => {
    expect(etcdOf({ ETCD_NODE: node })).toMatchObject({ endpoints: [url], endpointsFrom: 'ETCD_NODE' });
  });

  it.each(['10.0.0.1:', 'a b', '10.0.0.1:99999', 'ftp://x', 'host:port'])('refuses ETCD_NODE %j with a line naming the setting', (node) => {
    expect(refusal({ ETCD_NODE: node })).toMatch(/^ETCD_NODE /);
  });

  it('prefers ETCD_ENDPOINTS over ETCD_NODE and the gateway', () => {
    expect(etcdOf({ ETCD_ENDPOINTS: 'http://a:1,http://b:2', ETCD_NODE: 'c' }, inContainer)).toMatchObject({
      endpoints: ['http://a:1', 'http://b:2'],
      endpointsFrom: 'ETCD_ENDPOINTS',
    });
  });

  it('uses the default gateway on port 2379 inside a container, and loopback outside one', () => {
    expect(etcdOf({}, inContainer)).toMatchObject({ endpoints: ['http://172.17.0.1:2379'], endpointsFrom: 'default gateway' });
    expect(etcdOf({}, { inContainer: false, defaultGateway: '172.17.0.1' })).toMatchObject({ endpoints: ['http://127.0.0.1:2379'], endpointsFrom: 'default' });
    expect(etcdOf({}, { inContainer: true, defaultGateway: undefined })).toMatchObject({ endpoints: ['http://127.0.0.1:2379'], endpointsFrom: 'default' });
  });

  it('refuses credentials inside an endpoint URL', () => {
    expect(refusal({ ETCD_ENDPOINTS: 'http://root:hunter2@10.0.0.1:2379' })).not.toContain('hunter2');
  });
});

describe('ETCD_API', () => {
  it.each([
    ['auto', 'auto'],
    ['v3', 'v3'],
    ['V2', 'v2'],
    [undefined, 'auto'],
  ])('takes %j as %s', (raw, api) => {
    expect(etcdOf({ ETCD_API: raw }).api).toBe(api);
  });

  it('refuses anything else', () => {
    expect(refusal({ ETCD_API: '3' })).toBe('ETCD_API must be auto, v3 or v2, got "3"');
  });
});

describe('TLS files', () => {
  it('reads the CA, certificate and key, and makes the default endpoints https', () => {
    const etcd = etcdOf({
      ETCD_CA_FILE: file('ca.pem', CERT),
      ETCD_CERT_FILE: file('c.pem', client.certPem),
      ETCD_KEY_FILE: file('k.pem', client.keyPem),
      ETCD_NODE: '10.0.0.1',
    });
    expect(etcd.tls).toEqual({ ca: CERT, cert: client.certPem, key: client.keyPem });
    expect(etcd.endpoints).toEqual(['https://10.0.0.1:2379']);
    expect(JSON.stringify(describeConnection(etcd))).not.toContain(client.keyPem.split('\n')[1]);
  });

  it('refuses at start a key that does not belong to the certificate, or cannot be loaded, without quoting either', () => {
    const mismatch = refusal({ ETCD_CERT_FILE: file('c4.pem', client.certPem), ETCD_KEY_FILE: file('k4.pem', other.keyPem), ETCD_ENDPOINTS: 'https://a:1' });
    expect(mismatch).toMatch(/^ETCD_KEY_FILE: .*k4\.pem is not the private key of ETCD_CERT_FILE .*c4\.pem$/);
    const damaged = refusal({ ETCD_CERT_FILE: file('c5.pem', client.certPem), ETCD_KEY_FILE: file('k5.pem', KEY), ETCD_ENDPOINTS: 'https://a:1' });
    expect(damaged).toMatch(/^ETCD_KEY_FILE: .*k5\.pem cannot be loaded as a private key/);
    expect(damaged).not.toContain('secret-key-material');
  });

  it('refuses http:// endpoints with TLS files: the password and entries would travel in clear', () => {
    expect(refusal({ ETCD_CA_FILE: file('ca2.pem', CERT), ETCD_ENDPOINTS: 'http://10.0.0.1:2379' })).toMatch(/must use https:\/\//);
  });

  it('needs the certificate and the key together', () => {
    expect(refusal({ ETCD_CERT_FILE: file('c2.pem', CERT), ETCD_ENDPOINTS: 'https://a:1' })).toMatch(/ETCD_CERT_FILE and ETCD_KEY_FILE go together/);
  });

  it('names an unreadable or wrong file without quoting it', () => {
    expect(refusal({ ETCD_CA_FILE: path.join(tmp, 'missing.pem'), ETCD_ENDPOINTS: 'https://a:1' })).toMatch(
      /^ETCD_CA_FILE: cannot read .*missing\.pem \(ENOENT\)$/,
    );
    const message = refusal({ ETCD_CERT_FILE: file('c3.pem', CERT), ETCD_KEY_FILE: file('notkey.pem', 'secret-key-material'), ETCD_ENDPOINTS: 'https://a:1' });
    expect(message).toMatch(/^ETCD_KEY_FILE: .* holds no PEM private key$/);
    expect(message).not.toContain('secret-key-material');
  });
});

describe('credentials', () => {
  it('takes ETCD_PASSWORD or the first line of ETCD_PASSWORD_FILE', () => {
    expect(etcdOf({ ETCD_USERNAME: 'lb', ETCD_PASSWORD: 's3cret pass' }).auth).toEqual({ username: 'lb', password: 's3cret pass' });
    expect(etcdOf({ ETCD_USERNAME: 'lb', ETCD_PASSWORD_FILE: file('pw', 'from-file\n') }).auth).toEqual({ username: 'lb', password: 'from-file' });
  });

  it('never shows the password', () => {
    const etcd = etcdOf({ ETCD_USERNAME: 'lb', ETCD_PASSWORD: 'hunter2' });
    expect(JSON.stringify(describeConnection(etcd))).not.toContain('hunter2');
    expect(describeConnection(etcd)).toMatchObject({ username: 'lb' });
  });

  it.each([
    [{ ETCD_PASSWORD: 'hunter2' }, 'ETCD_PASSWORD and ETCD_PASSWORD_FILE need ETCD_USERNAME'],
    [{ ETCD_USERNAME: 'lb' }, 'ETCD_USERNAME needs a password: set ETCD_PASSWORD_FILE (or ETCD_PASSWORD)'],
    [{ ETCD_USERNAME: 'lb', ETCD_PASSWORD: 'hunter2', ETCD_PASSWORD_FILE: '/x' }, 'set ETCD_PASSWORD or ETCD_PASSWORD_FILE, not both'],
  ])('refuses %j in one line', (env, message) => {
    const text = refusal(env);
    expect(text).toBe(message);
    expect(text).not.toContain('hunter2');
  });

  it('refuses an unreadable or multi-line password file without quoting it', () => {
    const unreadable = file('pw-unreadable', 'hunter2\n');
    chmodSync(unreadable, 0o000);
    if (process.getuid?.() !== 0)
      expect(refusal({ ETCD_USERNAME: 'lb', ETCD_PASSWORD_FILE: unreadable })).toMatch(/^ETCD_PASSWORD_FILE: cannot read .* \(EACCES\)$/);
    const text = refusal({ ETCD_USERNAME: 'lb', ETCD_PASSWORD_FILE: file('pw-lines', 'hunter2\nsecond\n') });
    expect(text).toBe('the etcd password must be one line (ETCD_PASSWORD_FILE holds more than one)');
  });
});
