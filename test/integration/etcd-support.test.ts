import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeCertFiles } from '../support/certs.js';
import { newEtcdClient, type EtcdAccess } from '../support/etcd-access.js';
import { clientTls } from '../support/etcd-tls.js';
import { keyPath, v2Json, v2Request, type V2KeyReply, type V2Node, type V2Target } from '../support/etcd-v2.js';
import { startEtcd, startEtcdCluster, v2Admin, type EtcdCluster, type EtcdServer } from '../support/etcd.js';
import { addInstance, linkService, linkTcpService, removeInstance, unlinkService } from '../support/kontena-agent.js';
import { startV2OnlyFront, type V2OnlyFront } from '../support/v2-only-front.js';
import { waitFor } from '../support/wait.js';

// The test support for the etcd that deployments run (v2 API, TLS, auth, clusters), checked
// against the real etcd 3.4 so the tests built on it test the product, not the helpers.

const PREFIX = '/kontena/haproxy/lb1';
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  removeCertFiles(); // the CAs and leaves `tls: true` made (the servers' copies went with their temp dirs)
});

function track<T extends { stop(): Promise<unknown> }>(started: T): T {
  cleanups.push(() => started.stop());
  return started;
}

/** A v3 read as `access`, given up after a few seconds (no retries, so a refusal shows at once). */
async function v3Get(hosts: string | readonly string[], access: EtcdAccess, key: string): Promise<string | null> {
  const client = newEtcdClient(hosts, access, { dialTimeout: 2000, defaultCallOptions: () => ({ deadline: Date.now() + 4000 }) });
  try {
    return await client.get(key).string();
  } finally {
    client.close();
  }
}

async function v3Put(hosts: string | readonly string[], access: EtcdAccess, key: string, value: string): Promise<void> {
  const client = newEtcdClient(hosts, access, { dialTimeout: 2000, defaultCallOptions: () => ({ deadline: Date.now() + 4000 }) });
  try {
    await client.put(key).value(value);
  } finally {
    client.close();
  }
}

/** Every leaf under `node` as key → value. */
function leaves(node: V2Node | undefined, into: Record<string, string> = {}): Record<string, string> {
  if (node?.dir) for (const child of node.nodes ?? []) leaves(child, into);
  else if (node?.key !== undefined && node.value !== undefined) into[node.key] = node.value;
  return into;
}

async function tree(target: V2Target, key: string): Promise<Record<string, string>> {
  const reply = await v2Request(target, 'GET', `${keyPath(key)}/`, { query: { recursive: 'true' } });
  return reply.status === 404 ? {} : leaves(v2Json<V2KeyReply>(reply)?.node);
}

/** The v2 store's open watchers: how a test sees that a long-poll reached etcd, or ended there. */
async function watchers(target: V2Target): Promise<number> {
  return (v2Json<{ watchers: number }>(await v2Request(target, 'GET', '/v2/stats/store')) ?? { watchers: -1 }).watchers;
}

