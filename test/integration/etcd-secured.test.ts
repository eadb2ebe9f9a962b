import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/admin/status.js';
import { FAILURE_HINTS, type EtcdFailureCode } from '../../src/etcd/errors.js';
import type { Backend } from '../support/backend.js';
import { removeCertFiles } from '../support/certs.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { CLIENT_CERT_NAME } from '../support/etcd-tls.js';
import { closeBackends, expectRoute, lbReady, startBackends } from '../support/lb.js';
import { parsePrometheusText, sampleValue } from '../support/prometheus.js';
import { adminGet, grantPrefix, keyMaterial, linkWebService, secretsDir, setUserPassword, tlsSettings, type Api } from '../support/secured-etcd.js';
import { waitFor } from '../support/wait.js';

// Secured etcd (TLS with client certificates, v3 RBAC and v2 auth) against the real etcd 3.4, for
// the v3 and the v2 API, with the controller in this process and a real HAProxy: it serves through
// a secured etcd; a refused certificate or password is one log line per attempt with a stable
// code, retried with a growing backoff, /healthz 503 with the reason meanwhile; an operator's fix
// (the password, the role) is picked up without a restart; no secret reaches logs, /status or /metrics.

let tlsEtcd: EtcdServer;
let authEtcd: EtcdServer;
let backends: Record<'a', Backend>;
let secrets: Awaited<ReturnType<typeof secretsDir>>;
const lbs: TestEdgelb[] = [];

beforeAll(async () => {
  [tlsEtcd, authEtcd, backends, secrets] = await Promise.all([
    startEtcd({ tls: true, enableV2: true }),
    startEtcd({ tls: true, enableV2: true }),
    startBackends('a'),
    secretsDir(),
  ]);
});

afterEach(async () => {
  for (const lb of lbs.splice(0)) await lb.stopAll();
});

afterAll(async () => {
  await Promise.all([tlsEtcd?.stop(), authEtcd?.stop(), closeBackends(backends), secrets?.remove()]);
  removeCertFiles();
});

async function startLb(etcd: EtcdServer, api: Api, prefix: string, settings: Record<string, string>): Promise<TestEdgelb> {
  const lb = await startTestEdgelb(etcd, { ETCD_API: api, ETCD_PATH: prefix, ...settings });
  lbs.push(lb);
  return lb;
}

/** The source's log lines about a failed attempt (each names its code). */
function failureLines(lb: TestEdgelb): Record<string, unknown>[] {
  return lb.logs.filter((l) => l.component === 'etcd' && typeof l.code === 'string');
}

async function status(lb: TestEdgelb): Promise<StatusReport> {
  const reply = await adminGet(lb.config.adminPort, '/status');
  expect(reply.status).toBe(200);
  return JSON.parse(reply.body) as StatusReport;
}

/**
 * The refusal as an operator sees it: at least three attempts, the first logged as one error
 * line that is the code's hint and carries the code and the cause (`cause`), the repeats of the
 * same cause at debug level only, with a growing retryInMs; nothing else warned about; /healthz
 * 503 naming the cause, /status and /metrics the code.
 */
async function expectRefused(lb: TestEdgelb, code: EtcdFailureCode, cause: RegExp, healthReason: RegExp): Promise<void> {
  const lines = await waitFor(
    () => {
      const found = failureLines(lb);
      return found.length >= 3 && found;
    },
    { timeoutMs: 10_000, what: `three failed attempts with code ${code}` },
  );
  for (const [index, line] of lines.entries()) {
    expect(line, JSON.stringify(line)).toMatchObject(
      index === 0 ? { level: 50, code, msg: FAILURE_HINTS[code] } : { level: 20, code, msg: `${FAILURE_HINTS[code]} (again)` },
    );
    expect(String(line.err)).toMatch(cause);
    expect(String(line.err)).not.toMatch(/\n/);
  }
  const delays = lines.slice(0, 3).map((l) => Number(l.retryInMs));
  expect(delays[0]).toBeGreaterThan(0);
  expect(delays[1]).toBeGreaterThan(delays[0]!);
  expect(delays[2]).toBeGreaterThan(delays[1]!);
  // One line per attempt: no other warning or error (a library's own line, a second line for the same attempt).
  expect(lb.logs.filter((l) => Number(l.level) >= 40).filter((l) => !lines.includes(l) && l.code !== code)).toEqual([]);

  const health = await adminGet(lb.config.adminPort, '/healthz');
  expect(health.status).toBe(503);
  const report = JSON.parse(health.body) as { status: string; reason: string };
  expect(report.status).toBe('unavailable');
  expect(report.reason).toMatch(healthReason);
  expect(report.reason.startsWith(FAILURE_HINTS[code])).toBe(true);

  const etcd = (await status(lb)).etcd;
  expect(etcd.connected).toBe(false);
  expect(etcd.error?.code).toBe(code);
  expect(etcd.error?.message).toMatch(cause);
  const metrics = parsePrometheusText((await adminGet(lb.config.adminPort, '/metrics')).body);
  expect(sampleValue(metrics, 'edgelb_etcd_failure', { code })).toBe(1);
  expect(sampleValue(metrics, 'edgelb_etcd_connected')).toBe(0);
}

