import { rm } from 'node:fs/promises';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { freshStartConfig, servedConfig } from '../support/fresh-start.js';
import { closeBackends, expectRoute, logsWithMsg, putKeys, settled, startBackends, startLbWith } from '../support/lb.js';
import { reportFault, startLoad, type Load } from '../support/load.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

// etcd failures under constant load: traffic keeps flowing on the current config, and the
// controller ends up exactly where a fresh start would.

let etcd: EtcdServer;
let b: Record<'a' | 'b', Backend>;
const running: TestEdgelb[] = [];
const loads: Load[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('a', 'b');
});

afterEach(async () => {
  for (const load of loads.splice(0)) await load.stop();
  for (const lb of running.splice(0)) await lb.stopAll().catch(() => undefined);
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

afterAll(async () => {
  await closeBackends(b);
  await etcd?.stop();
});

const entries = () => ({
  'services/web/virtual_hosts': 'web.test',
  'services/web/upstreams/one': b.a.address,
});

/** Starts the load once the route answers (a new instance takes traffic only after its first health check). */
async function loadOn(lb: TestEdgelb): Promise<Load> {
  await expectRoute(lb, '/', 'web.test', 'a');
  return webLoad(lb);
}

function webLoad(lb: TestEdgelb): Load {
  const load = startLoad({ port: lb.httpPort, host: 'web.test', ok: (status, body) => status === 200 && body.includes('"backend":"a"') });
  loads.push(load);
  return load;
}

/**
 * Writes through a new client: the test's own client may still be in gRPC's reconnect backoff
 * after etcd was down, which would measure the test's client instead of the controller.
 */
async function putFresh(lb: TestEdgelb, values: Record<string, string>): Promise<bigint> {
  const client = new Etcd3({ hosts: etcd.endpoint });
  try {
    let revision = 0n;
    for (const [key, value] of Object.entries(values)) revision = BigInt((await client.put(`${lb.prefix}/${key}`).value(value)).header.revision);
    return revision;
  } finally {
    client.close();
  }
}

async function expectFreshStartEquivalent(lb: TestEdgelb): Promise<void> {
  await lb.controller.whenIdle();
  expect(await servedConfig(lb)).toBe(await freshStartConfig(etcd, lb));
}

describe('etcd faults under load', () => {
  it('etcd stopped at start: the last good config is served, then the controller converges when etcd comes', async () => {
    const first = await startLbWith(etcd, entries());
    await expectRoute(first, '/', 'web.test', 'a');
    await first.stop();
    cleanups.push(() => rm(first.config.stateDir, { recursive: true, force: true }));
    await etcd.halt();
    cleanups.push(() => etcd.restart().catch(() => undefined)); // in case the test fails while it is down

    const load = webLoad(first);
    const started = Date.now();
    const second = await startTestEdgelb(etcd, {}, { stateDir: first.config.stateDir, prefix: first.prefix, httpPort: first.httpPort });
    running.push(second);
    const firstGood = await load.succeededSince(started);
    await waitFor(() => logsWithMsg(second, 'etcd has not answered yet: serving the last good config from the state dir').length > 0, {
      what: 'the last-good log line',
    });

    await etcd.restart();
    const etcdBack = Date.now();
    cleanups.pop();
    await settled(second, await putFresh(second, { 'services/other/virtual_hosts': 'other.test', 'services/other/upstreams/one': b.b.address }), 20_000);
    await expectRoute(second, '/', 'other.test', 'b');
    const converged = Date.now();
    await expectFreshStartEquivalent(second);

    const summary = await load.stop();
    const afterServing = load.summary(firstGood);
    reportFault('etcd-down-at-start', {
      failed: summary.failed,
      failedWhileBothDown: load.summary(0, firstGood - 1).failed,
      failedWhileServing: afterServing.failed,
      requests: summary.requests,
      lastGoodServedMs: firstGood - started,
      recoveryMs: converged - etcdBack,
    });
    // Before HAProxy runs nothing can answer (etcd and HAProxy both down); from then on, nothing may fail.
    expect(afterServing.failed, afterServing.examples.join('; ')).toBe(0);
    expect(firstGood - started).toBeLessThan(5000);
  });

  it('etcd killed and restarted with its data: no request fails, the controller catches up', async () => {
    const lb = await startLbWith(etcd, entries());
    running.push(lb);
    const load = await loadOn(lb);
    await load.succeededSince(Date.now());

    const killedAt = Date.now();
    await etcd.halt(true);
    cleanups.push(() => etcd.restart().catch(() => undefined));
    await waitFor(() => lb.logs.some((l) => /^etcd watch (lost|cancelled)|^cannot read from etcd/.test(String(l.msg))), {
      what: 'the controller to notice etcd is gone',
    });
    await load.succeededSince(Date.now(), 20); // traffic flows while etcd is down

    await etcd.restart();
    const restartedAt = Date.now();
    cleanups.pop();
    await settled(lb, await putFresh(lb, { 'services/other/virtual_hosts': 'other.test', 'services/other/upstreams/one': b.b.address }), 20_000);
    await expectRoute(lb, '/', 'other.test', 'b');
    const caughtUp = Date.now();
    await expectFreshStartEquivalent(lb);

    const summary = await load.stop();
    reportFault('etcd-killed-restarted-with-data', {
      failed: summary.failed,
      connectionErrors: summary.connectionErrors,
      requests: summary.requests,
      etcdDownMs: restartedAt - killedAt,
      recoveryMs: caughtUp - restartedAt,
    });
    expect(summary.failed, summary.examples.join('; ')).toBe(0);
  });

  it('etcd restarted without its data: the controller re-reads the fresh etcd and converges when entries are written again', async () => {
    const lb = await startLbWith(etcd, entries());
    running.push(lb);
    const load = await loadOn(lb);
    await load.succeededSince(Date.now());

    await etcd.halt(true);
    cleanups.push(() => etcd.restart().catch(() => undefined));
    await rm(etcd.dataDir, { recursive: true, force: true });
    await etcd.restart();
    const restartedAt = Date.now();
    cleanups.pop();
    // The platform's agents write their entries again (here at once, as they would on reconnect).
    const revision = await putFresh(lb, { ...entries(), 'services/other/virtual_hosts': 'other.test', 'services/other/upstreams/one': b.b.address });
    // The fresh etcd's revisions start again from 1, so "applied revision >= N" says nothing here: wait for the route.
    await waitFor(async () => (await get(lb.httpPort, '/', 'other.test')).backend === 'b', { timeoutMs: 20_000, what: 'other.test to be served' });
    await settled(lb, revision);
    const converged = Date.now();
    await expectFreshStartEquivalent(lb);

    const summary = await load.stop();
    reportFault('etcd-restarted-without-data', {
      failed: summary.failed,
      connectionErrors: summary.connectionErrors,
      badAnswers: summary.badAnswers,
      requests: summary.requests,
      recoveryMs: converged - restartedAt,
    });
    // A fresh etcd briefly holds no entries; if the controller reads it in that moment it serves what
    // etcd says (no route: a 503 page), never a connection error.
    expect(summary.connectionErrors, summary.examples.join('; ')).toBe(0);
    expect(summary.failed, summary.examples.join('; ')).toBe(summary.badAnswers);
  });

  it('a partition while a change is made and compacted away: the controller re-reads everything and applies it', async () => {
    const proxy: TcpProxy = await startTcpProxy(Number(new URL(etcd.endpoint).port));
    cleanups.push(() => proxy.close());
    const lb = await startLbWith(etcd, entries(), { ETCD_ENDPOINTS: `http://127.0.0.1:${proxy.port}` });
    running.push(lb);
    const load = await loadOn(lb);
    await load.succeededSince(Date.now());
    const before = lb.controller.status().revision;

    proxy.cut();
    await waitFor(() => lb.logs.some((l) => /^etcd watch (lost|cancelled)|^cannot read from etcd/.test(String(l.msg))), {
      what: 'the controller to lose etcd',
    });
    // The pending change, then a compaction past it: the controller's revision is gone from etcd's history.
    const revision = await putKeys(etcd, lb, { 'services/other/virtual_hosts': 'other.test', 'services/other/upstreams/one': b.b.address });
    const compactTo = await putKeys(etcd, lb, { 'services/later/virtual_path': '/later' });
    await etcd.client.kv.compact({ revision: String(compactTo), physical: true });
    expect(compactTo).toBeGreaterThan(BigInt(before ?? '0') + 1n);

    const restoredAt = Date.now();
    proxy.restore();
    await settled(lb, revision, 20_000);
    await expectRoute(lb, '/', 'other.test', 'b');
    const converged = Date.now();
    await expectFreshStartEquivalent(lb);

    const summary = await load.stop();
    reportFault('etcd-compacted-while-partitioned', {
      failed: summary.failed,
      requests: summary.requests,
      recoveryMs: converged - restoredAt,
    });
    expect(summary.failed, summary.examples.join('; ')).toBe(0);
  });
});
