import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../support/backend.js';
import { makeLeaf, type LeafCert } from '../support/certs.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { fingerprintOf, httpsGet } from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import { docker, exitCodeOf, imageUnderTest, runImage, waitWhileRunning, type Container } from './docker.js';

// The image as an operator runs it: `docker run` with a state volume, against a real etcd (in
// the shared network namespace, see docker.ts), serving what the platform writes to etcd.
// The tests run in order and share one container; the last ones stop it.

const STACK = 'image-test';
const SERVICE = 'lb';
const PREFIX = `/kontena/haproxy/${STACK}/${SERVICE}`;
/** The grace period `docker stop` gives; docker/README.md tells operators the same (-t 35). */
const GRACE_SECONDS = 35;
/** How long the slow backend holds its answer: the request is in flight when SIGTERM arrives. */
const SLOW_MS = 3000;
const CAP_NET_BIND_SERVICE = 10;

interface SlowBackend {
  readonly address: string;
  received: number;
  close(): Promise<void>;
}

async function startSlowBackend(): Promise<SlowBackend> {
  const state = { received: 0 };
  const server = http.createServer((_req, res) => {
    state.received++;
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('slow answer'), SLOW_MS);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get received() {
      return state.received;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface Listener {
  readonly port: number;
  readonly uid: number;
}

/** Listening TCP sockets in this network namespace (the one the containers share), with their owners. */
function listeners(): Listener[] {
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) =>
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[3] === '0A') // TCP_LISTEN
      .map((fields) => ({ port: Number.parseInt(fields[1]!.split(':')[1]!, 16), uid: Number(fields[7]) })),
  );
}

interface ContainerProcess {
  readonly uid: number;
  readonly pid: number;
  readonly command: string;
  /** Effective capabilities, from /proc/<pid>/status. */
  readonly capEff: bigint;
}

