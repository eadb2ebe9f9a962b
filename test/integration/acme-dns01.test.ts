import { randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DnsSolver } from '../../src/acme/dns-challenge.js';
import { decodeAnswer, exchange, parseServer, queryMessage, txtValues } from '../../src/acme/dns-wire.js';
import { dnsSolverOf } from '../../src/acme/dns-solver.js';
import type { AcmeManagerOptions } from '../../src/acme/manager.js';
import { parseState, type AcmeDomainState } from '../../src/acme/state.js';
import { decryptBundle } from '../../src/tls/vault.js';
import { startTestManager, type TestManager } from '../support/acme-feed.js';
import { startBind9, type Bind9 } from '../support/bind9.js';
import { removeCertFiles } from '../support/certs.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { logsWithMsg } from '../support/lb.js';
import { capturingLogger } from '../support/log-capture.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

// ACME DNS-01 against pebble, with real DNS servers: pebble-challtestsrv (its TXT records set by
// a hook script through its management API) and a BIND 9 taking RFC 2136 updates signed with
// TSIG, each pebble's resolver in its tests. Wildcard certificates land in the vault and a real
// edgelb serves them for any sub-domain.

const VAULT_KEY = 'dns-01 test vault key 0123456789';
const TTL = 2;
const FAST = {
  vaultKey: VAULT_KEY,
  leaderTtlSeconds: TTL,
  backoff: { baseMs: 300, capMs: 1200 },
  checkIntervalMs: 60_000,
  poll: { minMs: 50, maxMs: 500, attempts: 40 },
  requestTimeoutMs: 5000,
} satisfies Partial<AcmeManagerOptions>;

let etcd: EtcdServer;
let pebble: Pebble;
let pebbleRoot: string;
let dir: string;
let hookPath: string;
let hookLog: string;
/** Edgelb with ACME and the hook from its settings (its own prefix); and one serving the in-process managers' certificates. */
let lbHook: TestEdgelb;
let lbServe: TestEdgelb;
const managers: { stop(): Promise<void> }[] = [];

function startManager(options: Partial<AcmeManagerOptions> & Pick<AcmeManagerOptions, 'dns'>): TestManager {
  const handle = startTestManager(etcd.endpoint, {
    prefix: lbServe.prefix,
    email: 'ops@example.com',
    directoryUrl: pebble.directoryUrl,
    directoryCa: pebble.caPem,
    ...FAST,
    ...options,
  });
  managers.push(handle);
  return handle;
}

/** A solver publishing through `hook`, waiting on `resolvers` (default challtestsrv's DNS). */
function hookSolver(hook: string, resolvers = pebble.challtestDns, propagationTimeoutMs = 10_000): DnsSolver {
  return dnsSolverOf({
    challenge: 'http-01',
    publisher: { kind: 'hook', path: hook, timeoutMs: 5000 },
    resolvers: [parseServer(resolvers)!],
    propagationTimeoutMs,
  })!;
}

async function writeScript(name: string, body: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

const messages = (logs: readonly Record<string, unknown>[], msg: string, domain?: string) =>
  logs.filter((l) => l.msg === msg && (domain === undefined || l.domain === domain));

async function storedState(prefix: string, domain: string): Promise<AcmeDomainState | undefined> {
  return parseState((await etcd.client.get(`${prefix}/acme/state/${domain}`).string()) ?? undefined, domain);
}

/** Subject alternative names presented on `lb`'s HTTPS port for `servername`, and whether they chain to `ca`. */
function presented(lb: TestEdgelb, servername: string, ca: string): Promise<{ names: string; authorized: boolean; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: lb.config.httpsPort, servername, ca, rejectUnauthorized: false, timeout: 3000 }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ names: cert.subjectaltname ?? '', authorized: socket.authorized, fingerprint: cert.fingerprint256 });
      socket.end();
    });
    socket.on('timeout', () => socket.destroy(new Error('TLS timeout')));
    socket.on('error', reject);
  });
}

async function waitPresented(lb: TestEdgelb, servername: string, wildcard: string, ca: string, timeoutMs = 30_000) {
  return waitFor(
    async () => {
      const cert = await presented(lb, servername, ca).catch(() => undefined);
      return cert?.names.split(', ').includes(`DNS:${wildcard}`) && cert;
    },
    { timeoutMs, intervalMs: 50, what: `${wildcard} served for ${servername}` },
  );
}

