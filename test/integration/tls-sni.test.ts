import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RawCert } from '../../src/tls/bundle.js';
import type { Backend } from '../support/backend.js';
import { makeCa, makeIntermediate, makeLeaf, removeCertFiles, type CertAuthority, type LeafCert } from '../support/certs.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { closeBackends, deleteKey, expectReply, expectRoute, logsWithMsg, putKeys, settled, startBackends, startLbWith } from '../support/lb.js';
import { envCert, expectPortState, expectServedCert, fingerprintOf, handshake, httpsGet, probePort } from '../support/tls.js';

// Which certificate a TLS client is served: by SNI across the three sources, wildcards, the
// default certificate, chains, invalid and expired bundles, and no HTTPS listener without one.

let etcd: EtcdServer;
let b: Record<'web', Backend>;
let ca: CertAuthority;
let leaves: Record<'env' | 'vault' | 'dir' | 'wild' | 'dirExpired', LeafCert>;
const running: TestEdgelb[] = [];
const tempDirs: string[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web');
  ca = await makeCa('sni test CA');
  const [env, vault, dir, wild, dirExpired] = await Promise.all([
    makeLeaf({ names: ['env.test'], issuer: ca }),
    makeLeaf({ names: ['vault.test'], issuer: ca }),
    makeLeaf({ names: ['dir.test'], issuer: ca }),
    makeLeaf({ names: ['*.w.test'], issuer: ca }),
    makeLeaf({ names: ['dir-old.test'], issuer: ca, expired: true }),
  ]);
  leaves = { env: env!, vault: vault!, dir: dir!, wild: wild!, dirExpired: dirExpired! };
});

afterEach(async () => {
  for (const lb of running.splice(0)) await lb.stopAll();
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await closeBackends(b);
  await etcd?.stop();
  removeCertFiles();
});

async function certsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-tls-dir-'));
  tempDirs.push(dir);
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  return dir;
}

/** Starts an LB, waits for HAProxy, writes `entries` (with `certs/<name>` vault keys) and waits until applied. */
async function lbWith(entries: Record<string, string>, overrides: Record<string, string> = {}, envCerts: readonly RawCert[] = []): Promise<TestEdgelb> {
  const lb = await startLbWith(etcd, entries, overrides, { envCerts });
  running.push(lb);
  return lb;
}

/** env, vault (incl. the wildcard) and dir certificates, the dir one with an expired sibling sorting before it. */
async function threeSources(overrides: Record<string, string> = {}): Promise<TestEdgelb> {
  // Same-length file names, so the expired one's id sorts first within the directory.
  const dir = await certsDir({ 'a-expired.pem': leaves.dirExpired.bundlePem, 'b-current.pem': leaves.dir.bundlePem });
  return lbWith(
    {
      'services/web/virtual_hosts': 'env.test,vault.test,dir.test',
      'services/web/upstreams/one': b.web.address,
      'certs/vault': leaves.vault.bundlePem,
      'certs/wild': leaves.wild.bundlePem,
    },
    { KONTENA_LB_CERTS_DIR: dir, ...overrides },
    [envCert('SSL_CERT_env', leaves.env.bundlePem)],
  );
}

