import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Command } from 'commander';
import { execa, type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerCertCommands, type CertListRow } from '../../src/cli/cert.js';
import type { AcmeManagerOptions } from '../../src/acme/manager.js';
import { parseState, type AcmeDomainState } from '../../src/acme/state.js';
import { decryptBundle, isEncrypted } from '../../src/tls/vault.js';
import { startTestManager, type TestManager } from '../support/acme-feed.js';
import { removeCertFiles } from '../support/certs.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { etcdConnection } from '../support/etcd-connection.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { freePort } from '../support/ports.js';
import { sleep, waitFor } from '../support/wait.js';

// Let's Encrypt over ACME HTTP-01, against pebble (a test CA), a real etcd and two real edgelb
// replicas A and B on one etcd path, each with its AcmeManager (httpPort A or B). Pebble
// validates through replica B's HTTP port only, and the leader is A's manager unless a test
// says otherwise: so the validation request is answered by the replica that did not write the
// token, once B's manager has confirmed that B serves it.

const VAULT_KEY = 'acme test vault key 0123456789';
const TTL = 2;
const FAST = {
  renewDays: 30,
  vaultKey: VAULT_KEY,
  leaderTtlSeconds: TTL,
  backoff: { baseMs: 500, capMs: 4000 },
  checkIntervalMs: 60_000,
  poll: { minMs: 50, maxMs: 500, attempts: 40 },
  servedTimeoutMs: 5000,
  requestTimeoutMs: 5000,
} satisfies Partial<AcmeManagerOptions>;

let etcd: EtcdServer;
let pebble: Pebble;
let pebbleRoot: string;
let prefix: string;
let lbA: TestEdgelb;
let lbB: TestEdgelb;
const stateDirs: string[] = [];
const managers: TestManager[] = [];

/** An AcmeManager in this process with its own etcd client and source, logging into an array. */
function startManager(options: Partial<AcmeManagerOptions> = {}): TestManager {
  const handle = startTestManager(etcd.endpoint, {
    prefix,
    email: 'ops@example.com',
    directoryUrl: pebble.directoryUrl,
    directoryCa: pebble.caPem,
    httpPort: lbA.httpPort,
    ...FAST,
    ...options,
  });
  managers.push(handle);
  return handle;
}

function messages(logs: readonly Record<string, unknown>[], msg: string, domain?: string): Record<string, unknown>[] {
  return logs.filter((l) => l.msg === msg && (domain === undefined || l.domain === domain));
}

async function storedState(domain: string): Promise<AcmeDomainState | undefined> {
  return parseState((await etcd.client.get(`${prefix}/acme/state/${domain}`).string()) ?? undefined, domain);
}

async function challengeKeys(): Promise<string[]> {
  return etcd.client.getAll().prefix(`${prefix}/acme/challenges/`).keys();
}

interface Served {
  readonly fingerprint: string;
  readonly serial: string;
  readonly names: string;
  readonly authorized: boolean;
  readonly error: string | undefined;
}

/** The certificate the HTTPS port presents for `servername`, verified against `ca`. */
function handshake(port: number, servername: string, ca: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca, rejectUnauthorized: false, timeout: 3000 }, () => {
      const cert = socket.getPeerCertificate();
      resolve({
        fingerprint: cert.fingerprint256,
        serial: cert.serialNumber,
        names: cert.subjectaltname ?? '',
        authorized: socket.authorized,
        error: socket.authorizationError?.toString(),
      });
      socket.end();
    });
    socket.on('timeout', () => socket.destroy(new Error('TLS timeout')));
    socket.on('error', reject);
  });
}

async function waitServed(lb: TestEdgelb, domain: string, check: (s: Served) => boolean, timeoutMs = 20_000): Promise<Served> {
  return waitFor(
    async () => {
      const served = await handshake(lb.config.httpsPort, domain, pebbleRoot);
      return check(served) && served;
    },
    { timeoutMs, intervalMs: 50, what: `${domain} to be served on ${lb.config.httpsPort}` },
  );
}

