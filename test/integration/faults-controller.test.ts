import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { edgelbEnv, haproxyProcesses, runEdgelb, type EdgelbProcess } from '../support/edgelb-process.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { closeBackends, startBackends } from '../support/lb.js';
import { reportFault, startLoad } from '../support/load.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

// The controller killed hard (SIGKILL, as the OOM killer or a node agent would) while its HAProxy
// keeps serving, then started again on the same state dir: no request may fail, and afterwards
// exactly one HAProxy master runs, the new controller's.

let etcd: EtcdServer;
let b: Record<'a' | 'b', Backend>;
let stateDir: string;
const processes: EdgelbProcess[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('a', 'b');
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-restart-'));
});

afterAll(async () => {
  for (const p of processes) p.child.kill('SIGKILL');
  // Whatever HAProxy is left on this state dir (a failed test may leave the orphan behind).
  const left = await haproxyProcesses(path.join(stateDir, 'haproxy.cfg')).catch(() => ({ masters: [], workers: [] }));
  for (const pid of [...left.masters, ...left.workers]) process.kill(pid, 'SIGKILL');
  await closeBackends(b);
  await etcd?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

describe('controller restart while HAProxy runs', () => {
  it('a controller killed with SIGKILL and started again takes HAProxy over without a failed request; one master remains', async () => {
    const prefix = `/kontena/haproxy/restart-${process.pid}`;
    const httpPort = await freePort();
    const env = await edgelbEnv(etcd.endpoint, prefix, httpPort, stateDir);
    const configFile = path.join(stateDir, 'haproxy.cfg');
    await etcd.client.put(`${prefix}/services/web/virtual_hosts`).value('web.test');
    await etcd.client.put(`${prefix}/services/web/upstreams/one`).value(b.a.address);

    const first = runEdgelb(env);
    processes.push(first);
    await waitFor(async () => (await get(httpPort, '/', 'web.test')).backend === 'a', { timeoutMs: 20_000, what: 'the first controller to serve web.test' });
    const oldMaster = await waitFor(async () => Number(await readFile(path.join(stateDir, 'haproxy.pid'), 'utf8')), { what: 'the pid file' });
    expect((await haproxyProcesses(configFile)).masters).toEqual([oldMaster]);

    const load = startLoad({ port: httpPort, host: 'web.test', ok: (status, body) => status === 200 && body.includes('"backend":"a"') });
    try {
      await load.succeededSince(Date.now());
      first.child.kill('SIGKILL');
      // The process's exit, not its promise: that waits for stdout to close, and the orphaned HAProxy
      // still holds it (it writes its access log there).
      await waitFor(() => first.child.exitCode !== null || first.child.signalCode !== null, { what: 'the killed controller to exit' });
      const killedAt = Date.now();
      await load.succeededSince(killedAt, 20); // the orphaned HAProxy keeps serving on its own

      const second = runEdgelb(env);
      processes.push(second);
      await second.waitForOutput('an HAProxy master from a previous run is still serving; replacing it without a gap');
      await second.waitForOutput('HAProxy started with the first config');
      const tookOverAt = Date.now();
      await waitFor(
        async () => (await haproxyProcesses(configFile)).masters.length === 1 && !(await haproxyProcesses(configFile)).masters.includes(oldMaster),
        {
          timeoutMs: 15_000,
          what: 'the previous HAProxy master to exit',
        },
      );
      const oneMasterAt = Date.now();
      const { masters } = await haproxyProcesses(configFile);
      expect(masters).toEqual([Number(await readFile(path.join(stateDir, 'haproxy.pid'), 'utf8'))]);

      // The new controller drives the HAProxy that is left.
      await etcd.client.put(`${prefix}/services/other/virtual_hosts`).value('other.test');
      await etcd.client.put(`${prefix}/services/other/upstreams/one`).value(b.b.address);
      await waitFor(async () => (await get(httpPort, '/', 'other.test')).backend === 'b', {
        timeoutMs: 15_000,
        what: 'a change applied by the new controller',
      });
      await load.succeededSince(Date.now(), 20);

      const summary = await load.stop();
      reportFault('controller-sigkill-restart', {
        failed: summary.failed,
        connectionErrors: summary.connectionErrors,
        requests: summary.requests,
        takeoverMs: tookOverAt - killedAt,
        oldMasterGoneMs: oneMasterAt - killedAt,
      });
      expect(summary.failed, summary.examples.join('; ')).toBe(0);

      second.child.kill('SIGTERM');
      expect((await second.child).exitCode).toBe(0);
      expect(await haproxyProcesses(configFile)).toEqual({ masters: [], workers: [] });
    } finally {
      await load.stop();
    }
  });
});
