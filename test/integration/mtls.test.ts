import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { makeCa, makeCrl, makeLeaf, removeCertFiles, type CertAuthority, type LeafCert } from '../support/certs.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { closeBackends, putKeys, settled, startBackends, startLbWith } from '../support/lb.js';
import { waitFor } from '../support/wait.js';
import { envCert, httpsGet, serialOf, type HttpsReply } from '../support/tls.js';

// Client-certificate authentication per service (issue 16): client_ca, client_verify, client_crl
// through a real HAProxy, with CAs, client certificates and a CRL made here with openssl.

let etcd: EtcdServer;
let b: Record<'secure' | 'open', Backend>;
let partners: CertAuthority;
let stranger: CertAuthority;
let server: LeafCert;
let clients: Record<'good' | 'foreign' | 'revoked', LeafCert>;
let crl: string;
const running: TestEdgelb[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('secure', 'open');
  [partners, stranger] = await Promise.all([makeCa('partners CA'), makeCa('stranger CA')]);
  // One server certificate for both hosts: the checked host's name moves to a crt-list line of its own.
  server = await makeLeaf({ names: ['open.test', 'secure.test'] });
  const [good, foreign, revoked] = await Promise.all([
    makeLeaf({ names: [], commonName: 'client-good', issuer: partners }),
    makeLeaf({ names: [], commonName: 'client-foreign', issuer: stranger }),
    makeLeaf({ names: [], commonName: 'client-revoked', issuer: partners }),
  ]);
  clients = { good: good!, foreign: foreign!, revoked: revoked! };
  crl = await makeCrl(partners, [clients.revoked]);
});

afterEach(async () => {
  for (const lb of running.splice(0)) await lb.stopAll();
});

afterAll(async () => {
  await closeBackends(b);
  await etcd?.stop();
  removeCertFiles();
});

/** An LB serving `server`'s certificate, with the secure service (client_ca partners) and an open one. */
async function lbWith(secure: Record<string, string>, more: Record<string, string> = {}): Promise<TestEdgelb> {
  const entries: Record<string, string> = {
    'services/secure/virtual_hosts': 'secure.test',
    'services/secure/upstreams/a': b.secure.address,
    'services/open/virtual_hosts': 'open.test',
    'services/open/upstreams/a': b.open.address,
    'client-cas/partners': partners.certPem,
    ...Object.fromEntries(Object.entries(secure).map(([k, v]) => [`services/secure/${k}`, v])),
    ...more,
  };
  const lb = await startLbWith(etcd, entries, {}, { envCerts: [envCert('SSL_CERTS', server.bundlePem)] });
  running.push(lb);
  return lb;
}

/** An HTTPS request to the secure host: with SNI `secure.test`, unless told otherwise, and this client certificate. */
function secureGet(lb: TestEdgelb, client: LeafCert | undefined, options: { servername?: string; host?: string; headers?: Record<string, string> } = {}) {
  return httpsGet(lb.config.httpsPort, {
    servername: options.servername ?? 'secure.test',
    host: options.host ?? 'secure.test',
    headers: options.headers,
    ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
  });
}

/** The request fails at the TLS layer: the handshake alert, or the connection closed before any answer. */
async function expectRefused(reply: Promise<HttpsReply>): Promise<void> {
  await expect(reply).rejects.toThrow(/alert|certificate|socket hang up|ECONNRESET|EPIPE/i);
}

const lastRequest = (backend: Backend) => backend.requests.at(-1)!;