async function processesOf(container: Container): Promise<ContainerProcess[]> {
  const rows = (await docker('top', container.name, '-eo', 'uid,pid,comm')).split('\n').slice(1);
  return rows.map((row) => {
    const [uid, pid, command] = row.trim().split(/\s+/);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)![1]}`);
    return { uid: Number(uid), pid: Number(pid), command: command!, capEff };
  });
}

describe('the edgelb image, run against etcd', () => {
  let etcd: EtcdServer;
  let web: Backend;
  let slow: SlowBackend;
  let lb: Container;
  const volume = `edgelb-image-test-${process.pid}`;
  let haproxyUid: number;
  let cert: LeafCert;

  beforeAll(async () => {
    etcd = await startEtcd();
    web = await startBackend('web');
    slow = await startSlowBackend();
    cert = await makeLeaf({ names: ['www.example.com'] });
    await docker('volume', 'create', volume);
    lb = await runImage({
      env: {
        KONTENA_STACK_NAME: STACK,
        KONTENA_SERVICE_NAME: SERVICE,
        ETCD_ENDPOINTS: etcd.endpoint,
        SSL_CERT_www_example_com: cert.bundlePem,
        LOG_LEVEL: 'info',
      },
      volume,
    });
    const entries = {
      'services/web/virtual_hosts': 'www.example.com',
      'services/web/upstreams/web-1': web.address,
      'services/slow/virtual_hosts': 'slow.example.com',
      'services/slow/upstreams/slow-1': slow.address,
    };
    for (const [key, value] of Object.entries(entries)) await etcd.client.put(`${PREFIX}/${key}`).value(value);
  });

  afterAll(async () => {
    await lb?.remove();
    await docker('volume', 'rm', '--force', volume).catch(() => undefined);
    await web?.close();
    await slow?.close();
    await etcd?.stop();
  });

  it('routes a service written to etcd to its backend, on port 80', async () => {
    const reply = await waitWhileRunning(
      lb,
      async () => {
        const r = await get(80, '/hello', 'www.example.com').catch(() => undefined);
        return r?.backend === 'web' ? r : undefined;
      },
      { timeoutMs: 60_000, what: 'www.example.com on port 80 to reach the web backend' },
    );
    expect(reply.status).toBe(200);
    expect(reply.backendUrl).toBe('/hello');
  });

  it('serves HTTPS on port 443 with the certificate given as SSL_CERT_*', async () => {
    const reply = await waitWhileRunning(
      lb,
      async () => {
        const r = await httpsGet(443, { servername: 'www.example.com', path: '/tls' }).catch(() => undefined);
        return r?.backend === 'web' ? r : undefined;
      },
      { timeoutMs: 30_000, what: 'www.example.com on port 443' },
    );
    expect(reply.status).toBe(200);
    expect(reply.fingerprint256).toBe(fingerprintOf(cert.certPem));
  });

  it("turns healthy by the image's HEALTHCHECK", async () => {
    // The first check runs one interval (10 s) after the start.
    const health = await waitWhileRunning(
      lb,
      async () => {
        const status = await lb.inspect('{{.State.Health.Status}}');
        return status === 'healthy' || status === 'unhealthy' ? status : undefined;
      },
      { timeoutMs: 60_000, what: 'the health check' },
    );
    expect(health, await lb.inspect('{{json .State.Health}}')).toBe('healthy');
  });

  it('runs as the non-root haproxy user: the container, edgelb (node) and HAProxy', async () => {
    expect(await lb.exec('id', '-un')).toBe('haproxy');
    haproxyUid = Number(await lb.exec('id', '-u'));
    expect(haproxyUid).toBeGreaterThan(0);
    const processes = await processesOf(lb);
    expect(processes.map((p) => p.command)).toEqual(expect.arrayContaining(['node', 'haproxy']));
    for (const p of processes) expect(p.uid, `${p.command} (pid ${p.pid})`).toBe(haproxyUid);
  });

  it('binds 80 and 443 as that user through the haproxy binary’s CAP_NET_BIND_SERVICE', async () => {
    // The holder sets the kernel's default: below 1024 needs the capability (docker.ts, image-test.sh).
    expect(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim()).toBe('1024');
    const bound = listeners();
    for (const port of [80, 443]) {
      const owners = bound.filter((l) => l.port === port).map((l) => l.uid);
      expect(owners.length, `a listener on ${port}`).toBeGreaterThan(0);
      expect(new Set(owners), `owners of port ${port}`).toEqual(new Set([haproxyUid]));
    }
    const processes = await processesOf(lb);
    const bit = 1n << BigInt(CAP_NET_BIND_SERVICE);
    for (const p of processes.filter((q) => q.command === 'haproxy')) expect(p.capEff & bit, `haproxy pid ${p.pid}`).toBe(bit);
    // edgelb itself holds no capability at all: only the haproxy binary carries one.
    for (const p of processes.filter((q) => q.command === 'node')) expect(p.capEff, `node pid ${p.pid}`).toBe(0n);
  });

  it('and without that capability the same user cannot bind below 1024 here (the check above can fail)', async () => {
    const { image, network } = imageUnderTest();
    const probe = "require('net').createServer().on('error',(e)=>{console.log(e.code);process.exit(0)}).listen(81,()=>{console.log('BOUND');process.exit(0)})";
    const result = await docker('run', '--rm', '--network', network, '--entrypoint', 'node', image, '-e', probe);
    expect(result).toBe('EACCES');
  });

  it(`stops on docker stop (SIGTERM) within the ${GRACE_SECONDS} s grace period, finishing the request in flight`, async () => {
    const before = slow.received;
    const inFlight = get(80, '/slow', 'slow.example.com', 30_000);
    await waitFor(() => slow.received > before, { timeoutMs: 10_000, what: 'the slow request to reach its backend' });
    const stopMs = await lb.stop(GRACE_SECONDS);
    const reply = await inFlight;
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('slow answer');
    expect(stopMs).toBeLessThan(GRACE_SECONDS * 1000);
    // 0: edgelb exited by itself; 137 would be docker's SIGKILL at the end of the grace period.
    expect(await exitCodeOf(lb)).toBe(0);
    console.log(`docker stop took ${stopMs} ms with a request in flight for ${SLOW_MS} ms`);
  });

  it('keeps its state in the volume, owned by the haproxy user', async () => {
    const mountpoint = await docker('volume', 'inspect', '--format', '{{.Mountpoint}}', volume);
    const files = readdirSync(mountpoint);
    expect(files).toEqual(expect.arrayContaining(['haproxy.cfg', 'certs']));
    for (const file of ['haproxy.cfg', 'certs']) expect(statSync(path.join(mountpoint, file)).uid, file).toBe(haproxyUid);
    expect(statSync(mountpoint).mode & 0o777).toBe(0o700);
  });
});