describe('v2-only front (etcd 2.3 stand-in)', () => {
  let etcd: EtcdServer;
  let front: V2OnlyFront;
  beforeAll(async () => {
    etcd = track(await startEtcd({ enableV2: true }));
    front = track(await startV2OnlyFront(etcd.endpoint));
  });

  it('says it is etcd 2.3.7, serves /health, and answers other paths 404 like etcd 2.3', async () => {
    const version = await v2Request(front, 'GET', '/version');
    expect(JSON.parse(version.body)).toEqual({ etcdserver: '2.3.7', etcdcluster: '2.3.0' });
    expect((await v2Request(front, 'GET', '/health')).status).toBe(200);
    const v3 = await v2Request(front, 'POST', '/v3/kv/range', { json: { key: 'eA==' } });
    expect([v3.status, v3.body]).toEqual([404, '404 page not found\n']);
  });

  it('forwards writes, reads and a long-poll watch, which stays open until its event', async () => {
    const put = await v2Request(front, 'PUT', keyPath(`${PREFIX}/front/a`), { form: { value: 'one' } });
    expect(put.status).toBe(201);
    const index = v2Json<V2KeyReply>(put)!.node.modifiedIndex;
    expect(put.etcdIndex).toBe(index);
    expect(v2Json<V2KeyReply>(await v2Request(front, 'GET', keyPath(`${PREFIX}/front/a`)))?.node.value).toBe('one');

    const watch = v2Request(front, 'GET', keyPath(`${PREFIX}/front`), {
      query: { wait: 'true', recursive: 'true', waitIndex: String(index + 1) },
      timeoutMs: 20_000,
    });
    await waitFor(async () => (await watchers(v2Admin(etcd))) === 1, { what: 'the watch to reach etcd' });
    await v2Request(v2Admin(etcd), 'PUT', keyPath(`${PREFIX}/front/b`), { form: { value: 'two' } });
    const event = v2Json<V2KeyReply>(await watch);
    expect([event?.action, event?.node.key, event?.node.value]).toEqual(['set', `${PREFIX}/front/b`, 'two']);
    expect(front.requests).toContain(`GET ${keyPath(`${PREFIX}/front`)}?wait=true&recursive=true&waitIndex=${index + 1}`);
  });

  it('dropConnections cuts an open watch and its upstream request; new requests still work', async () => {
    const watch = v2Request(front, 'GET', keyPath(`${PREFIX}/dropped`), { query: { wait: 'true' }, timeoutMs: 20_000 });
    const outcome = watch.then(
      () => 'answered',
      () => 'cut',
    );
    await waitFor(async () => (await watchers(v2Admin(etcd))) === 1, { what: 'the watch to reach etcd' });
    front.dropConnections();
    expect(await outcome).toBe('cut');
    await waitFor(async () => (await watchers(v2Admin(etcd))) === 0, { what: 'etcd to drop the upstream watch' });
    expect((await v2Request(front, 'GET', '/version')).status).toBe(200);
  });

  it('an etcd3 (gRPC) client fails against it, as against etcd 2.3', async () => {
    const before = front.requests.length;
    await expect(v3Get(front.endpoint, {}, 'x')).rejects.toThrow(/UNAVAILABLE.*Protocol error/);
    expect(front.requests.length).toBe(before); // the HTTP/2 preface never became an HTTP/1 request
  });

  it("kontena-agent writes the platform's keys through it", async () => {
    const lb = `${PREFIX}/agent`;
    await linkService(front, lb, 'web', { virtualHosts: 'web.test' });
    await addInstance(front, lb, 'web', 'web-1', '10.81.0.1:80');
    const last = await addInstance(front, lb, 'web', 'web-2', '10.81.0.2:80');
    expect(await tree(front, lb)).toEqual({
      [`${lb}/services/web/balance`]: 'roundrobin',
      [`${lb}/services/web/virtual_hosts`]: 'web.test',
      [`${lb}/services/web/upstreams/web-1`]: '10.81.0.1:80',
      [`${lb}/services/web/upstreams/web-2`]: '10.81.0.2:80',
    });
    expect(await removeInstance(front, lb, 'web', 'web-1')).toBeGreaterThan(last);
    await removeInstance(front, lb, 'web', 'web-1'); // gone already: not an error, as on the platform
    // Relinked as TCP: the HTTP directory goes, the (empty) services dir stays.
    await linkTcpService(front, lb, 'web', { externalPort: 5432 });
    expect(await tree(front, lb)).toEqual({
      [`${lb}/tcp-services/web/external_port`]: '5432',
      [`${lb}/tcp-services/web/balance`]: 'roundrobin',
    });
    await unlinkService(front, lb, 'web', 'tcp');
    expect(await tree(front, lb)).toEqual({});
    const dirs = v2Json<V2KeyReply>(await v2Request(front, 'GET', `${keyPath(lb)}/`))?.node.nodes?.map((n) => [n.key, n.dir]);
    expect(dirs?.sort()).toEqual([
      [`${lb}/services`, true],
      [`${lb}/tcp-services`, true],
    ]);
  });
});

