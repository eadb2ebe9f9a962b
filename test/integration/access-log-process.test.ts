import { randomUUID } from 'node:crypto';
import { readlink } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../support/backend.js';
import { edgelbEnv, haproxyProcesses } from '../support/edgelb-process.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

// `edgelb run` as operators run it, with KONTENA_LB_ACCESS_LOG=json and its stdout a pipe this
// test reads (as a container runtime does): HAProxy writes the access log to that same pipe
// itself, the controller has no pipe of HAProxy's stdout to read, and the lines of the two
// processes stay whole under load while the controller logs too.

const MAIN = path.join(import.meta.dirname, '../../src/main.ts');
const HOST = 'process.access.test';
let etcd: EtcdServer;
let backend: Backend;
let stateDir: string;
let child: ResultPromise | undefined;
let stdout = '';
let httpPort: number;
let adminPort: number;
const prefix = `/kontena/haproxy/access-log-process-${process.pid}`;

beforeAll(async () => {
  etcd = await startEtcd();
  backend = await startBackend('web');
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-access-process-'));
  httpPort = await freePort();
  const env = { ...(await edgelbEnv(etcd.endpoint, prefix, httpPort, stateDir)), KONTENA_LB_ACCESS_LOG: 'json', LOG_LEVEL: 'debug' };
  adminPort = Number((env as Record<string, string>).KONTENA_LB_ADMIN_PORT);
  child = execa('node', ['--import', 'tsx', MAIN, 'run'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    extendEnv: false,
    reject: false,
    buffer: false,
    cwd: path.resolve(import.meta.dirname, '../..'),
  });
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  await etcd.client.put(`${prefix}/services/web/virtual_hosts`).value(HOST);
  await etcd.client.put(`${prefix}/services/web/upstreams/one`).value(backend.address);
  await waitFor(async () => (await get(httpPort, '/', HOST)).backend === 'web', { timeoutMs: 30_000, what: 'the route through edgelb run' });
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await child;
  }
  await backend?.close();
  await etcd?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

describe("edgelb run: the access log goes from HAProxy straight to edgelb's stdout", () => {
  it("HAProxy's stdout is the very file edgelb's stdout is, not a pipe to the controller", async () => {
    const { masters, workers } = await haproxyProcesses(path.join(stateDir, 'haproxy.cfg'));
    expect(masters).toHaveLength(1);
    expect(workers.length).toBeGreaterThan(0);
    const edgelbStdout = await readlink(`/proc/${child!.pid}/fd/1`);
    // libuv gives a child a socket pair where `stdio: 'pipe'` is asked for (a container runtime, a pipe).
    expect(edgelbStdout).toMatch(/^(pipe|socket):\[\d+\]$/);
    for (const pid of [...masters, ...workers]) expect(await readlink(`/proc/${pid}/fd/1`), `HAProxy ${pid}`).toBe(edgelbStdout);
  });

  it("keeps every line whole while requests and the controller's own log lines share the pipe", async () => {
    const ids = Array.from({ length: 400 }, () => randomUUID());
    let next = 0;
    const client = async () => {
      while (next < ids.length) expect((await get(httpPort, `/p/${ids[next++]}`, HOST)).status).toBe(200);
    };
    // Meanwhile the controller applies instance changes and logs them (debug level).
    const churn = (async () => {
      for (let i = 0; i < 20; i++) {
        await etcd.client.put(`${prefix}/services/web/upstreams/extra-${i % 3}`).value(backend.address);
        await etcd.client.delete().key(`${prefix}/services/web/upstreams/extra-${(i + 1) % 3}`);
      }
    })();
    await Promise.all([...Array.from({ length: 16 }, client), churn]);
    await waitFor(() => ids.every((id) => stdout.includes(id)), { timeoutMs: 10_000, what: 'an access-log line for every request' });

    const lines = stdout.split('\n').filter((l) => l !== '');
    const access: Record<string, unknown>[] = [];
    const controller: Record<string, unknown>[] = [];
    for (const line of lines) {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // The one kind of plain-text line HAProxy writes there: a proxy stopped by an old worker.
        expect(line).toMatch(/^Proxy \S+ stopped \(cumulated conns: FE: \d+, BE: \d+\)\.$/);
        continue;
      }
      (parsed.type === 'http' ? access : controller).push(parsed);
    }
    for (const id of ids)
      expect(
        access.filter((e) => e.uri === `/p/${id}`),
        id,
      ).toHaveLength(1);
    // The two processes did write at the same time: some of the controller's lines fall between access-log lines.
    const kinds = lines.map((l) => (l.includes('"type":"http"') ? 'access' : l.includes('"msg":') ? 'controller' : 'other'));
    const between = kinds.slice(kinds.indexOf('access'), kinds.lastIndexOf('access')).filter((k) => k === 'controller');
    expect(between.length, 'controller lines written during the load').toBeGreaterThan(0);
    // None of the controller's own lines carries an access-log line (it never reads them).
    expect(controller.some((e) => JSON.stringify(e).includes('/p/'))).toBe(false);
  });

  it('does not stall when the log reader stops reading: lines are dropped, counted, and the controller keeps applying', async () => {
    // HAProxy made the shared stdout non-blocking; a full pipe answers EAGAIN to both processes.
    child!.stdout!.pause();
    const fill = async () => {
      for (let i = 0; i < 150; i++) await get(httpPort, `/fill/${'x'.repeat(300)}/${i}`, HOST);
    };
    await Promise.all(Array.from({ length: 16 }, fill));
    // Changes while nobody reads: each apply logs lines that cannot be written.
    for (let i = 0; i < 5; i++) {
      await etcd.client.put(`${prefix}/services/web/upstreams/stalled-${i}`).value(backend.address);
      const started = Date.now();
      const reply = await get(adminPort, '/healthz', 'localhost');
      expect(reply.status, 'the admin port answers while stdout is full').toBe(200);
      expect(Date.now() - started).toBeLessThan(2000);
    }
    await waitFor(
      async () => {
        const status = JSON.parse((await get(adminPort, '/status', 'localhost')).body) as { services: { name: string; instances: { name: string }[] }[] };
        return status.services.find((x) => x.name === 'web')?.instances.some((x) => x.name === 'stalled-4') ?? false;
      },
      { timeoutMs: 10_000, what: 'the last change applied while stdout was full' },
    );
    child!.stdout!.resume();
    await etcd.client.delete().key(`${prefix}/services/web/upstreams/stalled-0`);
    await waitFor(() => /"msg":"log lines dropped: standard output was full","dropped":\d+/.test(stdout), {
      timeoutMs: 10_000,
      what: 'the notice of the dropped lines once stdout takes lines again',
    });
  });
});