async function certList(args: string[]): Promise<string[]> {
  const lines: string[] = [];
  const program = new Command('edgelb').exitOverride();
  registerCertCommands(program, {
    loadSettings: () => ({ etcd: etcdConnection(etcd.endpoint), etcdPath: prefix, vaultKey: VAULT_KEY }),
    out: (line) => void lines.push(line),
    fail: (message) => {
      throw new Error(message);
    },
  });
  await program.parseAsync(['cert', 'list', ...args], { from: 'user' });
  return lines;
}

async function enable(service: string, hosts: string): Promise<void> {
  await etcd.client.put(`${prefix}/services/${service}/virtual_hosts`).value(hosts);
  await etcd.client.put(`${prefix}/services/${service}/acme`).value('true');
}

/** A's manager, elected leader, then B's as a follower (it confirms B serves the tokens). */
async function startPair(options: Partial<AcmeManagerOptions> = {}): Promise<{ a: TestManager; b: TestManager }> {
  const a = startManager({ id: 'manager-a', ...options });
  await leaderOf(a);
  const b = startManager({ id: 'manager-b', httpPort: lbB.httpPort, ...options });
  await waitFor(async () => (await etcd.client.get(`${prefix}/acme/replicas/manager-b`).string()) !== null, { what: 'B to announce itself' });
  return { a, b };
}

async function leaderOf(...candidates: TestManager[]): Promise<TestManager> {
  return waitFor(() => candidates.find((c) => c.manager.status().leader), { timeoutMs: (TTL + 3) * 1000, what: 'a leader' });
}

beforeAll(async () => {
  etcd = await startEtcd();
  prefix = `/kontena/haproxy/acme-${process.pid}`;
  const [portA, portB] = await Promise.all([freePort(), freePort()]);
  const dirs = await Promise.all([0, 1].map(() => mkdtemp(path.join(os.tmpdir(), 'edgelb-acme-state-'))));
  stateDirs.push(...dirs);
  const env = { KONTENA_LB_VAULT_KEY: VAULT_KEY };
  [lbA, lbB, pebble] = await Promise.all([
    startTestEdgelb(etcd, env, { stateDir: dirs[0]!, prefix, httpPort: portA }),
    startTestEdgelb(etcd, env, { stateDir: dirs[1]!, prefix, httpPort: portB }),
    startPebble({ httpPort: portB }),
  ]);
  pebbleRoot = await pebble.rootCa();
  await Promise.all([lbA, lbB].map((lb) => waitFor(() => lb.controller.status().lastApply !== undefined, { what: 'edgelb to apply' })));
});

// A test that fails half-way must not leave a leader behind for the next one.
afterEach(async () => {
  await Promise.allSettled(managers.splice(0).map((m) => m.stop()));
});

afterAll(async () => {
  await Promise.allSettled([lbA?.stopAll(), lbB?.stopAll(), pebble?.stop()]);
  await Promise.all(stateDirs.map((d) => rm(d, { recursive: true, force: true })));
  await etcd?.stop();
  removeCertFiles();
});

