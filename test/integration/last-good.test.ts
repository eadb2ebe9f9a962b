import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../support/backend.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { waitFor } from '../support/wait.js';

describe('etcd unavailable at start', () => {
  let etcd: EtcdServer;
  let backend: Backend;
  const lbs: TestEdgelb[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    backend = await startBackend('kept');
  });
  afterAll(async () => {
    for (const lb of lbs) await lb.stop().catch(() => undefined);
    await backend?.close();
    await etcd?.stop();
  });

  it('serves the last good config from the state dir, then converges when etcd returns', async () => {
    const first = await startTestEdgelb(etcd);
    lbs.push(first);
    await first.put('services/web/virtual_hosts', 'kept.test');
    await first.put('services/web/upstreams/a', backend.address);
    await waitFor(async () => (await get(first.httpPort, '/', 'kept.test')).backend === 'kept', { what: 'first route' });
    await first.stop();
    await expect(get(first.httpPort, '/', 'kept.test')).rejects.toThrow(/ECONNREFUSED/);

    await etcd.halt();
    const second = await startTestEdgelb(etcd, {}, { stateDir: first.config.stateDir, prefix: first.prefix, httpPort: first.httpPort });
    lbs.push(second);
    const reply = await waitFor(
      async () => {
        const r = await get(second.httpPort, '/', 'kept.test');
        return r.backend === 'kept' && r;
      },
      { timeoutMs: 10_000, what: 'the last good config to be served while etcd is down' },
    );
    expect(reply.status).toBe(200);
    await waitFor(() => second.logs.some((l) => l.msg === 'etcd has not answered yet: serving the last good config from the state dir'), {
      what: 'the log line saying why',
    });

    await etcd.restart();
    await etcd.client.put(`${first.prefix}/services/web/virtual_hosts`).value('moved.test');
    await waitFor(async () => (await get(second.httpPort, '/', 'moved.test')).backend === 'kept', {
      timeoutMs: 20_000,
      what: 'convergence after etcd returns',
    });
    expect((await get(second.httpPort, '/', 'kept.test')).status).toBe(503);
  });
});