async function txtAt(server: string, fqdn: string): Promise<string[]> {
  const at = parseServer(server)!;
  return txtValues(decodeAnswer(at, await exchange(at, queryMessage(fqdn, 'TXT', false), 2000)), fqdn);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

// As in a container's environment: the hook gets its own credentials, never edgelb's secrets.
const savedEnv = { DNS_API_TOKEN: process.env.DNS_API_TOKEN, KONTENA_LB_VAULT_KEY: process.env.KONTENA_LB_VAULT_KEY };

beforeAll(async () => {
  process.env.DNS_API_TOKEN = 'hook-token';
  process.env.KONTENA_LB_VAULT_KEY = VAULT_KEY;
  etcd = await startEtcd();
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-dns01-'));
  pebble = await startPebble({ httpPort: await freePort() });
  pebbleRoot = await pebble.rootCa();
  hookLog = path.join(dir, 'hook.log');
  // lego's exec convention: <hook> present|cleanup <fqdn> <value>; challtestsrv's API takes the fqdn with its dot.
  hookPath = await writeScript(
    'challtestsrv-hook.sh',
    `set -eu
case "$1" in
  present) curl -sS -f -X POST -d "{\\"host\\":\\"$2\\",\\"value\\":\\"$3\\"}" ${pebble.challtestUrl}/set-txt ;;
  cleanup) curl -sS -f -X POST -d "{\\"host\\":\\"$2\\"}" ${pebble.challtestUrl}/clear-txt ;;
  *) echo "unknown action $1" >&2; exit 2 ;;
esac
echo "$1 $2 token:\${DNS_API_TOKEN:-none} secret-env:\${KONTENA_LB_VAULT_KEY:-none}" >> ${hookLog}
echo "$1 done for $2"`,
  );
  const caFile = path.join(dir, 'pebble-ca.pem');
  await writeFile(caFile, pebble.caPem);
  [lbHook, lbServe] = await Promise.all([
    startTestEdgelb(etcd, {
      KONTENA_LB_VAULT_KEY: VAULT_KEY,
      KONTENA_LB_ACME_EMAIL: 'ops@example.com',
      KONTENA_LB_ACME_DIRECTORY: pebble.directoryUrl,
      KONTENA_LB_ACME_DIRECTORY_CA: caFile,
      KONTENA_LB_ACME_LEADER_TTL: String(TTL),
      KONTENA_LB_ACME_DNS_HOOK: hookPath,
      KONTENA_LB_ACME_DNS_RESOLVERS: pebble.challtestDns,
    }),
    startTestEdgelb(etcd, { KONTENA_LB_VAULT_KEY: VAULT_KEY }),
  ]);
  await waitFor(() => logsWithMsg(lbHook, 'ACME leader: this replica orders certificates').length > 0, { what: 'the edgelb with ACME to lead' });
});

afterEach(async () => {
  await Promise.allSettled(managers.splice(0).map((m) => m.stop()));
});

afterAll(async () => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await Promise.allSettled([lbHook?.stopAll(), lbServe?.stopAll(), pebble?.stop()]);
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  removeCertFiles();
});