describe('ACME issuance against pebble', () => {
  it('orders a certificate for a service with acme=true; every replica serves it, chained to the CA root', async () => {
    const { a: m, b } = await startPair();
    const domain = 'shop.example.com';
    const started = Date.now();
    await enable('shop', `${domain},*.shop.example.com`);

    const onA = await waitServed(lbA, domain, (s) => s.names.includes(`DNS:${domain}`));
    const elapsedMs = Date.now() - started;
    const at = (msg: string) => Date.parse(String(messages(m.logs, msg, domain)[0]?.time)) - started;
    const steps = [
      'ACME: ordering a certificate',
      'ACME account ready',
      'ACME order created',
      'ACME challenge published',
      'ACME challenge served by every replica',
      'ACME challenge validated',
      'ACME order finalized',
      'ACME certificate stored',
    ];
    console.log(
      `[measure] acme=true written -> certificate served over TLS: ${elapsedMs} ms (${steps.map((step) => `${step.replace(/^ACME:? /, '')} +${at(step)}`).join(', ')})`,
    );
    expect(onA.authorized, onA.error).toBe(true);
    const onB = await waitServed(lbB, domain, (s) => s.fingerprint === onA.fingerprint);
    expect(onB.authorized).toBe(true);

    // Every step logged with the domain; the wildcard skipped in plain words.
    for (const step of ['ACME order created', 'ACME challenge published', 'ACME challenge validated', 'ACME order finalized', 'ACME certificate stored']) {
      expect(messages(m.logs, step, domain), step).toHaveLength(1);
    }
    expect(m.logs.find((l) => l.domain === '*.shop.example.com')?.reason).toMatch(/wildcard/);
    // The CA was let in only once both replicas served the token; B (where pebble asked) confirmed it, and B did not order.
    const token = messages(m.logs, 'ACME challenge published', domain)[0]?.token;
    expect(messages(m.logs, 'ACME challenge served by every replica', domain)[0]).toMatchObject({ token, replicas: 2 });
    expect(messages(b.logs, 'ACME challenge served by this replica').map((l) => l.token)).toContain(token);
    expect(messages(b.logs, 'ACME: ordering a certificate')).toEqual([]);

    // State in etcd; the token is gone; key and certificate are encrypted.
    const state = await storedState(domain);
    expect(state).toMatchObject({ domain, status: 'valid', failures: 0 });
    expect(state?.pending).toBeUndefined();
    expect(new Date(state!.validUntil!).getTime()).toBeGreaterThan(Date.now() + 365 * 86_400_000);
    expect(await challengeKeys()).toEqual([]);
    const storedCert = (await etcd.client.get(`${prefix}/certs/acme-${domain}`).string())!;
    const account = (await etcd.client.get(`${prefix}/acme/account`).string())!;
    expect(isEncrypted(storedCert) && isEncrypted(account)).toBe(true);
    expect(new X509Certificate(decryptBundle(storedCert, VAULT_KEY)).fingerprint256).toBe(onA.fingerprint);
    expect(m.manager.status().domains).toEqual([expect.objectContaining({ domain, running: false, state: expect.objectContaining({ status: 'valid' }) })]);

    // `edgelb cert list` shows the certificate and the ACME state, and who orders.
    const table = await certList([]);
    if (process.env.EDGELB_TEST_LOGS) console.log(table.join('\n'));
    expect(table.find((l) => l.startsWith(`acme-${domain} `))).toMatch(/\svault\s+shop\.example\.com\s+shop\.example\.com\s.*\syes\s+valid$/);
    expect(table.find((l) => l.startsWith(`${domain} `))).toMatch(/^shop\.example\.com\s+valid\s+\d{4}-\S+Z\s+0\s+-\s+-$/);
    expect(table.at(-1)).toBe('ACME leader: manager-a');
    const rows = JSON.parse((await certList(['--json'])).join('\n')) as CertListRow[];
    expect(rows.find((r) => r.name === `acme-${domain}`)).toMatchObject({ status: 'valid', acme: { domain, status: 'valid', failures: 0 } });
    // Confirmations went with the token.
    expect(await etcd.client.getAll().prefix(`${prefix}/acme/acks/`).keys()).toEqual([]);
  });

  it('renews when fewer than renewDays are left; the old certificate serves until the new one is stored', async () => {
    const domain = 'shop.example.com';
    const before = await waitServed(lbB, domain, (s) => s.authorized);
    // Handshakes all through the renewal: each must present the old or the new certificate.
    const seen = new Set<string>();
    const errors: string[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        await handshake(lbB.config.httpsPort, domain, pebbleRoot).then(
          (s) => seen.add(s.fingerprint),
          (e: Error) => errors.push(e.message),
        );
        await sleep(10);
      }
    })();
    // The guard against renewal loops holds a renewal back for minRenewIntervalMs after the last one.
    const issuedAt = Date.parse((await storedState(domain))!.issuedAt!);
    await sleep(Math.max(0, issuedAt + 2000 - Date.now()));
    const { a: m } = await startPair({ renewDays: 9999, minRenewIntervalMs: 2000 });
    const after = await waitServed(lbB, domain, (s) => s.fingerprint !== before.fingerprint);
    polling = false;
    await poller;

    expect(after.serial).not.toBe(before.serial);
    expect(after.authorized).toBe(true);
    expect(errors).toEqual([]);
    expect([...seen].every((f) => f === before.fingerprint || f === after.fingerprint)).toBe(true);
    expect(messages(m.logs, 'ACME: ordering a certificate', domain)[0]?.reason).toMatch(/renewing \(threshold 9999\)/);
    // A threshold longer than the certificate lives does not renew in a loop.
    expect(m.manager.status().domains.find((d) => d.domain === domain)?.next).toMatch(/renewed recently/);
    await Promise.all(managers.map((x) => x.stop()));
    expect(messages(m.logs, 'ACME certificate stored', domain)).toHaveLength(1);
  });
});