describe('client_ca (mTLS)', () => {
  it('required: no certificate and another CA are refused in the handshake; the right one reaches the service with the headers', async () => {
    const lb = await lbWith({ client_ca: 'partners' });
    await expectRefused(secureGet(lb, undefined));
    await expectRefused(secureGet(lb, clients.foreign));

    const reply = await secureGet(lb, clients.good);
    expect(reply.status).toBe(200);
    expect(reply.backend).toBe('secure');
    const headers = lastRequest(b.secure).headers;
    expect(headers['x-ssl-client-verify']).toBe('SUCCESS');
    expect(headers['x-ssl-client-dn']).toContain('CN=client-good');
    expect(String(headers['x-ssl-client-serial']).toUpperCase()).toBe(serialOf(clients.good.certPem).toUpperCase());

    // The other host on the same certificate asks for nothing.
    const open = await httpsGet(lb.config.httpsPort, { servername: 'open.test' });
    expect(open.backend).toBe('open');
  });

  it("a checked host that is the default certificate's only name: its line of its own, the default's line excluding it", async () => {
    const only = await makeLeaf({ names: ['secure.test'] });
    const lb = await startLbWith(
      etcd,
      {
        'services/secure/virtual_hosts': 'secure.test',
        'services/secure/upstreams/a': b.secure.address,
        'services/secure/client_ca': 'partners',
        'client-cas/partners': partners.certPem,
      },
      {},
      { envCerts: [envCert('SSL_CERTS', only.bundlePem)] },
    );
    running.push(lb);
    await expectRefused(secureGet(lb, undefined));
    expect((await secureGet(lb, clients.good)).status).toBe(200);
    // A name no line has gets the default certificate, unchecked (the default's line excludes the
    // checked name, it does not carry the check), and cannot reach the service.
    expect((await httpsGet(lb.config.httpsPort, { servername: 'unknown.test', host: 'secure.test' })).status).toBe(421);
  });

  it('a client-supplied X-SSL-Client-* header never reaches a service, checked or not', async () => {
    const lb = await lbWith({ client_ca: 'partners' });
    const spoof = { 'X-SSL-Client-DN': '/CN=admin', 'X-SSL-Client-Verify': 'SUCCESS', 'X-SSL-Client-Serial': '01' };
    expect((await secureGet(lb, clients.good, { headers: spoof })).status).toBe(200);
    const headers = lastRequest(b.secure).headers;
    expect(headers['x-ssl-client-dn']).toContain('CN=client-good');
    expect(headers['x-ssl-client-dn']).not.toContain('admin');
    expect(headers['x-ssl-client-serial']).not.toBe('01');

    // With underscores too: CGI, FastCGI and many WSGI servers read X_SSL_Client_DN as X-SSL-Client-DN.
    const underscored = { X_SSL_Client_DN: '/CN=admin', 'X-SSL_Client-Verify': 'SUCCESS', x_ssl_client_serial: '01' };
    expect((await secureGet(lb, undefined, { servername: 'open.test', host: 'open.test', headers: underscored })).backend).toBe('open');
    expect((await httpsGet(lb.config.httpsPort, { servername: 'open.test', headers: spoof })).backend).toBe('open');
    expect((await get(lb.httpPort, '/', 'open.test')).backend).toBe('open');
    for (const request of b.open.requests.slice(-3)) {
      expect(Object.keys(request.headers).filter((name) => /^x[-_]ssl[-_]client/.test(name))).toEqual([]);
    }
  });

  it('a session opened for an unchecked host, or plain HTTP, cannot reach the checked service', async () => {
    const lb = await lbWith({ client_ca: 'partners' });
    const seen = b.secure.requests.length;
    // SNI of the open host (no certificate asked), Host of the secure one.
    const misdirected = await httpsGet(lb.config.httpsPort, { servername: 'open.test', host: 'secure.test' });
    expect(misdirected.status).toBe(421);
    // Even with a valid certificate of the right CA: the check belongs to the TLS server name.
    expect((await secureGet(lb, clients.good, { servername: 'open.test' })).status).toBe(421);
    expect((await get(lb.httpPort, '/', 'secure.test')).status).toBe(403);
    expect(b.secure.requests.length).toBe(seen);
  });

  it('optional: a client without a certificate reaches the service with X-SSL-Client-Verify NONE; an invalid one is still refused', async () => {
    const lb = await lbWith({ client_ca: 'partners', client_verify: 'optional' });
    const anonymous = await secureGet(lb, undefined);
    expect(anonymous.status).toBe(200);
    expect(lastRequest(b.secure).headers['x-ssl-client-verify']).toBe('NONE');
    expect(lastRequest(b.secure).headers['x-ssl-client-dn']).toBeUndefined();
    expect((await secureGet(lb, clients.good)).status).toBe(200);
    expect(lastRequest(b.secure).headers['x-ssl-client-verify']).toBe('SUCCESS');
    await expectRefused(secureGet(lb, clients.foreign));
  });

  it('client_crl: a revoked certificate is refused, the others pass', async () => {
    const lb = await lbWith({ client_ca: 'partners', client_crl: 'partners' }, { 'client-crls/partners': crl });
    await expectRefused(secureGet(lb, clients.revoked));
    expect((await secureGet(lb, clients.good)).status).toBe(200);
  });

  it('a missing or invalid bundle, or an unknown client_verify, closes the service (403) with the rejection logged; fixed, it opens', async () => {
    const lb = await lbWith({ client_ca: 'nobody' });
    const seen = b.secure.requests.length;
    const rejection = (code: string) => lb.controller.status().rejected.find((r) => r.code === code);
    expect(rejection('unusable_client_auth')?.key).toBe('services/secure/client_ca');
    // No crt-list line asks for a certificate: the HTTP layer closes it.
    expect((await secureGet(lb, clients.good)).status).toBe(403);
    expect(lb.logs.some((l) => l.msg === 'entry rejected' && l.code === 'unusable_client_auth')).toBe(true);

    // A bundle without any CA certificate (a client certificate stored by mistake).
    await settled(lb, await putKeys(etcd, lb, { 'client-cas/nobody': clients.good.certPem }));
    expect(rejection('invalid_ca_bundle')).toMatchObject({ key: 'client-cas/nobody', reason: expect.stringContaining('no CA certificate') });
    expect((await secureGet(lb, clients.good)).status).toBe(403);

    await settled(lb, await putKeys(etcd, lb, { 'services/secure/client_ca': 'partners', 'services/secure/client_verify': 'sometimes' }));
    expect(rejection('invalid_value')?.key).toBe('services/secure/client_verify');
    expect((await secureGet(lb, clients.good)).status).toBe(403);
    expect(b.secure.requests.length).toBe(seen);

    await settled(lb, await putKeys(etcd, lb, { 'services/secure/client_verify': 'required' }));
    expect((await secureGet(lb, clients.good)).status).toBe(200);
    await expectRefused(secureGet(lb, undefined));
  });

  it('KONTENA_LB_CERTS_DIR: client-cas/<name>.pem is a CA bundle like client-cas/<name> in etcd; replacing the file applies it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-mtls-dir-'));
    try {
      await mkdir(path.join(dir, 'client-cas'));
      await writeFile(path.join(dir, 'site.pem'), server.bundlePem);
      await writeFile(path.join(dir, 'client-cas', 'filed.pem'), partners.certPem);
      const lb = await startLbWith(
        etcd,
        { 'services/secure/virtual_hosts': 'secure.test', 'services/secure/upstreams/a': b.secure.address, 'services/secure/client_ca': 'filed' },
        { KONTENA_LB_CERTS_DIR: dir },
      );
      running.push(lb);
      expect((await secureGet(lb, clients.good)).status).toBe(200);
      await expectRefused(secureGet(lb, clients.foreign));
      // Now the stranger CA is the one trusted: the partners' client is refused.
      await writeFile(path.join(dir, 'client-cas', 'filed.pem'), stranger.certPem);
      await waitFor(async () => (await secureGet(lb, clients.foreign)).status === 200, { timeoutMs: 10_000, what: 'the new CA bundle to be applied' });
      await expectRefused(secureGet(lb, clients.good));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('client_ca: a client checked against one CA never reaches a host that trusts another', () => {
  /** `*.corp.test` trusts the stranger CA (backend open), `admin.corp.test` the partners (backend secure). */
  async function corpLb(admin: Record<string, string>): Promise<TestEdgelb> {
    const wildcard = await makeLeaf({ names: ['*.corp.test'] });
    const lb = await startLbWith(
      etcd,
      {
        'services/tenants/virtual_hosts': '*.corp.test',
        'services/tenants/upstreams/a': b.open.address,
        'services/tenants/client_ca': 'stranger',
        'services/admin/virtual_hosts': 'admin.corp.test',
        'services/admin/upstreams/a': b.secure.address,
        'services/admin/client_ca': 'partners',
        ...Object.fromEntries(Object.entries(admin).map(([k, v]) => [`services/admin/${k}`, v])),
        'client-cas/partners': partners.certPem,
        'client-cas/stranger': stranger.certPem,
      },
      {},
      { envCerts: [envCert('SSL_CERTS', wildcard.bundlePem)] },
    );
    running.push(lb);
    return lb;
  }
  const as = (client: LeafCert) => ({ cert: client.certPem, key: client.keyPem });

  it("a request for the exact host's name that its service leaves to the wildcard's (another path) is refused", async () => {
    const lb = await corpLb({ virtual_path: '/api' });
    const port = lb.config.httpsPort;
    expect((await httpsGet(port, { servername: 'admin.corp.test', path: '/api/x', ...as(clients.good) })).backend).toBe('secure');
    expect((await httpsGet(port, { servername: 'tenant.corp.test', ...as(clients.foreign) })).backend).toBe('open');
    const seen = b.open.requests.length;
    // The handshake for admin.corp.test checked the partners' CA; /other routes to tenants, which trusts the stranger's.
    expect((await httpsGet(port, { servername: 'admin.corp.test', path: '/other', ...as(clients.good) })).status).toBe(421);
    expect(b.open.requests.length).toBe(seen);
  });

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`${version}: a session verified for one host and resumed under another's name is not taken for the other's check`, async () => {
      const lb = await corpLb({});
      const port = lb.config.httpsPort;
      const first = await httpsGet(port, { servername: 'admin.corp.test', maxVersion: version, ...as(clients.good) });
      expect(first.backend).toBe('secure');
      const seen = b.open.requests.length;
      // No client certificate now: only the resumed session could carry the partners' one.
      const resumed = httpsGet(port, { servername: 'tenant.corp.test', maxVersion: version, session: first.session });
      const outcome = await resumed.then(
        (reply) => reply.status,
        (error: Error) => error.message,
      );
      expect(outcome === 421 || /alert|certificate|socket hang up|ECONNRESET/i.test(String(outcome)), `got ${outcome}`).toBe(true);
      expect(b.open.requests.length).toBe(seen);
    });
  }
});

