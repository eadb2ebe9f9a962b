import { execa } from 'execa';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { preparePeerTls, writePeerCertFiles } from '../../src/haproxy/peer-cert-files.js';
import { parsePeerCert } from '../../src/tls/peer-cert.js';
import { renderSettingsOf } from '../../src/pipeline/settings-of.js';
import { peersSettingsOf } from '../../src/render/peers-view.js';
import { type CertAuthority, type LeafCert, makeCa, makeIntermediate, makeLeaf, removeCertFiles } from '../support/certs.js';
import { capturingLogger } from '../support/log-capture.js';
import { parseAndRender, testRenderSettings } from '../support/render-check.js';

// KONTENA_LB_PEERS_CERT: the bundle that authenticates peer traffic. A bundle that cannot be used
// stops edgelb with one line that names the variable and never shows the key; a usable one renders
// a peers section with TLS both ways that haproxy -c accepts. What peers see is in
// test/integration/peers.test.ts.

const PEERS = { KONTENA_LB_PEERS: 'etcd', KONTENA_LB_PEERS_ADDRESS: '10.81.0.5:7946', KONTENA_LB_PEER_NAME: 'lb-a' };
const load = (env: Record<string, string>) => loadConfig({ ETCD_PATH: '/lb', KONTENA_LB_STATE_DIR: '/tmp/x', ...PEERS, ...env }, { checkFilesystem: false });

let selfSigned: LeafCert;
let other: LeafCert;
let ca: CertAuthority;
let intermediate: CertAuthority;
let issued: LeafCert;
let expired: LeafCert;
let future: LeafCert;

beforeAll(async () => {
  [selfSigned, other, ca, expired, future] = await Promise.all([
    makeLeaf({ names: ['edgelb-peers'] }),
    makeLeaf({ names: ['other'] }),
    makeCa('peers CA'),
    makeLeaf({ names: ['edgelb-peers'], expired: true }),
    makeLeaf({ names: ['edgelb-peers'], notBefore: new Date(Date.now() + 30 * 86400_000), notAfter: new Date(Date.now() + 60 * 86400_000) }),
  ]);
  intermediate = await makeIntermediate(ca);
  issued = await makeLeaf({ names: ['edgelb-peers'], issuer: intermediate });
}, 30_000);
afterAll(removeCertFiles);

describe('KONTENA_LB_PEERS_CERT', () => {
  it('takes a self-signed certificate with its key: it is its own CA', () => {
    const cert = load({ KONTENA_LB_PEERS_CERT: selfSigned.bundlePem }).peersCert;
    expect(cert?.caPem.trim()).toBe(selfSigned.certPem.trim());
    expect(cert?.pem).toContain(selfSigned.keyPem.trim());
  });

  it('takes a CA-issued certificate followed by its chain up to the root: verified against the chain', () => {
    const cert = load({ KONTENA_LB_PEERS_CERT: issued.certPem + intermediate.certPem + ca.certPem + issued.keyPem }).peersCert;
    expect(cert?.caPem).toBe(`${intermediate.certPem.trim()}\n${ca.certPem.trim()}\n`);
  });

  it('reads KONTENA_LB_PEERS_CERT_FILE (a mounted secret), even in a dry run', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'edgelb-peers-cert-')), 'peers.pem');
    writeFileSync(file, selfSigned.bundlePem, { mode: 0o600 });
    expect(load({ KONTENA_LB_PEERS_CERT_FILE: file }).peersCert?.fingerprint).toMatch(/^[0-9A-F:]+$/);
  });

  const cases: [string, () => Record<string, string>, RegExp][] = [
    ['not PEM', () => ({ KONTENA_LB_PEERS_CERT: 'not a certificate' }), /^KONTENA_LB_PEERS_CERT: no PEM certificate in it/],
    ['no key', () => ({ KONTENA_LB_PEERS_CERT: selfSigned.certPem }), /^KONTENA_LB_PEERS_CERT: no private key in it$/],
    ['two keys', () => ({ KONTENA_LB_PEERS_CERT: selfSigned.bundlePem + other.keyPem }), /more than one private key/],
    [
      'a key of another certificate',
      () => ({ KONTENA_LB_PEERS_CERT: selfSigned.certPem + other.keyPem }),
      /^KONTENA_LB_PEERS_CERT: the private key does not match the first certificate$/,
    ],
    [
      'a garbled key',
      () => ({ KONTENA_LB_PEERS_CERT: `${selfSigned.certPem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n` }),
      /^KONTENA_LB_PEERS_CERT: the private key does not parse$/,
    ],
    [
      'a CA-issued certificate without its root',
      () => ({ KONTENA_LB_PEERS_CERT: issued.certPem + intermediate.certPem + issued.keyPem }),
      /does not end with a self-signed certificate/,
    ],
    ['a chain out of order', () => ({ KONTENA_LB_PEERS_CERT: issued.certPem + ca.certPem + intermediate.certPem + issued.keyPem }), /chain is out of order/],
    ['an expired certificate', () => ({ KONTENA_LB_PEERS_CERT: expired.bundlePem }), /^KONTENA_LB_PEERS_CERT: the certificate expired on 2020-01-02/],
    ['a certificate not valid yet', () => ({ KONTENA_LB_PEERS_CERT: future.bundlePem }), /the certificate is not valid before/],
    [
      'both the variable and the file',
      () => ({ KONTENA_LB_PEERS_CERT: selfSigned.bundlePem, KONTENA_LB_PEERS_CERT_FILE: '/x' }),
      /set KONTENA_LB_PEERS_CERT or KONTENA_LB_PEERS_CERT_FILE, not both/,
    ],
    [
      'a file that is not there',
      () => ({ KONTENA_LB_PEERS_CERT_FILE: '/nonexistent/peers.pem' }),
      /^KONTENA_LB_PEERS_CERT_FILE \(\/nonexistent\/peers\.pem\): cannot read it \(ENOENT\)$/,
    ],
    [
      'KONTENA_LB_PEERS off',
      () => ({ KONTENA_LB_PEERS: 'off', KONTENA_LB_PEERS_CERT: selfSigned.bundlePem }),
      /KONTENA_LB_PEERS_CERT is set but KONTENA_LB_PEERS is off/,
    ],
  ];
  it.each(cases)('stops with one line, no key material, for %s', (_what, env, message) => {
    let error: Error | undefined;
    try {
      load(env());
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain('\n');
    expect(error?.message).not.toMatch(/PRIVATE KEY|AAAA/);
  });
});