describe('replicas: one leader orders, another takes over', () => {
  it('two managers on one path: only the leader orders; when it stops, the other leads at once', async () => {
    // Started together: either may win; pebble still only reaches B.
    const p = startManager({ id: 'replica-p' });
    const q = startManager({ id: 'replica-q', httpPort: lbB.httpPort });
    const leader = await leaderOf(p, q);
    const follower = leader === p ? q : p;
    for (const m of [p, q]) m.manager.setEnvDomains(['api.example.com']);
    await enable('blog', 'blog.example.com');
    const started = Date.now();
    await waitServed(lbA, 'api.example.com', (s) => s.authorized);
    await waitServed(lbA, 'blog.example.com', (s) => s.authorized);
    console.log(`[measure] two more domains (account exists) -> both served: ${Date.now() - started} ms`);

    expect(
      messages(leader.logs, 'ACME order created')
        .map((l) => l.domain)
        .sort(),
    ).toEqual(['api.example.com', 'blog.example.com']);
    expect(messages(follower.logs, 'ACME order created')).toEqual([]);
    expect(messages(follower.logs, 'ACME: ordering a certificate')).toEqual([]);
    expect(follower.manager.status().leader).toBe(false);
    // The follower sees the leader's state through etcd.
    await waitFor(() => follower.manager.status().domains.find((d) => d.domain === 'blog.example.com')?.state?.status === 'valid', {
      what: 'follower to see the state',
    });

    const stoppedAt = Date.now();
    await leader.stop();
    await leaderOf(follower);
    const takeoverMs = Date.now() - stoppedAt;
    console.log(`[measure] leader stopped (resigned) -> other replica leads: ${takeoverMs} ms`);
    expect(takeoverMs).toBeLessThan(1000);
    await follower.stop();
  });

  it('leader killed mid-order: another replica takes over within the TTL and finishes the same order', async () => {
    // X runs in its own process. It checks the token on a port where nothing listens, so it
    // stalls right after publishing the challenge, the moment it is killed.
    const domain = 'pay.example.com';
    const x = spawnReplica({ id: 'replica-x', httpPort: await freePort(), servedTimeoutMs: 60_000 });
    try {
      await waitFor(() => x.logs.some((l) => l.leader === true), { timeoutMs: 15_000, what: 'replica X to lead' });
      const y = startManager({ id: 'replica-y' });
      const yb = startManager({ id: 'replica-y-b', httpPort: lbB.httpPort });
      await sleep(200);
      expect(y.manager.status().leader || yb.manager.status().leader).toBe(false);

      await enable('pay', domain);
      await waitFor(() => messages(x.logs, 'ACME challenge published', domain).length > 0, { timeoutMs: 10_000, what: 'X to publish the challenge' });
      const pending = (await storedState(domain))?.pending;
      expect(pending).toMatchObject({ by: 'replica-x', tokens: [expect.any(String)] });
      expect(await challengeKeys()).toHaveLength(1);

      const killedAt = Date.now();
      x.child.kill('SIGKILL');
      const next = await leaderOf(y, yb);
      const takeoverMs = Date.now() - killedAt;
      await waitServed(lbA, domain, (s) => s.authorized);
      const servedMs = Date.now() - killedAt;
      console.log(
        `[measure] leader SIGKILLed mid-order (challenge published) -> other replica leads: ${takeoverMs} ms; certificate served: ${servedMs} ms (lease TTL ${TTL} s)`,
      );
      expect(takeoverMs).toBeLessThan((TTL + 1.5) * 1000);

      // The new leader finished X's order rather than starting another one, then cleaned X's token up.
      expect(messages(next.logs, 'ACME order resumed', domain).map((l) => l.order)).toEqual([pending!.orderUrl]);
      expect(messages(x.logs, 'ACME order created', domain)).toHaveLength(1);
      expect([...y.logs, ...yb.logs].filter((l) => l.msg === 'ACME order created' && l.domain === domain)).toHaveLength(0);
      expect(await storedState(domain)).toMatchObject({ status: 'valid', failures: 0 });
      expect(await challengeKeys()).toEqual([]);
      expect(await etcd.client.getAll().prefix(`${prefix}/acme/replicas/`).keys()).not.toContain(`${prefix}/acme/replicas/replica-x`);
    } finally {
      x.child.kill('SIGKILL');
    }
  });
});