describe('SNI', () => {
  it('each SNI name gets its own certificate, from the environment, the vault and the watched directory', async () => {
    const lb = await threeSources();
    const port = lb.config.httpsPort;
    await expectServedCert(port, 'env.test', leaves.env);
    await expectServedCert(port, 'vault.test', leaves.vault);
    await expectServedCert(port, 'dir.test', leaves.dir);

    // And an HTTPS request on each name reaches the service over the right certificate.
    for (const [name, leaf] of [
      ['env.test', leaves.env],
      ['vault.test', leaves.vault],
      ['dir.test', leaves.dir],
    ] as const) {
      const reply = await httpsGet(port, { servername: name, path: `/sni/${name}` });
      expect(reply.status, name).toBe(200);
      expect(reply.backend).toBe('web');
      expect(reply.backendUrl).toBe(`/sni/${name}`);
      expect(reply.fingerprint256).toBe(fingerprintOf(leaf.certPem));
    }
  });

  it('a wildcard certificate serves names one level below it, in any case, and nothing else', async () => {
    const lb = await threeSources();
    const port = lb.config.httpsPort;
    await expectServedCert(port, 'x.w.test', leaves.wild);
    await expectServedCert(port, 'other-name.w.test', leaves.wild);
    await expectServedCert(port, 'X.W.Test', leaves.wild, { what: 'SNI is case-insensitive' });
    // *.w.test covers neither w.test itself nor two levels below it: those get the default.
    for (const name of ['w.test', 'a.b.w.test']) {
      const seen = await handshake(port, { servername: name });
      expect(seen.cert.fingerprint256, name).not.toBe(fingerprintOf(leaves.wild.certPem));
      expect(seen.cert.fingerprint256, `${name} gets the default certificate`).toBe(fingerprintOf(leaves.env.certPem));
    }
  });
});

describe('the default certificate', () => {
  it('no SNI and unknown names get the first valid certificate in source order (environment, vault, ACME, directory)', async () => {
    const lb = await threeSources();
    const port = lb.config.httpsPort;
    await expectServedCert(port, undefined, leaves.env, { what: 'no SNI to get the environment certificate' });
    await expectServedCert(port, 'unknown.test', leaves.env);
    await expectServedCert(port, 'example.com', leaves.env);
    // The expired one still serves its own name (nothing else covers it), not as the default.
    await expectServedCert(port, 'dir-old.test', leaves.dirExpired);

    // The order is stable, not the order of arrival: directory certificates arriving later do not
    // take the default over.
    const dir = await certsDir({});
    const later = await lbWith({ 'certs/vault': leaves.vault.bundlePem, 'certs/wild': leaves.wild.bundlePem }, { KONTENA_LB_CERTS_DIR: dir }, [
      envCert('SSL_CERT_env', leaves.env.bundlePem),
    ]);
    await expectServedCert(later.config.httpsPort, undefined, leaves.env);
    await writeFile(path.join(dir, 'b-current.pem'), leaves.dir.bundlePem);
    await writeFile(path.join(dir, 'a-expired.pem'), leaves.dirExpired.bundlePem);
    await expectServedCert(later.config.httpsPort, 'dir.test', leaves.dir);
    await expectServedCert(later.config.httpsPort, undefined, leaves.env);
    await expectServedCert(later.config.httpsPort, 'env.test', leaves.env);
  });

  it('KONTENA_LB_DEFAULT_CERT picks the default by vault name, SSL_CERT_ name or host', async () => {
    for (const [setting, leaf] of [
      ['vault', leaves.vault],
      ['SSL_CERT_env', leaves.env],
      ['env.test', leaves.env],
    ] as const) {
      const lb = await threeSources({ KONTENA_LB_DEFAULT_CERT: setting });
      const port = lb.config.httpsPort;
      await expectServedCert(port, undefined, leaf, { what: `KONTENA_LB_DEFAULT_CERT=${setting}: no SNI to get that certificate` });
      await expectServedCert(port, 'unknown.test', leaf, { what: `KONTENA_LB_DEFAULT_CERT=${setting}: an unknown name to get that certificate` });
      // Every name still gets its own.
      await expectServedCert(port, 'dir.test', leaves.dir);
      await expectServedCert(port, 'vault.test', leaves.vault);
      await expectServedCert(port, 'env.test', leaves.env);
      await lb.stopAll();
      running.splice(running.indexOf(lb), 1);
    }
  });
});