/** Connected and serving: /healthz 200, /status without an error, the route through HAProxy. */
async function expectServing(lb: TestEdgelb, api: Api, host: string): Promise<void> {
  await waitFor(async () => (await adminGet(lb.config.adminPort, '/healthz')).status === 200, { timeoutMs: 10_000, what: '/healthz to answer 200' });
  await expectRoute(lb, '/', host, 'a');
  const etcd = (await status(lb)).etcd;
  expect(etcd).toMatchObject({ connected: true, api, error: null });
  expect(lb.logs.some((l) => l.msg === 'watching etcd' && l.api === api)).toBe(true);
}

/** None of `secret` in anything edgelb printed or serves on its admin port. */
async function expectNoSecret(lb: TestEdgelb, secret: readonly string[]): Promise<void> {
  const shown = [
    JSON.stringify(lb.logs),
    ...(await Promise.all(['/healthz', '/status', '/metrics'].map(async (p) => (await adminGet(lb.config.adminPort, p)).body))),
  ].join('\n');
  for (const s of secret) expect(shown.includes(s), `a secret was shown: ${s.slice(0, 8)}...`).toBe(false);
}

let serial = 0;
function prefixFor(api: Api, what: string): string {
  return `/kontena/haproxy/secured-${api}-${what}-${++serial}`;
}