describe('client_ca and canary', () => {
  it("a canary never sends another host's requests into a checked service: that host's check is not the service's", async () => {
    // shared.test is checked against the stranger CA (service gate); its other path (service front)
    // would send its requests to the secure service, which trusts only the partners.
    const lb = await lbWith(
      { client_ca: 'partners' },
      {
        'client-cas/stranger': stranger.certPem,
        'services/gate/virtual_hosts': 'shared.test',
        'services/gate/virtual_path': '/gate',
        'services/gate/upstreams/a': b.open.address,
        'services/gate/client_ca': 'stranger',
        'services/front/virtual_hosts': 'shared.test',
        'services/front/upstreams/a': b.open.address,
        'services/front/canary': 'secure:100',
      },
    );
    const seen = b.secure.requests.length;
    const reply = await httpsGet(lb.config.httpsPort, { servername: 'shared.test', cert: clients.foreign.certPem, key: clients.foreign.keyPem });
    expect(reply.backend).toBe('open');
    expect(b.secure.requests.length).toBe(seen);
    expect(lb.controller.status().rejected.find((r) => r.key === 'services/front/canary')?.code).toBe('canary_not_allowed');
  });
});

describe('client_ca on a wildcard host', () => {
  it('a service of an exact name under the checked wildcard, served by the same wildcard certificate, asks for no client certificate', async () => {
    const wildcard = await makeLeaf({ names: ['*.corp.test'] });
    const lb = await startLbWith(
      etcd,
      {
        'services/tenants/virtual_hosts': '*.corp.test',
        'services/tenants/upstreams/a': b.secure.address,
        'services/tenants/client_ca': 'partners',
        'services/www/virtual_hosts': 'www.corp.test',
        'services/www/upstreams/a': b.open.address,
        'client-cas/partners': partners.certPem,
      },
      {},
      { envCerts: [envCert('SSL_CERTS', wildcard.bundlePem)] },
    );
    running.push(lb);
    expect((await httpsGet(lb.config.httpsPort, { servername: 'www.corp.test' })).backend).toBe('open');
    await expectRefused(httpsGet(lb.config.httpsPort, { servername: 'tenant.corp.test' }));
    expect((await httpsGet(lb.config.httpsPort, { servername: 'tenant.corp.test', cert: clients.good.certPem, key: clients.good.keyPem })).backend).toBe(
      'secure',
    );
  });
});
