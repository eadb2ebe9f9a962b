import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCheckedBackend, type CheckedBackend } from '../support/checked-backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { expectBackendSet, putKeys, sample, settled, startLbWith } from '../support/lb.js';
import { request } from '../support/requests.js';

// canary and canary_header (issue 15) through a real HAProxy: a share of a service's requests
// goes to another service, the share changes through the runtime API (`set map`, no reload), and
// the header always selects the canary.

let etcd: EtcdServer;
const running: TestEdgelb[] = [];
const backends: CheckedBackend[] = [];

async function backend(name: string): Promise<CheckedBackend> {
  const b = await startCheckedBackend(name);
  backends.push(b);
  return b;
}

beforeAll(async () => {
  etcd = await startEtcd();
});

afterEach(async () => {
  for (const lb of running.splice(0)) await lb.stopAll();
  for (const b of backends.splice(0)) await b.close();
});

afterAll(async () => {
  await etcd?.stop();
});

describe('canary', () => {
  it('sends its share of requests to the canary service, changes the share without a reload, and the header always selects it', async () => {
    const [stable, next] = [await backend('stable'), await backend('next')];
    const lb = await startLbWith(etcd, {
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/one': stable.address,
      'services/web/canary': 'web-next:0',
      'services/web/canary_header': 'X-Canary:always',
      'services/web-next/virtual_hosts': 'next.test',
      'services/web-next/upstreams/one': next.address,
    });
    running.push(lb);
    await expectBackendSet(lb, '/', 'web.test', ['stable'], 20);
    // The canary service keeps its own route.
    await expectBackendSet(lb, '/', 'next.test', ['next']);
    const header = await request(lb.httpPort, { host: 'web.test', headers: { 'X-Canary': 'always' } });
    expect(header.backend).toBe('next');
    expect((await request(lb.httpPort, { host: 'web.test', headers: { 'X-Canary': 'other' } })).backend).toBe('stable');

    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await putKeys(etcd, lb, { 'services/web/canary': 'web-next:100' }));
    await expectBackendSet(lb, '/', 'web.test', ['next'], 20);

    await settled(lb, await putKeys(etcd, lb, { 'services/web/canary': 'web-next:25' }));
    const seen = await sample(lb, '/', 'web.test', 400);
    const share = seen.filter((name) => name === 'next').length / seen.length;
    // 400 draws at 25%: the standard deviation is about 2.2 points; 15–35% is over 4 of them.
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.35);
    expect(seen.every((name) => name === 'next' || name === 'stable')).toBe(true);

    expect(lb.controller.status().counters.reloads).toBe(reloads);
    expect(lb.controller.status().lastApply?.action).toBe('runtime');

    // A reload (a route changed) keeps the share: the map file was written with it.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/virtual_path': '/', 'services/web/canary': 'web-next:100' }));
    await expectBackendSet(lb, '/', 'web.test', ['next'], 20);
    expect(lb.controller.status().counters.reloads).toBe(reloads + 1);
  });

  it('a canary naming no served service is left off, with the rejection; the service serves on', async () => {
    const stable = await backend('stable');
    const lb = await startLbWith(etcd, {
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/one': stable.address,
      'services/web/canary': 'missing:50',
    });
    running.push(lb);
    await expectBackendSet(lb, '/', 'web.test', ['stable'], 20);
    expect(JSON.stringify(lb.controller.status())).toContain('unknown_canary');
  });
});