describe.each(['v3', 'v2'] as const)('etcd %s over TLS with client certificates', (api) => {
  it('serves the routes written to a TLS etcd, connecting with the CA, a client certificate and its key', async () => {
    const prefix = prefixFor(api, 'tls');
    const lb = await startLb(tlsEtcd, api, prefix, tlsSettings(tlsEtcd));
    await lbReady(lb);
    await linkWebService(tlsEtcd, api, prefix, 'web', 'web.secured.test', backends.a.address);
    await expectServing(lb, api, 'web.secured.test');
    expect(lb.logs.find((l) => l.msg === 'watching etcd')?.endpoints).toEqual([tlsEtcd.endpoint]);
    await expectNoSecret(lb, keyMaterial(tlsEtcd.tls!.client.keyPem));
  });

  it('an untrusted client certificate: one "tls" line, repeats at debug level, retried with backoff, /healthz 503', async () => {
    const lb = await startLb(tlsEtcd, api, prefixFor(api, 'untrusted'), tlsSettings(tlsEtcd, { client: tlsEtcd.tls!.untrustedClient }));
    await expectRefused(lb, 'tls', /^(https:\/\/127\.0\.0\.1:\d+: )?etcd refused edgelb's client certificate.*bad certificate/, /TLS.*certificate/);
    await expectNoSecret(lb, keyMaterial(tlsEtcd.tls!.untrustedClient.keyPem));
  });

  it('no ETCD_CA_FILE (the server certificate is not trusted): one "tls" line, repeats at debug level, /healthz 503', async () => {
    const lb = await startLb(tlsEtcd, api, prefixFor(api, 'no-ca'), tlsSettings(tlsEtcd, { ca: false }));
    await expectRefused(lb, 'tls', /edgelb does not trust the etcd server's certificate.*ETCD_CA_FILE.*unable to verify/, /TLS.*certificate/);
  });
});

describe.each(['v3', 'v2'] as const)('etcd %s with a user limited to the prefix (and TLS)', (api) => {
  it('a wrong password: one "auth" line, repeats at debug level, /healthz 503; fixed in etcd, edgelb recovers by itself and serves', async () => {
    const prefix = prefixFor(api, 'password');
    const username = `lb-${api}-pw`;
    const given = `given-${api}-Pw-8c1f0e27b4`;
    // The user exists with another password; edgelb is given `given` in a file (with the usual trailing newline).
    await authEtcd.enableAuth({ prefix, username, password: `actual-${api}-Pw-51d9a6` });
    await linkWebService(authEtcd, api, prefix, 'web', 'web.auth.test', backends.a.address);
    const lb = await startLb(authEtcd, api, prefix, {
      ...tlsSettings(authEtcd),
      ETCD_USERNAME: username,
      ETCD_PASSWORD_FILE: await secrets.write(`${username}.password`, `${given}\n`),
    });
    await expectRefused(lb, 'auth', api === 'v3' ? /authentication failed/ : /user authentication.*wrong user name or password/, /user name or password/);
    await expectNoSecret(lb, [given]);

    await setUserPassword(authEtcd, api, username, given);
    await expectServing(lb, api, 'web.auth.test');
    await expectNoSecret(lb, [given]);
  });

  it('an untrusted client certificate with the right user and password: "tls", not "unreachable"', async () => {
    // etcd3 authenticates first, on a fresh gRPC channel each time, and gRPC reports that refused
    // handshake as "No connection established. Last error: null" (see src/etcd/tls-probe.ts).
    const prefix = prefixFor(api, 'untrusted-user');
    const username = `lb-${api}-cert`;
    const password = `cert-${api}-Pw-7a0e`;
    await authEtcd.enableAuth({ prefix, username, password });
    const lb = await startLb(authEtcd, api, prefix, {
      ...tlsSettings(authEtcd, { client: authEtcd.tls!.untrustedClient }),
      ETCD_USERNAME: username,
      ETCD_PASSWORD_FILE: await secrets.write(`${username}.password`, password),
    });
    await expectRefused(lb, 'tls', /etcd refused edgelb's client certificate.*bad certificate/, /TLS.*certificate/);
    await expectNoSecret(lb, [password, ...keyMaterial(authEtcd.tls!.untrustedClient.keyPem)]);
  });

  it('a role that does not cover the prefix: refused until the operator grants it, then served without a restart', async () => {
    const prefix = prefixFor(api, 'grant');
    const username = `lb-${api}-grant`;
    const password = `grant-${api}-Pw-0f3b`;
    const granted = await authEtcd.enableAuth({ prefix: prefixFor(api, 'elsewhere'), username, password });
    await linkWebService(authEtcd, api, prefix, 'web', 'web.grant.test', backends.a.address);
    const lb = await startLb(authEtcd, api, prefix, {
      ...tlsSettings(authEtcd),
      ETCD_USERNAME: username,
      ETCD_PASSWORD_FILE: await secrets.write(`${username}.password`, password),
    });
    if (api === 'v3') {
      await expectRefused(lb, 'permission', /permission denied/, /may not read/);
    } else {
      // etcd's v2 API answers a wrong password and a key outside the user's roles with the same
      // 401 (errorCode 110): the code is 'auth', and the message names both possibilities.
      await expectRefused(lb, 'auth', /wrong user name or password, or the user's role does not cover this key/, /user name or password/);
    }
    await grantPrefix(authEtcd, api, granted.roleName, prefix);
    await expectServing(lb, api, 'web.grant.test');
    await expectNoSecret(lb, [password]);
  });
});

describe('the client certificate as the etcd user (no ETCD_USERNAME)', () => {
  it("refused while no user has the certificate's common name, on either API; served once the operator creates it", async () => {
    // etcd (--client-cert-auth) takes the common name as the user when a request has no token (v3)
    // or no basic auth (v2). The v2 and v3 keyspaces are separate: one prefix holds a route in each.
    const prefix = prefixFor('v3', 'common-name');
    await linkWebService(authEtcd, 'v3', prefix, 'web', 'web.cn.test', backends.a.address);
    await linkWebService(authEtcd, 'v2', prefix, 'web', 'web.cn.test', backends.a.address);
    const [v3, v2] = await Promise.all((['v3', 'v2'] as const).map((api) => startLb(authEtcd, api, prefix, tlsSettings(authEtcd))));
    await expectRefused(
      v3!,
      'permission',
      /permission denied.*no ETCD_USERNAME is set: etcd took the client certificate's common name as the user name/,
      /may not read/,
    );
    await expectRefused(v2!, 'auth', /no ETCD_USERNAME is set.*common name/, /ETCD_USERNAME/);

    await authEtcd.enableAuth({ prefix, username: CLIENT_CERT_NAME, password: 'unused-by-edgelb-5e0d' }); // a user (and role) in both APIs
    await expectServing(v3!, 'v3', 'web.cn.test');
    await expectServing(v2!, 'v2', 'web.cn.test');
  });
});