describe('DNS-01 through a hook (lego exec convention) and pebble-challtestsrv', () => {
  it('a service *.example.test with acme=true gets a wildcard certificate, served for any sub-domain', async () => {
    const timings: number[] = [];
    for (const zone of ['w1.example.test', 'w2.example.test', 'w3.example.test']) {
      const wildcard = `*.${zone}`;
      const service = zone.split('.')[0]!;
      const started = Date.now();
      await lbHook.put(`services/${service}/virtual_hosts`, wildcard);
      await lbHook.put(`services/${service}/acme`, 'true');
      const onA = await waitPresented(lbHook, `a.${zone}`, wildcard, pebbleRoot);
      timings.push(Date.now() - started);
      const onB = await waitPresented(lbHook, `b.${zone}`, wildcard, pebbleRoot);
      expect(onA.authorized && onB.authorized).toBe(true);
      expect(onB.fingerprint).toBe(onA.fingerprint);

      // Stored like any ACME certificate, under a key the vault accepts; the state is valid, the record gone.
      const stored = (await etcd.client.get(`${lbHook.prefix}/certs/acme-_wildcard.${zone}`).string())!;
      expect(new X509Certificate(decryptBundle(stored, VAULT_KEY)).subjectAltName).toBe(`DNS:${wildcard}`);
      expect(await storedState(lbHook.prefix, wildcard)).toMatchObject({ domain: wildcard, status: 'valid', failures: 0 });
      await waitFor(async () => (await txtAt(pebble.challtestDns, `_acme-challenge.${zone}`)).length === 0, { what: 'the TXT record to be cleaned up' });
    }
    const logs = lbHook.logs.filter((l) => l.domain === '*.w1.example.test');
    const at = (msg: string) => Date.parse(String(logs.find((l) => l.msg === msg)?.time));
    console.log(
      `[measure] DNS-01 (hook, challtestsrv): service *.wN.example.test written -> wildcard served over TLS: ${timings.join(', ')} ms (median ${median(timings)} ms; first run: record visible +${at('ACME DNS record visible') - at('ACME: ordering a certificate')} ms, validated +${at('ACME challenge validated') - at('ACME: ordering a certificate')} ms after the order began)`,
    );
    // Each step logged; present and cleanup each ran once per wildcard, without edgelb's secrets in the hook's environment.
    for (const step of [
      'ACME DNS record published',
      'ACME DNS record visible',
      'ACME challenge validated',
      'ACME certificate stored',
      'ACME DNS records removed',
    ]) {
      expect(messages(logs, step), step).toHaveLength(1);
    }
    expect(messages(logs, 'ACME DNS hook done').map((l) => l.action)).toEqual(['present', 'cleanup']);
    expect(messages(logs, 'ACME DNS hook done')[0]?.output).toMatch(/^present done for _acme-challenge\.w1\.example\.test\.$/m);
    const calls = (await readFile(hookLog, 'utf8')).trim().split('\n');
    expect(calls.filter((c) => c.startsWith('present _acme-challenge.w1.example.test. '))).toHaveLength(1);
    expect(calls.every((c) => c.endsWith('token:hook-token secret-env:none'))).toBe(true);
    expect(JSON.stringify(lbHook.logs)).not.toContain(VAULT_KEY);
  });

  it('KONTENA_LB_ACME_CHALLENGE=dns-01: an exact name is validated by DNS-01 too', async () => {
    const domain = 'internal.example.test';
    const m = startManager({ id: 'forced', dns: hookSolver(hookPath), challenge: 'dns-01', envDomains: [domain] });
    const served = await waitFor(
      async () => {
        const cert = await presented(lbServe, domain, pebbleRoot).catch(() => undefined);
        return cert?.names === `DNS:${domain}` && cert;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `${domain} served` },
    );
    expect(served.authorized).toBe(true);
    expect(messages(m.logs, 'ACME challenge validated', domain)).toEqual([expect.objectContaining({ type: 'dns-01' })]);
    expect(messages(m.logs, 'ACME DNS hook done', domain).map((l) => l.action)).toEqual(['present', 'cleanup']);
    expect(m.manager.status().domains).toEqual([expect.objectContaining({ domain, challenge: 'dns-01' })]);
    expect(await etcd.client.getAll().prefix(`${lbServe.prefix}/acme/challenges/`).keys()).toEqual([]);
  });

  it('a hook that fails: the attempt fails with its words and backs off, no certificate, the replica keeps serving', async () => {
    const failing = await writeScript('failing-hook.sh', 'echo "DNS API says: invalid token for zone" >&2\nexit 3');
    const domain = '*.fail.example.test';
    const m = startManager({ id: 'failing', dns: hookSolver(failing), envDomains: [domain] });
    await waitFor(async () => ((await storedState(lbServe.prefix, domain))?.failures ?? 0) >= 3, { timeoutMs: 15_000, what: '3 failed attempts' });
    await m.stop();
    const state = await storedState(lbServe.prefix, domain);
    expect(state?.status).toBe('failing');
    expect(state?.lastError?.message).toMatch(
      /the DNS hook's present for _acme-challenge\.fail\.example\.test\. exited with 3: DNS API says: invalid token for zone/,
    );
    // Backoff: the attempts are spread out (300 ms doubling), not a tight loop.
    const attempts = messages(m.logs, 'ACME: ordering a certificate', domain).map((l) => Date.parse(String(l.time)));
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(attempts.length).toBeLessThan(8);
    expect(attempts[2]! - attempts[1]!).toBeGreaterThanOrEqual(400);
    expect(messages(m.logs, 'ACME DNS hook failed', domain)[0]).toMatchObject({
      action: 'present',
      why: 'exited with 3',
      output: 'DNS API says: invalid token for zone',
    });
    expect(await etcd.client.get(`${lbServe.prefix}/certs/acme-_wildcard.fail.example.test`).string()).toBeNull();
    // The replica still applies configurations.
    await lbServe.put('services/after-fail/virtual_hosts', 'after.example.test');
    await waitFor(() => lbServe.controller.status().lastApply !== undefined, { what: 'edgelb to apply' });
  });

  it('a hook that hangs is killed at its timeout, with whatever it started', async () => {
    const pidFile = path.join(dir, 'sleeper.pid');
    const hanging = await writeScript('hanging-hook.sh', `sleep 60 &\necho $! > ${pidFile}\nwait`);
    const solver = dnsSolverOf({
      challenge: 'http-01',
      publisher: { kind: 'hook', path: hanging, timeoutMs: 1000 },
      resolvers: undefined,
      propagationTimeoutMs: 1000,
    })!;
    const { logs, logger } = capturingLogger();
    const started = Date.now();
    await expect(solver.publisher.present({ fqdn: '_acme-challenge.x.test.', value: 'v' }, logger, new AbortController().signal)).rejects.toThrow(
      /timed out after 1000 ms/,
    );
    expect(Date.now() - started).toBeLessThan(3000);
    const sleeper = Number(await readFile(pidFile, 'utf8'));
    await waitFor(
      () => {
        try {
          process.kill(sleeper, 0);
          return false;
        } catch {
          return true;
        }
      },
      { timeoutMs: 3000, what: "the hook's child to be killed" },
    );
    expect(logs.find((l) => l.msg === 'ACME DNS hook failed')).toMatchObject({ action: 'present', why: 'timed out after 1000 ms' });
  });

  it('leader failover during a DNS-01 order: the leader waits for its record, is stopped, cleans up; the other replica finishes the order', async () => {
    const domain = '*.failover.example.test';
    // X waits for its record on a DNS server that never answers (nothing listens there).
    const deadResolver = `127.0.0.1:${await freePort()}`;
    const x = startManager({ id: 'dns-x', dns: hookSolver(hookPath, deadResolver, 60_000), envDomains: [domain] });
    await waitFor(() => x.manager.status().leader, { what: 'X to lead' });
    const y = startManager({ id: 'dns-y', dns: hookSolver(hookPath), envDomains: [domain] });
    await waitFor(() => messages(x.logs, 'ACME DNS record published', domain).length > 0, { timeoutMs: 15_000, what: 'X to publish the record' });
    const pending = (await storedState(lbServe.prefix, domain))?.pending;
    expect(pending).toMatchObject({ by: 'dns-x', records: [{ fqdn: '_acme-challenge.failover.example.test.' }] });

    const stoppedAt = Date.now();
    await x.stop();
    // X removed its record on the way out (cleanup always runs), then resigned.
    expect(messages(x.logs, 'ACME DNS hook done', domain).map((l) => l.action)).toEqual(['present', 'cleanup']);
    expect(messages(x.logs, 'ACME: attempt interrupted; the pending order is resumed later', domain)).toHaveLength(1);
    await waitFor(() => y.manager.status().leader, { timeoutMs: (TTL + 2) * 1000, what: 'Y to lead' });
    const served = await waitPresented(lbServe, 'any.failover.example.test', domain, pebbleRoot);
    console.log(
      `[measure] DNS-01 leader stopped mid-order (waiting for its record) -> wildcard served by the other replica's order: ${Date.now() - stoppedAt} ms`,
    );
    expect(served.authorized).toBe(true);
    expect(messages(y.logs, 'ACME order resumed', domain).map((l) => l.order)).toEqual([pending!.orderUrl]);
    expect(messages(x.logs, 'ACME certificate stored', domain)).toEqual([]);
    expect(await storedState(lbServe.prefix, domain)).toMatchObject({ status: 'valid' });
    expect((await storedState(lbServe.prefix, domain))?.pending).toBeUndefined();
  });
});

