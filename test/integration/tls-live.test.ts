import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RawCert } from '../../src/tls/bundle.js';
import { encryptBundle } from '../../src/tls/vault.js';
import type { Backend } from '../support/backend.js';
import { makeCa, makeLeaf, removeCertFiles, type CertAuthority, type LeafCert } from '../support/certs.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { closeBackends, deleteKey, logsWithMsg, putKeys, settled, startBackends, startLbWith } from '../support/lb.js';
import { envCert, expectServedCert, fingerprintOf, handshake, httpsGet, serialOf } from '../support/tls.js';

// Certificates that change while HAProxy runs: the encrypted vault, the watched directory, and
// the runtime API path (no reload) for adding, replacing and removing certificates.

const VAULT_KEY = 'tls-live test vault key: 3f9c1e0a7b5d4c2e';

let etcd: EtcdServer;
let b: Record<'web', Backend>;
let ca: CertAuthority;
let base: LeafCert;
const running: TestEdgelb[] = [];
const tempDirs: string[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web');
  ca = await makeCa('live test CA');
  base = await makeLeaf({ names: ['base.test'], issuer: ca });
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

async function lbWith(entries: Record<string, string>, overrides: Record<string, string> = {}, envCerts: readonly RawCert[] = []): Promise<TestEdgelb> {
  const lb = await startLbWith(etcd, entries, overrides, { envCerts });
  running.push(lb);
  return lb;
}

function counters(lb: TestEdgelb) {
  return lb.controller.status().counters;
}

describe('the encrypted vault (KONTENA_LB_VAULT_KEY set)', () => {
  it('serves encrypted values; plain ones, ones encrypted with another key and altered ones are rejected', async () => {
    const [enc, plain, otherKey, altered] = (await Promise.all(
      ['enc.test', 'plain.test', 'other-key.test', 'altered.test'].map((name) => makeLeaf({ names: [name], issuer: ca })),
    )) as [LeafCert, LeafCert, LeafCert, LeafCert];
    const sealed = encryptBundle(altered.bundlePem, VAULT_KEY);
    const tampered = sealed.slice(0, -10) + (sealed.at(-10) === 'A' ? 'B' : 'A') + sealed.slice(-9);
    const lb = await lbWith(
      {
        'services/web/virtual_hosts': 'enc.test,plain.test',
        'services/web/upstreams/one': b.web.address,
        'certs/enc': encryptBundle(enc.bundlePem, VAULT_KEY),
        'certs/plain': plain.bundlePem,
        'certs/other-key': encryptBundle(otherKey.bundlePem, 'a different vault key'),
        'certs/altered': tampered,
      },
      { KONTENA_LB_VAULT_KEY: VAULT_KEY },
    );
    const port = lb.config.httpsPort;
    await expectServedCert(port, 'enc.test', enc);
    const reply = await httpsGet(port, { servername: 'enc.test', ca: ca.certPem, rejectUnauthorized: true, path: '/sealed' });
    expect(reply.backendUrl).toBe('/sealed');

    // The rejected ones' names get the default (the one valid certificate), never their own.
    for (const [name, leaf] of [
      ['plain.test', plain],
      ['other-key.test', otherKey],
      ['altered.test', altered],
    ] as const) {
      const seen = await handshake(port, { servername: name });
      expect(seen.cert.fingerprint256, name).toBe(fingerprintOf(enc.certPem));
      expect(seen.cert.fingerprint256).not.toBe(fingerprintOf(leaf.certPem));
    }
    const rejected = logsWithMsg(lb, 'certificate rejected');
    const reasonOf = (source: string) => rejected.filter((l) => l.source === source).map((l) => String(l.reason));
    expect(reasonOf('vault:certs/plain')).toEqual([expect.stringMatching(/not encrypted, but KONTENA_LB_VAULT_KEY is set/)]);
    expect(reasonOf('vault:certs/other-key')).toEqual([expect.stringMatching(/different KONTENA_LB_VAULT_KEY/)]);
    expect(reasonOf('vault:certs/altered')).toEqual([expect.stringMatching(/altered or truncated/)]);
    expect(rejected).toHaveLength(3);
    // Neither the vault key nor key material is ever logged.
    const allLogs = JSON.stringify(lb.logs);
    expect(allLogs).not.toContain(VAULT_KEY);
    expect(allLogs).not.toContain('PRIVATE KEY');

    // Re-imported encrypted, the plain one is served, live.
    await settled(lb, await putKeys(etcd, lb, { 'certs/plain': encryptBundle(plain.bundlePem, VAULT_KEY) }));
    await expectServedCert(port, 'plain.test', plain);
    await expectServedCert(port, 'enc.test', enc);
  });
});

describe('the watched directory (KONTENA_LB_CERTS_DIR)', () => {
  it('adding, replacing (renamed over, or rewritten in place) and removing a .pem takes effect live, without a reload', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-tls-live-'));
    tempDirs.push(dir);
    const [v1, v2, v3] = await Promise.all([1, 2, 3].map(() => makeLeaf({ names: ['d.test'], issuer: ca })));
    expect(new Set([v1!, v2!, v3!].map((l) => serialOf(l.certPem))).size).toBe(3);
    const lb = await lbWith(
      { 'services/web/virtual_hosts': 'd.test,base.test', 'services/web/upstreams/one': b.web.address },
      // The directory's certificates would sort before the environment's: pin the default.
      { KONTENA_LB_CERTS_DIR: dir, KONTENA_LB_DEFAULT_CERT: 'base' },
      [envCert('SSL_CERT_base', base.bundlePem)],
    );
    const port = lb.config.httpsPort;
    await expectServedCert(port, 'd.test', base, { what: 'd.test to get the default before its file exists' });
    const before = counters(lb);

    // Add.
    await writeFile(path.join(dir, 'd.pem'), v1!.bundlePem);
    await expectServedCert(port, 'd.test', v1!);

    // Replace by renaming a new file over it (an atomic write; the dotfile is never read).
    await writeFile(path.join(dir, '.d.pem.tmp'), v2!.bundlePem);
    await rename(path.join(dir, '.d.pem.tmp'), path.join(dir, 'd.pem'));
    const replaced = await expectServedCert(port, 'd.test', v2!);
    expect(replaced.cert.serialNumber).toBe(serialOf(v2!.certPem));
    expect(replaced.cert.serialNumber).not.toBe(serialOf(v1!.certPem));

    // Replace in place.
    await writeFile(path.join(dir, 'd.pem'), v3!.bundlePem);
    await expectServedCert(port, 'd.test', v3!);

    // Remove: the name falls back to the default.
    await unlink(path.join(dir, 'd.pem'));
    await expectServedCert(port, 'd.test', base);

    await lb.controller.whenIdle();
    const after = counters(lb);
    expect(after.reloads, 'no reload for certificate changes').toBe(before.reloads);
    expect(after.runtimeUpdates).toBeGreaterThanOrEqual(before.runtimeUpdates + 4);
    expect(after.failures).toBe(0);
    expect(lb.controller.status().certs.served.map((s) => s.bundle.source.ref)).toEqual(['SSL_CERT_base']);
  });
});

