import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { startEtcd, v2Admin, type EtcdServer } from '../support/etcd.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startTestEdgelb } from '../support/edgelb.js';
import { keyPath, v2Request } from '../support/etcd-v2.js';
import { addInstance, linkService, linkTcpService, removeInstance, unlinkService } from '../support/kontena-agent.js';
import {
  appliedRevision,
  closeBackends,
  expectBackendSet,
  expectNoRoute,
  expectRoute,
  lbReady,
  logsWithMsg,
  settled,
  startBackends,
  startEchoServer,
  tcpRoundTrip,
  type EchoServer,
} from '../support/lb.js';
import { freePort } from '../support/ports.js';
import { startV2OnlyFront, type V2OnlyFront } from '../support/v2-only-front.js';
import { waitFor } from '../support/wait.js';

// The etcd a Kontena grid runs: its agents write the service links through the v2 API
// (/v2/keys), against etcd 2.3 (emulated here by an HTTP/1-only front that says it is 2.3.7 and
// speaks no gRPC) or an etcd 3.x with --enable-v2. Entries are written exactly as the platform
// does (test/support/kontena-agent.ts), and every assertion is what a client of HAProxy sees.

let etcd: EtcdServer;
let front: V2OnlyFront;
let backends: Record<'alpha' | 'bravo', Backend>;
const lbs: TestEdgelb[] = [];

beforeAll(async () => {
  etcd = await startEtcd({ enableV2: true });
  front = await startV2OnlyFront(etcd.endpoint);
  backends = await startBackends('alpha', 'bravo');
});

afterEach(async () => {
  await Promise.all(lbs.splice(0).map((lb) => lb.stopAll()));
});

afterAll(async () => {
  await closeBackends(backends);
  await front?.stop();
  await etcd?.stop();
});

/** `resumeTimeoutMs`: how long a held-back watch may stay down before the source reads everything again. */
async function startLb(overrides: Record<string, string> = {}, resumeTimeoutMs?: number): Promise<TestEdgelb> {
  const lb = await startTestEdgelb(
    etcd,
    { ETCD_ENDPOINTS: front.endpoint, ...overrides },
    undefined,
    resumeTimeoutMs === undefined ? {} : { etcdResumeTimeoutMs: resumeTimeoutMs },
  );
  lbs.push(lb);
  await lbReady(lb);
  return lb;
}

const agent = () => v2Admin(etcd);
const address = (b: Backend) => `127.0.0.1:${b.port}`;

describe('a Kontena grid: etcd 2.3, v2 only', () => {
  it('chooses v2 by itself, serves what the platform links, and follows instance changes and the unlink', async () => {
    const lb = await startLb();
    await waitFor(() => logsWithMsg(lb, 'watching etcd').length > 0, { what: 'the source to watch' });
    expect(logsWithMsg(lb, 'watching etcd')[0]).toMatchObject({ api: 'v2', apiReason: 'etcd 2.3.7 has no v3 API', endpoints: [front.endpoint] });
    expect(lb.source.status()).toMatchObject({ api: 'v2', connected: true });

    await linkService(agent(), lb.prefix, 'web', { virtualHosts: 'www.grid.test' });
    await settled(lb, BigInt(await addInstance(agent(), lb.prefix, 'web', 'web-1', address(backends.alpha))));
    await expectRoute(lb, '/', 'www.grid.test', 'alpha');

    await addInstance(agent(), lb.prefix, 'web', 'web-2', address(backends.bravo));
    await expectBackendSet(lb, '/', 'www.grid.test', ['alpha', 'bravo']);

    await settled(lb, BigInt(await removeInstance(agent(), lb.prefix, 'web', 'web-1')));
    await expectBackendSet(lb, '/', 'www.grid.test', ['bravo']);

    // The platform unlinks a service with one recursive DELETE of its directory.
    await settled(lb, BigInt(await unlinkService(agent(), lb.prefix, 'web')));
    await expectNoRoute(lb, '/', 'www.grid.test');
    expect(lb.controller.status().state?.http.map((s) => s.name)).toEqual([]);
  });

  it('serves a TCP service linked through v2', async () => {
    const lb = await startLb();
    const echo: EchoServer = await startEchoServer();
    try {
      const port = await freePort();
      await linkTcpService(agent(), lb.prefix, 'db', { externalPort: port });
      await settled(lb, BigInt(await addInstance(agent(), lb.prefix, 'db', 'db-1', `127.0.0.1:${echo.port}`, 'tcp')));
      await waitFor(
        () =>
          tcpRoundTrip(port, Buffer.from('ping'))
            .then((b) => b.toString() === 'ping')
            .catch(() => false),
        { what: 'the TCP service to echo' },
      );
    } finally {
      await echo.close();
    }
  });

  it('resumes the watch after the connection drops, without missing a write made meanwhile', async () => {
    const lb = await startLb();
    await linkService(agent(), lb.prefix, 'web', { virtualHosts: 'resume.grid.test' });
    await settled(lb, BigInt(await addInstance(agent(), lb.prefix, 'web', 'web-1', address(backends.alpha))));
    const lists = () => front.requests.filter((r) => r.startsWith('GET ') && r.includes('recursive=true') && !r.includes('wait=true')).length;
    const listsBefore = lists();
    front.dropConnections();
    const index = await addInstance(agent(), lb.prefix, 'web', 'web-2', address(backends.bravo));
    await settled(lb, BigInt(index));
    await expectBackendSet(lb, '/', 'resume.grid.test', ['alpha', 'bravo']);
    // Resumed from the index it had, not read again from scratch.
    expect(lists()).toBe(listsBefore);
  });

  it('reads everything again when etcd cleared the history the watch needs (more than 1000 events behind)', async () => {
    // The resume deadline out of the way: the re-read must come from etcd's answer, not from it.
    const lb = await startLb({}, 60_000);
    await linkService(agent(), lb.prefix, 'web', { virtualHosts: 'history.grid.test' });
    await settled(lb, BigInt(await addInstance(agent(), lb.prefix, 'web', 'web-1', address(backends.alpha))));
    // Hold the watch back: edgelb's next poll cannot reach the front while 1100 other writes pass.
    await front.stop();
    // Fast, in parallel: the source reads everything again anyway if its watch has not resumed within 5 s.
    for (let batch = 0; batch < 1100; batch += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => v2Request(agent(), 'PUT', keyPath(`/elsewhere/churn-${batch + i}`), { form: { value: 'x' } })));
    }
    const index = await addInstance(agent(), lb.prefix, 'web', 'web-2', address(backends.bravo));
    front = await startV2OnlyFront(etcd.endpoint, { port: Number(new URL(front.endpoint).port) });
    await settled(lb, BigInt(index), 20_000);
    await expectBackendSet(lb, '/', 'history.grid.test', ['alpha', 'bravo']);
    expect(lb.logs.some((l) => l.code === 'history-lost')).toBe(true);
  });
});

