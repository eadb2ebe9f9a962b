import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encryptBundle } from '../../src/tls/vault.js';
import type { Backend } from '../support/backend.js';
import { makeLeaf, removeCertFiles } from '../support/certs.js';
import { edgelbEnv, runEdgelb, type EdgelbProcess } from '../support/edgelb-process.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { closeBackends, startBackends } from '../support/lb.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

// A log scan: edgelb runs as a process with every kind of secret, including broken ones that make
// it log errors, and none of the secret strings may appear in anything it prints.

const VAULT_KEY = 'vault-key-that-must-never-be-printed-7f3a';
const STATS_PASSWORD = 'St4tsPasswordNeverPrinted';
const ADMIN_PASSWORD = 'AdminPasswordNeverPrinted';
const BASIC_PASSWORD = 'BasicAuthPasswordNeverPrinted';
const BAD_LINE_PASSWORD = 'MalformedLinePasswordNeverPrinted';
// A bcrypt hash (of "erin-Bcrypt5", cost 04): edgelb warns about its cost, without the hash.
const BCRYPT_HASH = '$2b$04$.tkkPBiJGtmnTnwyM1BWBuD1Vgtep16tqZcbCuBTnKDfSXrW1DZUS';

let etcd: EtcdServer;
let b: Record<'a', Backend>;
let stateDir: string;
let edgelb: EdgelbProcess | undefined;

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('a');
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-secrets-'));
});

afterAll(async () => {
  edgelb?.child.kill('SIGKILL');
  await closeBackends(b);
  await etcd?.stop();
  await rm(stateDir, { recursive: true, force: true });
  removeCertFiles();
});

/** The dashboard's page, signed in as admin. */
function dashboardPage(port: number, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const authorization = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
    http
      .get({ host: '127.0.0.1', port, path: '/', headers: { authorization }, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`dashboard answered ${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });
}

/** The lines of a PEM private key that are pure key material (not the BEGIN/END armour). */
function keyMaterial(pem: string): string[] {
  return pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
}

describe('secrets never reach the logs', () => {
  it('vault key, private keys, basic-auth passwords and hashes (bcrypt warning included) and stats passwords stay out of stdout and stderr, errors included', async () => {
    const envCert = await makeLeaf({ names: ['env.test'] });
    const vaulted = await makeLeaf({ names: ['vault.test'] });
    const plainInVault = await makeLeaf({ names: ['plain.test'] });
    const prefix = `/kontena/haproxy/secrets-${process.pid}`;
    const httpPort = await freePort();
    const put = (key: string, value: string) => etcd.client.put(`${prefix}/${key}`).value(value);
    await put('services/web/virtual_hosts', 'web.test');
    await put('services/web/upstreams/one', b.a.address);
    await put('services/web/basic_auth_secrets', `user admin insecure-password ${BASIC_PASSWORD}`);
    await put('services/bad/virtual_hosts', 'bad.test');
    await put('services/bad/upstreams/one', b.a.address);
    await put('services/bad/basic_auth_secrets', `user eve insecure-password ${BAD_LINE_PASSWORD} trailing words`);
    await put('services/slow/virtual_hosts', 'slow.test');
    await put('services/slow/upstreams/one', b.a.address);
    await put('services/slow/basic_auth_secrets', `user erin password ${BCRYPT_HASH}`);
    await put('certs/vaulted', encryptBundle(vaulted.bundlePem, VAULT_KEY));
    await put('certs/wrong-key', encryptBundle(vaulted.bundlePem, 'another-key'));
    await put('certs/garbage', 'edgelb-vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    await put('certs/plain', plainInVault.bundlePem); // refused: the vault key is set, so plain bundles are not accepted

    const env = await edgelbEnv(etcd.endpoint, prefix, httpPort, stateDir);
    edgelb = runEdgelb({
      ...env,
      KONTENA_LB_VAULT_KEY: VAULT_KEY,
      STATS_PASSWORD,
      KONTENA_LB_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SSL_CERT_env: envCert.bundlePem,
      LOG_LEVEL: 'debug',
    });
    await waitFor(async () => (await get(httpPort, '/', 'web.test')).status === 401, { timeoutMs: 20_000, what: 'web.test to ask for basic auth' });
    await edgelb.waitForOutput('certificate rejected');
    await edgelb.waitForOutput('services/bad/basic_auth_secrets');
    await edgelb.waitForOutput(/"msg":"entry warning".*services\/slow\/basic_auth_secrets|services\/slow\/basic_auth_secrets.*"msg":"entry warning"/);
    // The dashboard shows the rejected and warned entries, never what made them secret.
    const dashboard = await dashboardPage(Number(env.KONTENA_LB_ADMIN_PORT), ADMIN_PASSWORD);
    expect(dashboard).toContain('services/bad/basic_auth_secrets');
    expect(dashboard).toContain('services/slow/basic_auth_secrets');
    edgelb.child.kill('SIGHUP');
    await edgelb.waitForOutput('SIGHUP: re-reading etcd');
    // A broken vault value arriving while running, then a stop.
    await put('certs/late', 'edgelb-vault:v1:not-base64!!');
    await edgelb.waitForOutput('vault:certs/late');
    edgelb.child.kill('SIGTERM');
    expect((await edgelb.child).exitCode).toBe(0);

    const output = edgelb.output();
    expect(output).toContain('entry rejected'); // the errors really happened
    const secrets = [
      VAULT_KEY,
      STATS_PASSWORD,
      ADMIN_PASSWORD,
      BASIC_PASSWORD,
      BAD_LINE_PASSWORD,
      BCRYPT_HASH,
      BCRYPT_HASH.slice(7),
      ...keyMaterial(envCert.keyPem),
      ...keyMaterial(vaulted.keyPem),
      ...keyMaterial(plainInVault.keyPem),
    ];
    for (const secret of secrets) expect(output.includes(secret), `output contains a secret: ${secret.slice(0, 12)}...`).toBe(false);
    for (const secret of secrets) expect(dashboard.includes(secret), `the dashboard shows a secret: ${secret.slice(0, 12)}...`).toBe(false);

    // On disk: the state dir and the certificate dir 0700, every file holding a key or a password 0600.
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    const certsDir = path.join(stateDir, 'certs');
    expect((await stat(certsDir)).mode & 0o777).toBe(0o700);
    const certFiles = (await readdir(certsDir)).filter((f) => f.endsWith('.pem'));
    expect(certFiles.length).toBeGreaterThan(0);
    for (const file of certFiles) expect((await stat(path.join(certsDir, file))).mode & 0o777, file).toBe(0o600);
    expect((await stat(path.join(stateDir, 'haproxy.cfg'))).mode & 0o777).toBe(0o600); // holds the basic-auth and stats passwords
  });
});