// etcd (Go) ends the handshake with a bad_certificate alert both when no certificate comes and
// when it does not chain to the trusted CA.
const REFUSED_HANDSHAKE = /alert bad certificate|certificate required/;

describe('TLS etcd (client certificates required)', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = track(await startEtcd({ tls: true, enableV2: true }));
  });

  it('v3: refuses no certificate and the untrusted one, accepts the trusted one', async () => {
    const tls = etcd.tls!;
    expect(etcd.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await etcd.client.put('tls/a').value('1');
    await expect(v3Get(etcd.endpoint, { tls: clientTls(tls, 'none') }, 'tls/a')).rejects.toThrow(REFUSED_HANDSHAKE);
    await expect(v3Get(etcd.endpoint, { tls: clientTls(tls, tls.untrustedClient) }, 'tls/a')).rejects.toThrow(REFUSED_HANDSHAKE);
    await expect(v3Get(etcd.endpoint.replace('https:', 'http:'), {}, 'tls/a')).rejects.toThrow(/UNAVAILABLE/);
    expect(await v3Get(etcd.endpoint, { tls: clientTls(tls) }, 'tls/a')).toBe('1');
  });

  it('v2 over https: the same three cases', async () => {
    const tls = etcd.tls!;
    const key = keyPath('/tls/v2');
    await expect(v2Request({ endpoint: etcd.endpoint, tls: clientTls(tls, 'none') }, 'GET', key)).rejects.toThrow(REFUSED_HANDSHAKE);
    await expect(v2Request({ endpoint: etcd.endpoint, tls: clientTls(tls, tls.untrustedClient) }, 'GET', key)).rejects.toThrow(REFUSED_HANDSHAKE);
    const trusted = { endpoint: etcd.endpoint, tls: clientTls(tls) };
    expect((await v2Request(trusted, 'PUT', key, { form: { value: 'v' } })).status).toBe(201);
    expect(v2Json<V2KeyReply>(await v2Request(trusted, 'GET', key))?.node.value).toBe('v');
  });
});