describe('chains', () => {
  it('a leaf issued by an intermediate is served with the intermediate, and verifies against the root alone', async () => {
    const intermediate = await makeIntermediate(ca, 'sni test intermediate');
    const leaf = await makeLeaf({ names: ['chain.test'], issuer: intermediate });
    const lb = await lbWith({
      'services/web/virtual_hosts': 'chain.test',
      'services/web/upstreams/one': b.web.address,
      'certs/chain': leaf.bundlePem,
    });
    const port = lb.config.httpsPort;
    await expectServedCert(port, 'chain.test', leaf);

    // Without any trust anchor, what the client sees is only what the server sent: leaf, intermediate.
    const sent = await handshake(port, { servername: 'chain.test' });
    expect(sent.chain.map((c) => c.fingerprint256)).toEqual([fingerprintOf(leaf.certPem), fingerprintOf(intermediate.certPem)]);
    expect(sent.chain[1]?.subjectCN).toBe('sni test intermediate');
    expect(sent.authorized).toBe(false);

    // With the root CA as the only trust anchor, verification (chain and host name) succeeds.
    const verified = await handshake(port, { servername: 'chain.test', ca: ca.certPem, rejectUnauthorized: true });
    expect(verified.authorized).toBe(true);
    expect(verified.chain.map((c) => c.subjectCN)).toEqual(['chain.test', 'sni test intermediate', 'sni test CA']);
    const reply = await httpsGet(port, { servername: 'chain.test', ca: ca.certPem, rejectUnauthorized: true, path: '/verified' });
    expect(reply.status).toBe(200);
    expect(reply.backendUrl).toBe('/verified');

    // A name the certificate does not cover fails verification (host name mismatch), as it should.
    await expect(handshake(port, { servername: 'other.test', ca: ca.certPem, rejectUnauthorized: true })).rejects.toThrow(/altnames|Hostname/i);
  });
});