describe('certificate changes through the runtime API', () => {
  it('adding, replacing and removing a non-default certificate needs no reload, and open connections carry on', async () => {
    const [extra1, extra2, moved, base2] = (await Promise.all([
      makeLeaf({ names: ['extra.test'], issuer: ca }),
      makeLeaf({ names: ['extra.test'], issuer: ca }),
      makeLeaf({ names: ['moved.test'], issuer: ca }),
      makeLeaf({ names: ['base.test'], issuer: ca }),
    ])) as [LeafCert, LeafCert, LeafCert, LeafCert];
    const lb = await lbWith({
      'services/web/virtual_hosts': 'base.test,extra.test,moved.test',
      'services/web/upstreams/one': b.web.address,
      'certs/base': base.bundlePem,
    });
    const port = lb.config.httpsPort;
    await expectServedCert(port, undefined, base);

    // A keep-alive connection opened before any change: it must survive all of them.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await httpsGet(port, { servername: 'base.test', agent, path: '/ka/0' });
      expect(first.status).toBe(200);
      const sockets = new Set<unknown>();
      agent.on('free', (socket) => sockets.add(socket));
      const before = counters(lb);
      let step = 0;
      const expectNoReload = async (what: string, runtimeUpdates: number) => {
        await lb.controller.whenIdle();
        const now = counters(lb);
        expect(now.reloads, `${what}: reloads`).toBe(before.reloads);
        expect(now.runtimeUpdates, `${what}: runtime updates`).toBe(before.runtimeUpdates + runtimeUpdates);
        expect((await httpsGet(port, { servername: 'base.test', agent, path: `/ka/${++step}` })).status).toBe(200);
      };

      await settled(lb, await putKeys(etcd, lb, { 'certs/extra': extra1.bundlePem }));
      await expectServedCert(port, 'extra.test', extra1);
      await expectNoReload('add', 1);

      await settled(lb, await putKeys(etcd, lb, { 'certs/extra': extra2.bundlePem }));
      await expectServedCert(port, 'extra.test', extra2);
      await expectNoReload('replace', 2);

      // Replaced by a certificate for another name: the crt-list line's SNI filter changes.
      await settled(lb, await putKeys(etcd, lb, { 'certs/extra': moved.bundlePem }));
      await expectServedCert(port, 'moved.test', moved);
      await expectServedCert(port, 'extra.test', base);
      await expectNoReload('replace with other names', 3);

      await settled(lb, await deleteKey(etcd, lb, 'certs/extra'));
      await expectServedCert(port, 'moved.test', base);
      await expectNoReload('remove', 4);

      // The default certificate's content replaced (same vault key): in place as well.
      await settled(lb, await putKeys(etcd, lb, { 'certs/base': base2.bundlePem }));
      await expectServedCert(port, undefined, base2);
      await expectServedCert(port, 'base.test', base2);
      await expectNoReload('replace the default', 5);

      // Every request went over the one connection opened at the start.
      expect(sockets.size).toBe(1);
      expect(lb.controller.status().counters.failures).toBe(0);
    } finally {
      agent.destroy();
    }
  });

  it('wildcard and CRLF bundles go in at runtime too, and runtime changes keep working after a reload', async () => {
    const [wild, crlf] = (await Promise.all([makeLeaf({ names: ['*.w.test'], issuer: ca }), makeLeaf({ names: ['crlf.test'], issuer: ca })])) as [
      LeafCert,
      LeafCert,
    ];
    const lb = await lbWith({
      'services/web/virtual_hosts': 'base.test',
      'services/web/upstreams/one': b.web.address,
      'certs/base': base.bundlePem,
    });
    const port = lb.config.httpsPort;
    await expectServedCert(port, 'base.test', base);
    const before = counters(lb);

    await settled(lb, await putKeys(etcd, lb, { 'certs/wild': wild.bundlePem }));
    await expectServedCert(port, 'x.w.test', wild);
    await settled(lb, await putKeys(etcd, lb, { 'certs/crlf': crlf.bundlePem.replace(/\n/g, '\r\n') }));
    await expectServedCert(port, 'crlf.test', crlf);
    expect(counters(lb).reloads, 'wildcard and CRLF bundles added without a reload').toBe(before.reloads);
    expect(counters(lb).runtimeUpdates).toBe(before.runtimeUpdates + 2);

    // A service change reloads HAProxy: the new worker reads the certificates from the state dir.
    await settled(lb, await putKeys(etcd, lb, { 'services/other/virtual_hosts': 'other.test', 'services/other/upstreams/one': b.web.address }));
    // (Two puts: one reload, or two when the controller applies them separately.)
    const reloaded = counters(lb);
    expect(reloaded.reloads).toBeGreaterThan(before.reloads);
    await expectServedCert(port, 'x.w.test', wild);
    await expectServedCert(port, 'crlf.test', crlf);
    await expectServedCert(port, undefined, base);

    // ...and the runtime API still applies to it.
    await settled(lb, await deleteKey(etcd, lb, 'certs/wild'));
    await expectServedCert(port, 'x.w.test', base);
    expect(counters(lb).reloads).toBe(reloaded.reloads);
    expect(counters(lb).runtimeUpdates).toBe(reloaded.runtimeUpdates + 1);
    expect(counters(lb).failures).toBe(0);
  });
});