describe('stopping mid-order', () => {
  it('a leader stopped mid-order deletes its challenge token and resigns; another replica resumes the order at once', async () => {
    const domain = 'cart.example.com';
    // X confirms tokens on a port where nothing listens, so it waits with the challenge published.
    const x = startManager({ id: 'stopping-x', httpPort: await freePort(), servedTimeoutMs: 60_000 });
    await leaderOf(x);
    const y = startManager({ id: 'stopping-y' });
    const yb = startManager({ id: 'stopping-y-b', httpPort: lbB.httpPort });
    await enable('cart', domain);
    await waitFor(() => messages(x.logs, 'ACME challenge published', domain).length > 0, { timeoutMs: 10_000, what: 'X to publish the challenge' });
    const order = (await storedState(domain))?.pending?.orderUrl;

    const stoppedAt = Date.now();
    await x.stop();
    const stopMs = Date.now() - stoppedAt;
    expect(messages(x.logs, 'ACME challenge tokens removed', domain)).toHaveLength(1);
    expect(messages(x.logs, 'ACME: attempt interrupted; the pending order is resumed later', domain)).toHaveLength(1);
    const next = await leaderOf(y, yb);
    await waitServed(lbA, domain, (s) => s.authorized);
    console.log(`[measure] leader stopped mid-order: stop() took ${stopMs} ms; certificate served ${Date.now() - stoppedAt} ms after the stop began`);
    expect(messages(next.logs, 'ACME order resumed', domain).map((l) => l.order)).toEqual([order]);
    expect(await challengeKeys()).toEqual([]);
  });
});