describe('the peers section with KONTENA_LB_PEERS_CERT', () => {
  const entries = new Map(
    Object.entries({ 'services/rated/virtual_hosts': 'rated.test', 'services/rated/rate_limit': '10/10s', 'services/rated/upstreams/one': '127.0.0.1:8081' }),
  );
  const set = { local: { name: 'lb-a', address: '127.0.0.1:7946' }, remotes: [{ name: 'lb-b', address: '10.81.0.6:7946' }] };

  it('listens and connects with TLS, both ways verified against the bundle, and haproxy -c accepts it', async () => {
    const base = testRenderSettings();
    const config = loadConfig(
      { ETCD_PATH: '/lb', KONTENA_LB_STATE_DIR: base.stateDir, ...PEERS, KONTENA_LB_PEERS_CERT: selfSigned.bundlePem },
      { checkFilesystem: false },
    );
    const peersTls = renderSettingsOf(config).peersTls!;
    expect(peersTls).toEqual({ crt: path.join(base.stateDir, 'peers.pem'), caFile: path.join(base.stateDir, 'peers-ca.pem') });
    await writePeerCertFiles(config.peersCert!, peersTls);
    expect(statSync(peersTls.crt).mode & 0o777).toBe(0o600);
    const { config: text } = parseAndRender(entries, { ...base, peers: peersSettingsOf(set), peersTls });
    const section = /^peers edgelb\n(?:.*\n)*?\n/m.exec(text)?.[0] ?? '';
    expect(section).toMatch(new RegExp(`^ {4}default-bind ssl crt ${peersTls.crt} ca-file ${peersTls.caFile} verify required$`, 'm'));
    expect(section).toMatch(new RegExp(`^ {4}default-server ssl crt ${peersTls.crt} ca-file ${peersTls.caFile} verify required$`, 'm'));
    expect(section).toMatch(/^ {4}peer lb-a 127\.0\.0\.1:7946\n {4}peer lb-b 10\.81\.0\.6:7946$/m);
    const file = path.join(base.stateDir, 'haproxy.cfg');
    writeFileSync(file, text);
    const check = await execa('haproxy', ['-c', '-f', file], { reject: false });
    expect(check.stderr).not.toMatch(/ALERT/);
    expect(check.exitCode).toBe(0);
  });

  it('is plain TCP, and says so, without it', () => {
    const base = testRenderSettings();
    const { config: text } = parseAndRender(entries, { ...base, peers: peersSettingsOf(set) });
    expect(text).not.toMatch(/default-(bind|server) ssl/);
    expect(text).toContain('plain TCP, unauthenticated');
  });
});

describe('the peers TLS at start', () => {
  const files = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-peers-tls-'));
    return { crt: path.join(dir, 'peers.pem'), caFile: path.join(dir, 'peers-ca.pem') };
  };

  it('warns once that peer traffic is unauthenticated without a bundle', async () => {
    const { logger, logs } = capturingLogger('info');
    await preparePeerTls(undefined, undefined, 21, logger);
    expect(logs.map((l) => [l.level, l.event])).toEqual([[40, 'peers.unauthenticated']]);
  });

  it('writes the bundle 0600, logs its subject and expiry only, and warns when it expires within the warning days', async () => {
    const soon = await makeLeaf({ names: ['edgelb-peers'], days: 5 });
    const { logger, logs } = capturingLogger('info');
    const where = files();
    await preparePeerTls(parsePeerCert(soon.bundlePem), where, 21, logger);
    expect(statSync(where.crt).mode & 0o777).toBe(0o600);
    expect(logs.map((l) => [l.level, l.event])).toEqual([
      [30, undefined],
      [40, 'peers.cert_expiring'],
    ]);
    expect(logs[1]).toMatchObject({ daysLeft: 4 });
    expect(JSON.stringify(logs)).not.toContain(soon.keyPem.split('\n')[1]);
    const quiet = capturingLogger('info');
    await preparePeerTls(parsePeerCert(selfSigned.bundlePem), files(), 21, quiet.logger);
    expect(quiet.logs.map((l) => l.level)).toEqual([30]);
  });
});
