import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { startLbWith } from '../support/lb.js';
import { request } from '../support/requests.js';
import { sleep, waitFor } from '../support/wait.js';
import { openWs, startMaster, type Master, type WsClient } from '../support/ws-master.js';

// edgelb in front of three platform masters (docker/stack-ha-masters.yml): each serves an HTTP
// API and a WebSocket endpoint that the nodes keep open. One master is killed (SIGKILL) in the
// middle of API traffic: the nodes that were on it reconnect and land on the survivors within
// seconds, the API keeps answering, and the only failures allowed are requests in flight on the
// dead master at the instant it died (at most one per concurrent client).

const HOST = 'master.platform.local';
const API_CLIENTS = 4;
const NODES = 6;

let etcd: EtcdServer;
let lb: TestEdgelb;
const masters: Record<string, Master> = {};

beforeAll(async () => {
  etcd = await startEtcd();
  for (const name of ['m1', 'm2', 'm3']) masters[name] = await startMaster(name);
  // The entries the platform writes for the stack file's `master` service.
  const stack = parseYaml(readFileSync(path.join(import.meta.dirname, '../../docker/stack-ha-masters.yml'), 'utf8')) as {
    services: { master: { environment: Record<string, string>; health_check: { uri: string } } };
  };
  const master = stack.services.master;
  lb = await startLbWith(etcd, {
    'services/master/virtual_hosts': HOST,
    'services/master/balance': master.environment.KONTENA_LB_BALANCE!,
    'services/master/health_check_uri': master.health_check.uri,
    'services/master/upstreams/m1': masters.m1!.address,
    'services/master/upstreams/m2': masters.m2!.address,
    'services/master/upstreams/m3': masters.m3!.address,
  });
});

afterAll(async () => {
  await lb?.stopAll();
  await Promise.all(Object.values(masters).map((m) => m.stop()));
  await etcd?.stop();
});

/** A node: keeps one WebSocket to "the master" open, reconnecting whenever it is closed. */
class Node {
  ws: WsClient | undefined;
  master: string | undefined;
  reconnects = 0;
  private stopped = false;

  constructor(private readonly port: number) {}

  async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const ws = await openWs(`ws://127.0.0.1:${this.port}/ws`, { headers: { host: HOST } }, 3000);
        this.master = (await ws.echo('hello')).split(':')[0];
        this.ws = ws;
        await ws.closed;
      } catch {
        // refused or reset: try again
      }
      this.ws = undefined;
      this.master = undefined;
      if (this.stopped) return;
      this.reconnects++;
      await sleep(100); // a node's reconnect back-off
    }
  }

  stop(): void {
    this.stopped = true;
    this.ws?.close();
  }
}

interface ApiLoad {
  ok: number;
  failed: string[];
  byMaster: Map<string, number>;
  maxLatencyMs: number;
  stop(): Promise<void>;
}

/** API_CLIENTS loops, each with one request in flight at a time. */
function startApiLoad(port: number): ApiLoad {
  let running = true;
  const load: ApiLoad = {
    ok: 0,
    failed: [],
    byMaster: new Map(),
    maxLatencyMs: 0,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
  const loop = async () => {
    while (running) {
      const started = Date.now();
      try {
        const reply = await request(port, { path: '/v1/ping', host: HOST, timeoutMs: 10_000 });
        if (reply.status === 200 && reply.backend) {
          load.ok++;
          load.byMaster.set(reply.backend, (load.byMaster.get(reply.backend) ?? 0) + 1);
        } else load.failed.push(`status ${reply.status}`);
      } catch (error) {
        load.failed.push((error as Error).message);
      }
      load.maxLatencyMs = Math.max(load.maxLatencyMs, Date.now() - started);
    }
  };
  const loops = Array.from({ length: API_CLIENTS }, loop);
  return load;
}

describe('HA masters behind edgelb', () => {
  it('survive the death of one master: nodes reconnect to the others, the API keeps answering', async () => {
    // Every master has passed its first health check once each of them answers the API.
    const before = startApiLoad(lb.httpPort);
    await waitFor(() => before.byMaster.size === 3 && before.ok >= 30, { timeoutMs: 15_000, what: 'API traffic on every master' });
    await before.stop();
    expect(before.failed).toEqual([]);

    const nodes = Array.from({ length: NODES }, () => new Node(lb.httpPort));
    const running = nodes.map((n) => n.run());
    await waitFor(() => nodes.every((n) => n.master !== undefined), { timeoutMs: 10_000, what: 'every node to connect' });
    // leastconn spreads the nodes over the masters.
    expect(new Set(nodes.map((n) => n.master)).size).toBe(3);

    // Kill the master with the most nodes, in the middle of API traffic.
    const victim = [...new Set(nodes.map((n) => n.master!))].sort(
      (a, b) => nodes.filter((n) => n.master === b).length - nodes.filter((n) => n.master === a).length,
    )[0]!;
    const orphans = nodes.filter((n) => n.master === victim);
    const load = startApiLoad(lb.httpPort);
    await waitFor(() => load.ok >= 20, { what: 'API traffic before the kill' });
    const killedAt = Date.now();
    await masters[victim]!.kill();
    const answeredAtKill = new Map(load.byMaster);

    // Every node is connected again, to a survivor, within a few seconds.
    await waitFor(() => nodes.every((n) => n.master !== undefined && n.master !== victim), {
      timeoutMs: 8000,
      what: `every node to be connected to a master other than ${victim}`,
    });
    const reconnectedMs = Date.now() - killedAt;
    expect(orphans.every((n) => n.reconnects >= 1)).toBe(true);
    for (const node of nodes) expect(await node.ws!.echo('still there')).toMatch(/^m[123]:still there$/);

    // The API goes on, answered by both survivors (connections refused by the dead master,
    // before the health checks take it out, are retried on another one).
    const okAtKill = load.ok;
    await waitFor(() => load.ok >= okAtKill + 150, { timeoutMs: 15_000, what: 'API traffic after the kill' });
    await load.stop();
    const survivors = Object.keys(masters).filter((m) => m !== victim);
    for (const m of survivors) expect(load.byMaster.get(m)! - (answeredAtKill.get(m) ?? 0), `requests answered by ${m} after the kill`).toBeGreaterThan(20);
    // Refused connections to the dead master are retried on another one; what can fail is a
    // request the master was answering when it died: at most one per concurrent client.
    expect(load.failed.length, `failed requests: ${load.failed.join('; ')}`).toBeLessThanOrEqual(API_CLIENTS);
    expect(load.maxLatencyMs, 'slowest API request during the failover').toBeLessThan(5000);

    console.log(
      `HA masters: ${victim} killed; ${orphans.length} nodes reconnected in ${reconnectedMs} ms; failures: ${load.failed.join('; ') || 'none'}; ` +
        `API ${load.ok} ok, ${load.failed.length} failed, slowest ${load.maxLatencyMs} ms`,
    );
    for (const node of nodes) node.stop();
    await Promise.all(running);
  });
});