describe('failures never hammer the CA', () => {
  it('a CA error (every nonce rejected): its detail is logged and stored, retries back off', async () => {
    const bad = await startPebble({ httpPort: lbB.httpPort, nonceReject: 100 });
    try {
      const domain = 'nonce.example.com';
      const m = startManager({ directoryUrl: bad.directoryUrl, directoryCa: bad.caPem, envDomains: [domain], backoff: { baseMs: 300, capMs: 1200 } });
      await waitFor(async () => ((await storedState(domain))?.failures ?? 0) >= 3, { timeoutMs: 10_000, what: '3 failures' });
      await m.stop();
      const state = await storedState(domain);
      expect(state?.status).toBe('failing');
      expect(state?.lastError).toMatchObject({ type: 'urn:ietf:params:acme:error:badNonce', status: 400, message: expect.stringMatching(/nonce/i) });
      const rows = JSON.parse((await certList(['--json'])).join('\n')) as CertListRow[];
      expect(rows.find((r) => r.name === `acme-${domain}`)).toMatchObject({
        source: { kind: 'acme' },
        status: expect.stringMatching(/^failing:JWS has an invalid anti-replay nonce/),
      });
      const failed = messages(m.logs, 'ACME attempt failed', domain);
      expect(failed[0]).toMatchObject({ err: expect.stringMatching(/nonce/i), failures: 1 });
      const starts = messages(m.logs, 'ACME: ordering a certificate', domain).map((l) => Date.parse(String(l.time)));
      for (let i = 1; i < starts.length; i++) {
        expect(starts[i]! - starts[i - 1]!, `gap before attempt ${i + 1}`).toBeGreaterThanOrEqual(0.9 * Math.min(1200, 300 * 2 ** (i - 1)) - 20);
      }
    } finally {
      await bad.stop();
    }
  });

  it('an unreachable CA: attempts back off, counted at the socket', async () => {
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const domain = 'down.example.com';
      const m = startManager({ directoryUrl: `https://127.0.0.1:${port}/dir`, envDomains: [domain], backoff: { baseMs: 400, capMs: 1600 } });
      await waitFor(() => connections > 0, { what: 'the first attempt' });
      await sleep(4000);
      const attempts = messages(m.logs, 'ACME: ordering a certificate', domain).length;
      await m.stop();
      // 0, 0.4, 1.2, 2.8 s (±10%): 4 attempts in 4 s; a client without backoff would make hundreds.
      console.log(`[measure] unreachable CA: ${attempts} attempts, ${connections} connections in 4 s`);
      expect(attempts).toBeGreaterThanOrEqual(3);
      expect(attempts).toBeLessThanOrEqual(5);
      expect(connections).toBeLessThanOrEqual(attempts);
      expect((await storedState(domain))?.lastError?.message).toMatch(
        new RegExp(`^cannot reach the ACME server at 127\\.0\\.0\\.1:${port}: .*(ECONNRESET|socket disconnected)`),
      );
    } finally {
      server.close();
    }
  });

  it('a rate-limited answer (429, Retry-After) is honoured over a shorter backoff', async () => {
    const posts: number[] = [];
    const server = http.createServer((req, res) => {
      const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
      if (req.method === 'GET' && req.url === '/dir') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order` }));
      } else if (req.url === '/nonce') {
        res.writeHead(200, { 'replay-nonce': `n${Date.now()}` });
        res.end();
      } else {
        req.resume();
        posts.push(Date.now());
        res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '2', 'replay-nonce': `n${Date.now()}` });
        res.end(
          JSON.stringify({
            type: 'urn:ietf:params:acme:error:rateLimited',
            detail: 'too many new registrations (10) from this IP address in the last 3 hours',
            status: 429,
          }),
        );
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const domain = 'limited.example.com';
      const m = startManager({
        directoryUrl: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/dir`,
        envDomains: [domain],
        backoff: { baseMs: 100, capMs: 200 },
      });
      await waitFor(() => posts.length >= 2, { timeoutMs: 6000, what: 'a second attempt' });
      await m.stop();
      expect(posts[1]! - posts[0]!).toBeGreaterThanOrEqual(1900);
      expect((await storedState(domain))?.lastError).toMatchObject({
        type: 'urn:ietf:params:acme:error:rateLimited',
        status: 429,
        message: expect.stringMatching(/^too many new registrations/),
      });
      expect(messages(m.logs, 'ACME attempt failed', domain)[0]).toMatchObject({ retryAfterMs: 2000 });
    } finally {
      server.close();
    }
  });
});

interface Replica {
  readonly child: ResultPromise;
  readonly logs: Record<string, unknown>[];
}

/** An AcmeManager in a child process (test/support/acme-replica.ts), to be SIGKILLed. */
function spawnReplica(options: Partial<AcmeManagerOptions>): Replica {
  const settings = {
    endpoint: etcd.endpoint,
    prefix,
    email: 'ops@example.com',
    directoryUrl: pebble.directoryUrl,
    directoryCa: pebble.caPem,
    httpPort: lbA.httpPort,
    ...FAST,
    ...options,
  };
  const child = execa('node', ['--import', 'tsx', path.join(import.meta.dirname, '../support/acme-replica.ts')], {
    env: { EDGELB_ACME_REPLICA: JSON.stringify(settings) },
    reject: false,
    cleanup: true,
    buffer: false,
    stdin: 'ignore',
  });
  const logs: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
      if (process.env.EDGELB_TEST_LOGS) process.stderr.write(`replica: ${line}\n`);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    if (process.env.EDGELB_TEST_LOGS) process.stderr.write(chunk);
  });
  return { child, logs };
}