describe('other load balancers on the same etcd', () => {
  it('a recursive delete of one whose name our prefix starts with leaves ours alone, even replayed from the history', async () => {
    // The resume deadline out of the way: a re-read would hide the delete being applied.
    const lb = await startLb({}, 60_000);
    const lists = () => front.requests.filter((r) => r.startsWith('GET ') && r.includes('recursive=true') && !r.includes('wait=true')).length;
    const sibling = lb.prefix.slice(0, -1); // "/kontena/haproxy/test-12-3" → "/kontena/haproxy/test-12-"
    await linkService(agent(), sibling, 'other', { virtualHosts: 'other.grid.test' });
    await linkService(agent(), lb.prefix, 'web', { virtualHosts: 'ours.grid.test' });
    await settled(lb, BigInt(await addInstance(agent(), lb.prefix, 'web', 'web-1', address(backends.alpha))));
    // Hold the watch back so that it finds the delete in etcd's history when it resumes: etcd v2
    // matches a deleted directory against the watched path by string prefix.
    await front.stop();
    await v2Request(agent(), 'DELETE', keyPath(sibling), { query: { recursive: 'true' } });
    const index = await addInstance(agent(), lb.prefix, 'web', 'web-2', address(backends.bravo));
    front = await startV2OnlyFront(etcd.endpoint, { port: Number(new URL(front.endpoint).port) });
    await settled(lb, BigInt(index));
    await expectBackendSet(lb, '/', 'ours.grid.test', ['alpha', 'bravo']);
    // The watch resumed through the delete: the restarted front saw no listing at all.
    expect(lists()).toBe(0);
    expect(lb.controller.status().state?.http.map((s) => s.name)).toEqual(['web']);
  });
});

describe('ETCD_API=auto on etcd 3.4 with the v2 API on', () => {
  it("watches both keyspaces while the prefix is empty, and the platform's first v2 write decides", async () => {
    const lb = await startTestEdgelb(etcd, {});
    lbs.push(lb);
    await lbReady(lb);
    await waitFor(() => lb.source.status().connected, { what: 'the source to watch both keyspaces' });
    expect(lb.source.status().api).toBeUndefined();

    await linkService(agent(), lb.prefix, 'web', { virtualHosts: 'auto-v2.test' });
    await addInstance(agent(), lb.prefix, 'web', 'web-1', address(backends.alpha));
    await expectRoute(lb, '/', 'auto-v2.test', 'alpha', undefined);
    expect(lb.source.status()).toMatchObject({ api: 'v2', connected: true });
    expect(logsWithMsg(lb, 'etcd API decided: the platform writes with v2')).toHaveLength(1);
  });

  it('and the first v3 write decides v3', async () => {
    const lb = await startTestEdgelb(etcd, {});
    lbs.push(lb);
    await lbReady(lb);
    await waitFor(() => lb.source.status().connected, { what: 'the source to watch both keyspaces' });
    await lb.put('services/web/virtual_hosts', 'auto-v3.test');
    await lb.put('services/web/upstreams/web-1', address(backends.bravo));
    await expectRoute(lb, '/', 'auto-v3.test', 'bravo');
    expect(lb.source.status()).toMatchObject({ api: 'v3' });
  });

  it('reads v2 when the platform made the prefix there before edgelb started', async () => {
    const prefix = `/kontena/haproxy/pre-${process.pid}`;
    await linkService(agent(), prefix, 'web', { virtualHosts: 'pre-v2.test' });
    await addInstance(agent(), prefix, 'web', 'web-1', address(backends.alpha));
    const lb = await startTestEdgelb(etcd, { ETCD_PATH: prefix });
    lbs.push(lb);
    await lbReady(lb);
    await expectRoute(lb, '/', 'pre-v2.test', 'alpha');
    expect(lb.source.status()).toMatchObject({ api: 'v2', apiReason: 'the prefix exists only in the v2 keyspace' });
    expect(appliedRevision(lb)).toBeGreaterThan(0n);
  });
});