describe('invalid and expired bundles', () => {
  it('invalid bundles are rejected with a log line naming their source, while the others serve', async () => {
    const [a, other] = await Promise.all([makeLeaf({ names: ['mismatch.test'] }), makeLeaf({ names: ['other.test'] })]);
    const mismatch = a.certPem + other.keyPem;
    const dir = await certsDir({ 'garbage.pem': 'this is not a certificate\n', 'mismatch.pem': mismatch, 'good.pem': leaves.dir.bundlePem });
    const lb = await lbWith(
      {
        'services/web/virtual_hosts': 'env.test,vault.test,dir.test',
        'services/web/upstreams/one': b.web.address,
        'certs/vault': leaves.vault.bundlePem,
        'certs/mismatch': mismatch,
        'certs/garbage': 'hello, I am not PEM',
        'certs/truncated': leaves.wild.bundlePem.slice(0, 200),
      },
      { KONTENA_LB_CERTS_DIR: dir },
      [envCert('SSL_CERT_env', leaves.env.bundlePem), envCert('SSL_CERT_BROKEN', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')],
    );
    const port = lb.config.httpsPort;
    await expectServedCert(port, 'env.test', leaves.env);
    await expectServedCert(port, 'vault.test', leaves.vault);
    await expectServedCert(port, 'dir.test', leaves.dir);
    // The rejected certificate's name falls back to the default, never to the mismatched bundle.
    const fallback = await handshake(port, { servername: 'mismatch.test' });
    expect(fallback.cert.fingerprint256).not.toBe(fingerprintOf(a.certPem));

    const rejected = () => logsWithMsg(lb, 'certificate rejected');
    const expectLogged = (source: string, reason: RegExp) => {
      const lines = rejected().filter((l) => l.source === source);
      expect(lines, `one 'certificate rejected' line for ${source}; got ${JSON.stringify(rejected())}`).toHaveLength(1);
      expect(lines[0]?.reason).toMatch(reason);
      expect(lines[0]?.level).toBe(50);
    };
    expectLogged('vault:certs/mismatch', /private key does not match/);
    expectLogged('vault:certs/garbage', /neither a PEM bundle/);
    expectLogged('vault:certs/truncated', /./);
    expectLogged('env:SSL_CERT_BROKEN', /./);
    expectLogged(`dir:${path.join(dir, 'garbage.pem')}`, /no certificate/);
    expectLogged(`dir:${path.join(dir, 'mismatch.pem')}`, /private key does not match/);
    expect(rejected()).toHaveLength(6);
    // No key material in the log lines.
    expect(JSON.stringify(rejected())).not.toContain('PRIVATE KEY');

    // Reported once, not again on every apply.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/two': b.web.address }));
    expect(rejected()).toHaveLength(6);
    expect(lb.controller.status().counters.failures).toBe(0);
  });

  it('an expired certificate is served only for names nothing valid covers (with a warning), and replaced when a valid one arrives', async () => {
    const [expired, both, renewed] = await Promise.all([
      makeLeaf({ names: ['old.test', 'both.test'], expired: true }),
      makeLeaf({ names: ['both.test'] }),
      makeLeaf({ names: ['old.test'] }),
    ]);
    const lb = await lbWith(
      {
        'services/web/virtual_hosts': 'old.test,both.test',
        'services/web/upstreams/one': b.web.address,
        'certs/expired': expired.bundlePem,
        'certs/both': both.bundlePem,
      },
      {},
      [envCert('SSL_CERT_base', leaves.env.bundlePem)],
    );
    const port = lb.config.httpsPort;
    const old = await expectServedCert(port, 'old.test', expired, { what: 'old.test, covered only by the expired certificate, to get it' });
    expect(new Date(old.cert.validTo).getTime()).toBeLessThan(Date.now());
    await expectServedCert(port, 'both.test', both, { what: 'both.test to get the valid certificate, not the expired one' });
    await expectServedCert(port, undefined, leaves.env, { what: 'the default to be a valid certificate' });
    const warnings = logsWithMsg(lb, 'certificate warning').filter((l) => /expired/.test(String(l.reason)));
    expect(warnings, JSON.stringify(logsWithMsg(lb, 'certificate warning'))).toHaveLength(1);
    expect(warnings[0]?.reason).toMatch(/old\.test/);
    expect(warnings[0]?.reason).not.toMatch(/both\.test/);
    expect(warnings[0]?.level).toBe(40);

    // A valid certificate for old.test arrives: it replaces the expired one.
    await settled(lb, await putKeys(etcd, lb, { 'certs/renewed': renewed.bundlePem }));
    await expectServedCert(port, 'old.test', renewed);
    await expectServedCert(port, 'both.test', both);
    expect(lb.controller.status().certs.served.some((s) => s.expired)).toBe(false);
  });
});

describe('no valid certificate', () => {
  it('nothing listens on the HTTPS port until a valid certificate arrives, and again once the last one is gone', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/one': b.web.address,
      'services/web/ssl_redirect': 'true',
    });
    const port = lb.config.httpsPort;
    await expectRoute(lb, '/plain', 'web.test', 'web', '/plain');
    expect(await probePort(port)).toBe('refused');
    // ssl_redirect does not send clients to an HTTPS port where nothing listens.
    expect((await get(lb.httpPort, '/x', 'web.test')).status).toBe(200);

    // Only an invalid certificate: still nothing.
    const rev = await putKeys(etcd, lb, { 'certs/bad': 'not a certificate' });
    await settled(lb, rev);
    await expectRoute(lb, '/still-plain', 'web.test', 'web', '/still-plain');
    expect(await probePort(port)).toBe('refused');

    // A valid one: the HTTPS listener appears and serves it.
    const leaf = await makeLeaf({ names: ['web.test'] });
    await settled(lb, await putKeys(etcd, lb, { 'certs/good': leaf.bundlePem }));
    await expectPortState(port, 'open');
    await expectServedCert(port, 'web.test', leaf);
    expect((await httpsGet(port, { servername: 'web.test', path: '/tls' })).backendUrl).toBe('/tls');
    // (The reload's old worker may still answer a request or two: poll.)
    await expectReply(lb, '/x', 'web.test', (r) => r.status === 301, 'plain HTTP to be redirected once HTTPS is up');

    // The last valid one goes: the listener goes too, and plain HTTP is served again.
    await settled(lb, await deleteKey(etcd, lb, 'certs/good'));
    await expectPortState(port, 'refused');
    await expectRoute(lb, '/plain-again', 'web.test', 'web', '/plain-again');
    expect(lb.controller.status().counters.failures).toBe(0);
  });
});