describe('password auth (v3 RBAC and v2 auth)', () => {
  const user = { username: 'lb1', password: 'lb1-test-password' };
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = track(await startEtcd({ enableV2: true, auth: { prefix: PREFIX, ...user } }));
  });

  it('v3: the user reads and writes its prefix only; a wrong password is refused; admin writes anywhere', async () => {
    await v3Put(etcd.endpoint, { auth: user }, `${PREFIX}/services/web/balance`, 'roundrobin');
    expect(await v3Get(etcd.endpoint, { auth: user }, `${PREFIX}/services/web/balance`)).toBe('roundrobin');
    await expect(v3Put(etcd.endpoint, { auth: user }, '/kontena/haproxy/lb2/x', 'no')).rejects.toThrow(/permission denied/i);
    await expect(v3Get(etcd.endpoint, { auth: user }, PREFIX)).rejects.toThrow(/permission denied/i); // the prefix without its slash
    await expect(v3Get(etcd.endpoint, { auth: { ...user, password: 'wrong' } }, `${PREFIX}/x`)).rejects.toThrow(/authentication failed/i);
    await expect(v3Get(etcd.endpoint, {}, `${PREFIX}/x`)).rejects.toThrow(/user name is empty|permission denied/i);
    await etcd.client.put('/elsewhere/admin').value('ok');
    expect(await etcd.client.get('/elsewhere/admin').string()).toBe('ok');
  });

  it('v2: the same, and a listing of the prefix needs the trailing slash', async () => {
    const asUser = { endpoint: etcd.endpoint, auth: user };
    const put = await v2Request(asUser, 'PUT', keyPath(`${PREFIX}/services/web/virtual_hosts`), { form: { value: 'a.test' } });
    expect(put.status).toBe(201);
    expect(await tree(asUser, PREFIX)).toEqual({ [`${PREFIX}/services/web/virtual_hosts`]: 'a.test' });
    expect((await v2Request(asUser, 'GET', keyPath(PREFIX), { query: { recursive: 'true' } })).status).toBe(401);
    // A recursive watch is checked like a listing: allowed on `<prefix>/`, refused on `<prefix>`.
    const watch = { wait: 'true', recursive: 'true', waitIndex: String(put.etcdIndex) };
    expect(v2Json<V2KeyReply>(await v2Request(asUser, 'GET', `${keyPath(PREFIX)}/`, { query: watch }))?.node.value).toBe('a.test');
    expect((await v2Request(asUser, 'GET', keyPath(PREFIX), { query: watch })).status).toBe(401);
    expect((await v2Request(asUser, 'PUT', keyPath('/kontena/haproxy/lb2/x'), { form: { value: 'no' } })).status).toBe(401);
    const wrong = { endpoint: etcd.endpoint, auth: { ...user, password: 'wrong' } };
    expect((await v2Request(wrong, 'GET', keyPath(`${PREFIX}/services/web/virtual_hosts`))).status).toBe(401);
    expect((await v2Request({ endpoint: etcd.endpoint }, 'GET', keyPath(`${PREFIX}/services/web/virtual_hosts`))).status).toBe(401);
    const asRoot = v2Admin(etcd);
    expect((await v2Request(asRoot, 'PUT', keyPath('/elsewhere/root'), { form: { value: 'ok' } })).status).toBe(201);
    // The platform's own write pattern works as the restricted user.
    await linkService(asUser, PREFIX, 'api', { virtualPath: '/api' });
    expect(await tree(asUser, `${PREFIX}/services/api`)).toEqual({
      [`${PREFIX}/services/api/balance`]: 'roundrobin',
      [`${PREFIX}/services/api/virtual_path`]: '/api',
    });
  });

  it('TLS and auth together: the user needs both its certificate and its password', async () => {
    const both = track(await startEtcd({ tls: true, enableV2: true, auth: { prefix: PREFIX, ...user } }));
    const tls = clientTls(both.tls!);
    await v3Put(both.endpoint, { tls, auth: user }, `${PREFIX}/x`, '1');
    await expect(v3Put(both.endpoint, { tls: clientTls(both.tls!, 'none'), auth: user }, `${PREFIX}/x`, '2')).rejects.toThrow();
    expect((await v2Request({ endpoint: both.endpoint, tls, auth: user }, 'GET', keyPath(`${PREFIX}/`))).status).toBe(404); // v2 and v3 keys are separate
    expect((await v2Request({ endpoint: both.endpoint, tls }, 'GET', keyPath(`${PREFIX}/`))).status).toBe(401);
    await both.client.put('/elsewhere/admin').value('ok');
  });
});

describe('3-member cluster', () => {
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = track(await startEtcdCluster(3, { enableV2: true }));
  });

  it('keeps taking writes through the survivors when the leader is SIGKILLed; the member rejoins on restart', async () => {
    const leader = await cluster.leaderIndex();
    await cluster.kill(leader);
    expect(cluster.members[leader]!.running).toBe(false);
    const survivors = cluster.endpoints.filter((_, i) => i !== leader);
    await waitFor(
      async () => {
        await v3Put(survivors, {}, 'cluster/after-kill', 'written');
        return true;
      },
      { timeoutMs: 15_000, what: 'a write through the survivors' },
    );
    const v2Write = await v2Request({ endpoint: survivors[0]! }, 'PUT', keyPath('/cluster/v2'), { form: { value: 'written' } });
    expect(v2Write.status).toBe(201);
    expect(await cluster.leaderIndex()).not.toBe(leader);

    await cluster.restart(leader);
    const rejoined = cluster.endpoints[leader]!;
    expect(await v3Get(rejoined, {}, 'cluster/after-kill')).toBe('written');
    await waitFor(async () => v2Json<V2KeyReply>(await v2Request({ endpoint: rejoined }, 'GET', keyPath('/cluster/v2')))?.node.value === 'written', {
      what: 'the v2 write on the rejoined member',
    });
  });
});