describe('DNS-01 through RFC 2136 (TSIG) against BIND 9', () => {
  const KEY = 'edgelb-acme';
  const SECRET = randomBytes(32).toString('base64');
  let bind: Bind9;
  let bindPebble: Pebble;
  let bindRoot: string;
  /** An edgelb with RFC 2136 from its settings, the secret in a file. */
  let lbRfc: TestEdgelb;

  beforeAll(async () => {
    bind = await startBind9({ zone: 'dyn.test', keyName: KEY, secret: SECRET });
    bindPebble = await startPebble({ httpPort: await freePort(), dnsServer: bind.address });
    bindRoot = await bindPebble.rootCa();
    const secretFile = path.join(dir, 'tsig.secret');
    await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
    const caFile = path.join(dir, 'bind-pebble-ca.pem');
    await writeFile(caFile, bindPebble.caPem);
    lbRfc = await startTestEdgelb(etcd, {
      KONTENA_LB_VAULT_KEY: VAULT_KEY,
      KONTENA_LB_ACME_EMAIL: 'ops@example.com',
      KONTENA_LB_ACME_DIRECTORY: bindPebble.directoryUrl,
      KONTENA_LB_ACME_DIRECTORY_CA: caFile,
      KONTENA_LB_ACME_LEADER_TTL: String(TTL),
      KONTENA_LB_ACME_RFC2136_SERVER: bind.address,
      KONTENA_LB_ACME_RFC2136_TSIG_KEY: KEY,
      KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE: secretFile,
      KONTENA_LB_ACME_DNS_RESOLVERS: bind.address,
    });
    await waitFor(() => logsWithMsg(lbRfc, 'ACME leader: this replica orders certificates').length > 0, { what: 'the RFC 2136 edgelb to lead' });
  });
  afterAll(async () => {
    await Promise.allSettled([lbRfc?.stopAll(), bind?.stop(), bindPebble?.stop()]);
  });

  function rfc2136(secret: string): DnsSolver {
    return dnsSolverOf({
      challenge: 'http-01',
      publisher: { kind: 'rfc2136', server: parseServer(bind.address)!, keyName: KEY, algorithm: 'hmac-sha256', secret: Buffer.from(secret, 'base64') },
      resolvers: [parseServer(bind.address)!],
      propagationTimeoutMs: 10_000,
    })!;
  }

  it('publishes the record with a signed update, BIND serves it to pebble, the wildcard is issued and served; the record is deleted', async () => {
    const domain = '*.dyn.test';
    const timings: number[] = [];
    for (const zone of ['dyn.test', 'a1.dyn.test', 'a2.dyn.test']) {
      const wildcard = `*.${zone}`;
      const started = Date.now();
      await lbRfc.put(`services/${zone.replace(/\./g, '-')}/virtual_hosts`, wildcard);
      await lbRfc.put(`services/${zone.replace(/\./g, '-')}/acme`, 'true');
      const served = await waitPresented(lbRfc, `a.${zone}`, wildcard, bindRoot);
      timings.push(Date.now() - started);
      expect(served.authorized).toBe(true);
      expect((await waitPresented(lbRfc, `b.${zone}`, wildcard, bindRoot)).fingerprint).toBe(served.fingerprint);
    }
    console.log(
      `[measure] DNS-01 (RFC 2136 to BIND 9, pebble resolving through BIND): service *.dyn.test written -> wildcard served over TLS: ${timings.join(', ')} ms (median ${median(timings)} ms)`,
    );

    const logs = lbRfc.logs.filter((l) => l.domain === domain);
    const updates = messages(logs, 'ACME DNS record updated (RFC 2136)');
    expect(updates.map((l) => [l.action, l.zone])).toEqual([
      ['add', 'dyn.test'],
      ['delete', 'dyn.test'],
    ]);
    expect(logsWithMsg(lbRfc, 'ACME enabled')[0]?.dns).toBe(`RFC 2136 to ${bind.address} (key ${KEY}, hmac-sha256)`);
    // BIND checked the signatures and served the record (edgelb asked BIND before pebble did); it is gone again.
    expect(bind.output.filter((l) => l.includes(`signer "${KEY}" approved`)).length).toBeGreaterThanOrEqual(6);
    expect(messages(logs, 'ACME DNS record visible')[0]).toMatchObject({ servers: [bind.address] });
    await waitFor(async () => (await txtAt(bind.address, '_acme-challenge.a2.dyn.test')).length === 0, { what: 'the last record to be deleted' });
    expect(await txtAt(bind.address, '_acme-challenge.dyn.test')).toEqual([]);
    // The secret is in no log line.
    expect(JSON.stringify(lbRfc.logs)).not.toContain(SECRET);
    expect(JSON.stringify(lbRfc.logs)).not.toContain(Buffer.from(SECRET, 'base64').toString('hex'));
  });

  it('a wrong secret: BIND refuses the update, the attempt fails with a clear reason and backs off', async () => {
    const domain = '*.wrong.dyn.test';
    const m = startManager({
      id: 'rfc2136-wrong',
      dns: rfc2136(randomBytes(32).toString('base64')),
      envDomains: [domain],
      directoryUrl: bindPebble.directoryUrl,
      directoryCa: bindPebble.caPem,
    });
    await waitFor(async () => ((await storedState(lbServe.prefix, domain))?.failures ?? 0) >= 2, { timeoutMs: 15_000, what: '2 failed attempts' });
    await m.stop();
    expect((await storedState(lbServe.prefix, domain))?.lastError?.message).toMatch(
      /refused the update of _acme-challenge\.wrong\.dyn\.test\. .*NOTAUTH.*BADSIG/,
    );
  });
});
