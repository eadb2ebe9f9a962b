import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { startEtcdCluster, v2Admin, type EtcdCluster } from '../support/etcd.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startTestEdgelb } from '../support/edgelb.js';
import { addInstance, linkService } from '../support/kontena-agent.js';
import { closeBackends, expectRoute, lbReady, startBackends } from '../support/lb.js';
import { reportFault, startLoad } from '../support/load.js';
import { waitFor } from '../support/wait.js';

// A three-member etcd cluster, edgelb given every member, constant HTTP load through HAProxy:
// each member in turn (the one edgelb's watch uses, and the leader, among them) is SIGKILLed; a
// change written through the survivors right after must reach traffic, and no request may fail.
// For the v3 API and for the v2 API (as a Kontena grid writes). The precise delays are measured
// by `npm run bench -- etcd-failover`; the bound here allows for a loaded CI machine.

const CHANGE_BOUND_MS = 5000;
let cluster: EtcdCluster;
let backends: Record<'alpha' | 'bravo', Backend>;

beforeAll(async () => {
  cluster = await startEtcdCluster(3, { enableV2: true });
  backends = await startBackends('alpha', 'bravo');
});

afterAll(async () => {
  await closeBackends(backends);
  await cluster?.stop();
});

describe.each(['v3', 'v2'] as const)('a 3-member cluster over the %s API', (api) => {
  it('loses each member in turn under load: no request fails, and a change made right after each loss reaches traffic', async () => {
    const lb: TestEdgelb = await startTestEdgelb({ endpoint: cluster.endpoints[0]!, client: cluster.client }, {
      ETCD_ENDPOINTS: cluster.endpoints.join(','),
      ETCD_API: api,
      KONTENA_LB_CHECK_INTERVAL: '200ms',
    });
    try {
      await lbReady(lb);
      /** A write through a member that is running (the v2 agent talks to one member, as Kontena's does). */
      const write = async (service: string, host: string, backend: Backend, running: number) => {
        if (api === 'v3') {
          await lb.put(`services/${service}/virtual_hosts`, host);
          await lb.put(`services/${service}/upstreams/${service}-1`, backend.address);
        } else {
          await linkService(v2Admin(cluster, running), lb.prefix, service, { virtualHosts: host });
          await addInstance(v2Admin(cluster, running), lb.prefix, service, `${service}-1`, backend.address);
        }
      };
      await write('web', 'web.cluster.test', backends.alpha, 0);
      await expectRoute(lb, '/', 'web.cluster.test', 'alpha');
      const load = startLoad({ port: lb.httpPort, host: 'web.cluster.test', keepAliveClients: 2, newConnectionClients: 2, maxDurationMs: 80_000 });
      await load.succeededSince(Date.now(), 20);

      const delays: number[] = [];
      for (let member = 0; member < 3; member++) {
        const leader = await cluster.leaderIndex();
        await cluster.kill(member);
        const killedAt = Date.now();
        const running = (member + 1) % 3;
        // The change goes in as soon as the survivors take writes (a new leader, when the killed one led).
        await waitFor(async () => {
          try {
            await write(`round-${member}`, `round-${member}.cluster.test`, member % 2 === 0 ? backends.bravo : backends.alpha, running);
            return true;
          } catch {
            return false;
          }
        }, { timeoutMs: 15_000, intervalMs: 100, what: 'the surviving members to take a write' });
        const written = Date.now();
        await expectRoute(lb, '/', `round-${member}.cluster.test`, member % 2 === 0 ? 'bravo' : 'alpha');
        delays.push(Date.now() - written);
        reportFault(`etcd-cluster-${api}-member-${member}`, { wasLeader: String(leader === member), writableAfterMs: written - killedAt, servedAfterWriteMs: Date.now() - written });
        await load.succeededSince(Date.now(), 10);
        await cluster.restart(member);
      }
      const summary = await load.stop();
      reportFault(`etcd-cluster-${api}`, { failed: summary.failed, connectionErrors: summary.connectionErrors, requests: summary.requests, maxChangeMs: Math.max(...delays) });
      expect(summary.failed, summary.examples.join('; ')).toBe(0);
      expect(Math.max(...delays)).toBeLessThan(CHANGE_BOUND_MS);
      expect(lb.source.status()).toMatchObject({ api, connected: true });
    } finally {
      await lb.stopAll();
    }
  });
});
