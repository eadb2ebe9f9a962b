import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { makeCa, makeLeaf, removeCertFiles, type LeafCert } from '../support/certs.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { closeBackends, deleteKey, lbReady, putKeys, settled, startBackends } from '../support/lb.js';
import { expectServedCert, startHttpsLoad, type HttpsLoad, type LoadStats } from '../support/tls.js';
import { waitFor } from '../support/wait.js';

// A certificate replaced again and again under constant HTTPS load: not one request may fail.

const LOAD_MS = 3000;
const MAX_SWAPS = 40;

let etcd: EtcdServer;
let b: Record<'web', Backend>;
let lb: TestEdgelb | undefined;
let load: HttpsLoad | undefined;

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web');
});

afterAll(async () => {
  await load?.stop();
  await lb?.stopAll();
  await closeBackends(b);
  await etcd?.stop();
  removeCertFiles();
});

describe('certificate swap under load', () => {
  it('replacing the served certificate (and adding/removing another) under constant HTTPS load fails no request', async () => {
    const ca = await makeCa('load test CA');
    const [base, churn, ...versions] = (await Promise.all([
      makeLeaf({ names: ['base.test'], issuer: ca }),
      makeLeaf({ names: ['churn.test'], issuer: ca }),
      ...Array.from({ length: 6 }, () => makeLeaf({ names: ['load.test'], issuer: ca })),
    ])) as LeafCert[];
    lb = await startTestEdgelb(etcd, {}, undefined, { envCerts: [{ source: { kind: 'env', ref: 'SSL_CERT_base' }, pem: base!.bundlePem }] });
    await lbReady(lb);
    await settled(
      lb,
      await putKeys(etcd, lb, {
        'services/web/virtual_hosts': 'load.test',
        'services/web/upstreams/one': b.web.address,
        'certs/load': versions[0]!.bundlePem,
      }),
    );
    const port = lb.config.httpsPort;
    await expectServedCert(port, 'load.test', versions[0]!);
    const before = lb.controller.status().counters;

    load = startHttpsLoad({ port, servername: 'load.test', backend: 'web', newConnectionClients: 4, keepAliveClients: 2 });
    await waitFor(() => load!.stats().requests >= 50, { timeoutMs: 10_000, what: 'the load to get going' });
    const started = Date.now();
    let swaps = 0;
    while ((Date.now() - started < LOAD_MS || swaps < 5) && swaps < MAX_SWAPS) {
      swaps++;
      const next = versions[swaps % versions.length]!;
      const churnChange = swaps % 2 === 1 ? { 'certs/churn': churn!.bundlePem } : undefined;
      await settled(lb, await putKeys(etcd, lb, { 'certs/load': next.bundlePem, ...churnChange }));
      if (!churnChange) await settled(lb, await deleteKey(etcd, lb, 'certs/churn'));
      await expectServedCert(port, 'load.test', next, { waitMs: 5000 });
    }
    const stats = await load.stop();
    load = undefined;
    if (process.env.EDGELB_TEST_VERBOSE) console.log({ swaps, ...stats, certs: [...stats.certs.values()] });

    expect(stats.failures, `failed requests:\n${stats.errors.join('\n')}`).toBe(0);
    expect(stats.newConnection.requests, 'new-connection requests').toBeGreaterThan(100);
    expect(stats.keepAlive.requests, 'keep-alive requests').toBeGreaterThan(100);
    // The new connections really were served the successive certificates while the load ran.
    expect(stats.certs.size, `certificates seen by the new connections: ${stats.certs.size} over ${swaps} swaps`).toBeGreaterThanOrEqual(3);
    const after = lb.controller.status().counters;
    expect(after.reloads, 'no reload').toBe(before.reloads);
    expect(after.runtimeUpdates).toBeGreaterThanOrEqual(before.runtimeUpdates + swaps);
    expect(after.failures).toBe(0);
  });

  it('a host name moving between two certificates under load is never left uncovered', async () => {
    // certs/a covers a.test and x.test; certs/b, valid longer, covers x.test and wins it while
    // present. Each move rewrites certs/a's crt-list line (its SNI filter changes), and B's line
    // comes and goes. Verifying clients on both names fail on any other certificate: the default
    // served for a moment would count.
    const ca = await makeCa('moving names CA');
    const [base, a, bLonger] = (await Promise.all([
      makeLeaf({ names: ['base.test'], issuer: ca }),
      makeLeaf({ names: ['a.test', 'x.test'], issuer: ca, days: 30 }),
      makeLeaf({ names: ['x.test'], issuer: ca, days: 90 }),
    ])) as LeafCert[];
    const moving = await startTestEdgelb(etcd, {}, undefined, { envCerts: [{ source: { kind: 'env', ref: 'SSL_CERT_base' }, pem: base!.bundlePem }] });
    try {
      await lbReady(moving);
      await settled(
        moving,
        await putKeys(etcd, moving, {
          'services/web/virtual_hosts': 'a.test,x.test',
          'services/web/upstreams/one': b.web.address,
          'certs/a': a!.bundlePem,
        }),
      );
      const port = moving.config.httpsPort;
      await expectServedCert(port, 'a.test', a!);
      await expectServedCert(port, 'x.test', a!);
      const before = moving.controller.status().counters;
      const loads = ['a.test', 'x.test'].map((name) =>
        startHttpsLoad({ port, servername: name, backend: 'web', newConnectionClients: 2, keepAliveClients: 0, ca: ca.certPem }),
      );
      let moves = 0;
      try {
        await waitFor(() => loads.every((l) => l.stats().requests >= 20), { timeoutMs: 10_000, what: 'the load to get going' });
        const started = Date.now();
        while ((Date.now() - started < LOAD_MS || moves < 6) && moves < MAX_SWAPS) {
          moves++;
          if (moves % 2 === 1) {
            await settled(moving, await putKeys(etcd, moving, { 'certs/b': bLonger!.bundlePem }));
            await expectServedCert(port, 'x.test', bLonger!, { waitMs: 5000 });
          } else {
            await settled(moving, await deleteKey(etcd, moving, 'certs/b'));
            await expectServedCert(port, 'x.test', a!, { waitMs: 5000 });
          }
        }
      } finally {
        const [onA, onX] = await Promise.all(loads.map((l) => l.stop()));
        if (process.env.EDGELB_TEST_VERBOSE) console.log({ moves, onA, onX });
        const summary = (name: string, stats: LoadStats) =>
          `${name}: ${stats.failures} of ${stats.requests} requests failed over ${moves} moves${stats.failures > 0 ? ` (${[...new Set(stats.errors)].join('; ')})` : ''}`;
        expect(
          { 'a.test': onA!.failures, 'x.test': onX!.failures },
          `${summary('a.test (kept by certs/a throughout)', onA!)}\n${summary('x.test (moving between certs/a and certs/b)', onX!)}`,
        ).toEqual({ 'a.test': 0, 'x.test': 0 });
        expect(onA!.requests).toBeGreaterThan(50);
      }
      expect(moving.controller.status().counters.reloads, 'no reload').toBe(before.reloads);
    } finally {
      await moving.stopAll();
    }
  });
});
