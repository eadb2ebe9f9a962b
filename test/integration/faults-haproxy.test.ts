import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb, TestEdgelbOptions } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import {
  appliedRevision,
  closeBackends,
  expectBackendSet,
  expectNoRoute,
  expectRoute,
  logsWithMsg,
  putKeys,
  startBackends,
  startLbWith,
} from '../support/lb.js';
import { reportFault, startLoad, type Load } from '../support/load.js';
import { canMount, makeReadOnly, mountSmallDisk } from '../support/mounts.js';
import { waitFor } from '../support/wait.js';

// HAProxy and disk faults under constant load: HAProxy SIGKILLed, the state dir read-only or full.

let etcd: EtcdServer;
let b: Record<'a' | 'b', Backend>;
const running: TestEdgelb[] = [];
const loads: Load[] = [];
const cleanups: (() => Promise<void>)[] = [];
const mountable = await canMount();

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('a', 'b');
});

afterEach(async () => {
  for (const load of loads.splice(0)) await load.stop();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  for (const lb of running.splice(0)) await lb.stopAll().catch(() => undefined);
});

afterAll(async () => {
  await closeBackends(b);
  await etcd?.stop();
});

const entries = () => ({ 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/one': b.a.address });
const other = () => ({ 'services/other/virtual_hosts': 'other.test', 'services/other/upstreams/one': b.b.address });

async function lbUnderLoad(overrides: Record<string, string> = {}, options: TestEdgelbOptions = {}): Promise<{ lb: TestEdgelb; load: Load }> {
  const lb = await startLbWith(etcd, entries(), overrides, options);
  running.push(lb);
  await expectRoute(lb, '/', 'web.test', 'a');
  const load = startLoad({ port: lb.httpPort, host: 'web.test', ok: (status, body) => status === 200 && body.includes('"backend":"a"') });
  loads.push(load);
  await load.succeededSince(Date.now());
  return { lb, load };
}

async function adminStatus(lb: TestEdgelb): Promise<{ haproxy: { restarts: number; running: boolean } }> {
  const reply = await fetch(`http://127.0.0.1:${lb.config.adminPort}/status`);
  return (await reply.json()) as { haproxy: { restarts: number; running: boolean } };
}

/** Files in the state dir that an interrupted write could leave behind. */
async function tempFiles(dir: string): Promise<string[]> {
  // Ours (util/atomic-write.ts: .<name>.<pid>.<ms>.tmp), not HAProxy's own <socket>.<pid>.tmp,
  // which it creates for a moment whenever a reload binds its sockets again.
  return (await readdir(dir)).filter((f) => f.startsWith('.') && f.endsWith('.tmp'));
}

describe('HAProxy faults under load', () => {
  it('HAProxy SIGKILLed (master and workers): restarted within a second with the last good config, visible in logs and status', async () => {
    const { lb, load } = await lbUnderLoad();
    const served = await readFile(lb.configFile, 'utf8');
    const info = await lb.haproxy.showProc();
    const killedAt = Date.now();
    for (const pid of [info.masterPid, ...info.workers.map((w) => w.pid)]) process.kill(pid, 'SIGKILL');

    await waitFor(() => logsWithMsg(lb, 'HAProxy restarted with the last good config').length === 1, { what: 'the restart log line' });
    await load.succeededSince(Date.now(), 50);
    expect(lb.logs.some((l) => String(l.msg).startsWith('HAProxy exited unexpectedly'))).toBe(true);
    expect(lb.haproxy.restartCount).toBe(1);
    expect((await adminStatus(lb)).haproxy).toMatchObject({ restarts: 1, running: true });
    expect(await readFile(lb.configFile, 'utf8')).toBe(served);
    expect((await lb.haproxy.showProc()).masterPid).not.toBe(info.masterPid);

    const summary = await load.stop();
    // The outage: from the kill to the first good answer after the last failed one.
    const lastFailure = Math.max(killedAt, ...load.outcomes.filter((o) => !o.ok).map((o) => o.at));
    const back = load.outcomes.find((o) => o.ok && o.at > lastFailure)!.at;
    const recoveryMs = back - killedAt;
    reportFault('haproxy-sigkill', {
      failed: summary.failed,
      connectionErrors: summary.connectionErrors,
      badAnswers: summary.badAnswers,
      requests: summary.requests,
      recoveryMs,
    });
    // Nothing listens between the kill and the restart, so requests then fail (HAProxy is down);
    // none before the kill, and the outage is over within a second.
    expect(load.summary(0, killedAt - 1).failed).toBe(0);
    expect(recoveryMs).toBeLessThan(1000);
  });
});

describe('HAProxy restarted right after a runtime change', () => {
  it('starts with the instance just added, although the config file was not written yet when HAProxy died', async () => {
    // A minute's delay: only the flush before the restart can have put the change on disk.
    const { lb, load } = await lbUnderLoad({}, { configWriteDelayMs: 60_000 });
    const revision = await putKeys(etcd, lb, { 'services/web/upstreams/two': b.b.address });
    await waitFor(() => appliedRevision(lb) >= revision, { what: 'the runtime change' });
    expect(lb.controller.status().lastApply?.action).toBe('runtime');
    expect(await readFile(lb.configFile, 'utf8')).not.toContain('server two ');

    const info = await lb.haproxy.showProc();
    for (const pid of [info.masterPid, ...info.workers.map((w) => w.pid)]) process.kill(pid, 'SIGKILL');
    await waitFor(() => logsWithMsg(lb, 'HAProxy restarted with the last good config').length === 1, { what: 'the restart log line' });
    expect(await readFile(lb.configFile, 'utf8')).toContain(`server two ${b.b.address} `);
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    await load.stop();
  });
});

describe.skipIf(!mountable)('state dir faults under load (needs root for mount)', () => {
  it('read-only state dir: the apply fails with a clear error, HAProxy keeps the last good config, and it recovers once writable', async () => {
    const { lb, load } = await lbUnderLoad();
    const served = await readFile(lb.configFile, 'utf8');
    const readOnly = await makeReadOnly(lb.config.stateDir);
    cleanups.push(readOnly.undo);
    const failuresBefore = lb.controller.status().counters.failures;

    await putKeys(etcd, lb, other());
    const failed = await waitFor(() => logsWithMsg(lb, 'apply failed; HAProxy keeps serving the last good config').at(-1), { what: 'the apply to fail' });
    expect(String(failed.err)).toMatch(new RegExp(`cannot write ${lb.config.stateDir}/\\S+: EROFS`));
    expect(lb.controller.status().counters.failures).toBeGreaterThan(failuresBefore);
    expect(await readFile(lb.configFile, 'utf8')).toBe(served);
    await expectNoRoute(lb, '/', 'other.test');
    await load.succeededSince(Date.now(), 50); // still serving the last good config

    const writableAt = Date.now();
    await readOnly.undo();
    await waitFor(async () => (await get(lb.httpPort, '/', 'other.test')).backend === 'b', {
      timeoutMs: 15_000,
      what: 'the change to apply once the state dir is writable',
    });
    const recoveryMs = Date.now() - writableAt;
    expect(await tempFiles(lb.config.stateDir)).toEqual([]);

    const summary = await load.stop();
    reportFault('state-dir-read-only', { failed: summary.failed, requests: summary.requests, recoveryMs });
    expect(summary.failed, summary.examples.join('; ')).toBe(0);
  });

  it('full state dir: the apply fails with ENOSPC, nothing half-written is loaded, and it recovers once space is freed', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-small-'));
    const disk = await mountSmallDisk(stateDir, '2m');
    cleanups.push(async () => {
      await disk.unmount();
      await rm(stateDir, { recursive: true, force: true });
    });
    const { lb, load } = await lbUnderLoad({ KONTENA_LB_STATE_DIR: stateDir });
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    const served = await readFile(lb.configFile, 'utf8');

    const filler = path.join(stateDir, 'filler');
    await writeFile(filler, '');
    await fill(filler);
    // Long host lists make the new config (tens of KB) larger than any slack left on the disk, even
    // after files HAProxy rewrites on a reload come and go.
    const longHosts = (n: number) => Array.from({ length: 100 }, (_, i) => `host-${i}-${'x'.repeat(40)}.s${n}.test`).join(',');
    const bulk = Object.fromEntries(Array.from({ length: 6 }, (_, n) => [`services/bulk${n}/virtual_hosts`, longHosts(n)]));
    await putKeys(etcd, lb, { ...other(), ...bulk });
    const failed = await waitFor(() => logsWithMsg(lb, 'apply failed; HAProxy keeps serving the last good config').at(-1), { what: 'the apply to fail' });
    expect(String(failed.err)).toMatch(/cannot write \S+: ENOSPC/);
    expect(await readFile(lb.configFile, 'utf8')).toBe(served);
    expect(await tempFiles(stateDir)).toEqual([]);
    await expectNoRoute(lb, '/', 'other.test');

    const freedAt = Date.now();
    await unlink(filler);
    await waitFor(async () => (await get(lb.httpPort, '/', 'other.test')).backend === 'b', {
      timeoutMs: 15_000,
      what: 'the change to apply once space is freed',
    });
    const recoveryMs = Date.now() - freedAt;

    const summary = await load.stop();
    await lb.stop();
    running.splice(running.indexOf(lb), 1);
    reportFault('state-dir-full', { failed: summary.failed, requests: summary.requests, recoveryMs });
    expect(summary.failed, summary.examples.join('; ')).toBe(0);
  });
});

async function fill(file: string): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024);
  for (;;) {
    try {
      await appendFile(file, chunk);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
      throw error;
    }
  }
  // Fill the last partial block too.
  for (;;) {
    try {
      await appendFile(file, Buffer.alloc(512));
    } catch {
      return;
    }
  }
}
