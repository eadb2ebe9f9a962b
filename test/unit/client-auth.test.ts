import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settingsReportOf } from '../../src/admin/service-settings.js';
import { parseEntries } from '../../src/model/parse.js';
import type { HttpService } from '../../src/model/types.js';
import { resolveCaBundles, uncheckedUnderWildcards } from '../../src/pipeline/ca-resolution.js';
import { caStoreFromEntries, caStoreFromFiles, mergeCaStores, parseCaBundle, type CaStore } from '../../src/tls/ca-bundles.js';
import { resumptionCrossesChecks, withClientAuth, type ClientAuthHost } from '../../src/tls/client-auth-lines.js';
import { selectCertificates } from '../../src/tls/store.js';
import { encryptBundle } from '../../src/tls/vault.js';
import { makeCa, makeCrl, makeLeaf, removeCertFiles, type CertAuthority, type LeafCert } from '../support/certs.js';

// CA bundles (tls/ca-bundles.ts), their resolution against the services (pipeline/ca-resolution.ts)
// and the crt-list lines of the checked hosts (tls/client-auth-lines.ts): issue 16 mTLS, issue 15 backend_ca.

let ca: CertAuthority;
let leaf: LeafCert;
let crl: string;

beforeAll(async () => {
  ca = await makeCa('client-auth unit CA');
  leaf = await makeLeaf({ names: ['a.test', 'b.test', '*.w.test'], issuer: ca });
  crl = await makeCrl(ca, []);
});
afterAll(removeCertFiles);

describe('parseCaBundle', () => {
  it('keeps only the certificates of a bundle with a CA, and refuses one without', () => {
    expect(parseCaBundle('client-ca', `junk\n${ca.certPem}`)).toBe(ca.certPem);
    expect(() => parseCaBundle('client-ca', leaf.certPem)).toThrow(/no CA certificate/);
    expect(() => parseCaBundle('backend-ca', 'not a pem')).toThrow(/no certificate/);
    // A line of base64 taken out: the DER no longer parses.
    expect(() => parseCaBundle('client-ca', ca.certPem.replace(/\n[A-Za-z0-9+/]{64}\n/, '\n'))).toThrow(/does not parse/);
  });

  it('refuses a private key, whatever else the bundle holds', () => {
    expect(() => parseCaBundle('client-ca', ca.certPem + ca.keyPem)).toThrow(/private key/);
  });

  it('accepts a CRL, refuses a certificate or a damaged block as one', () => {
    expect(parseCaBundle('client-crl', crl)).toContain('-----BEGIN X509 CRL-----');
    expect(() => parseCaBundle('client-crl', ca.certPem)).toThrow(/no X509 CRL/);
    const damaged = crl.replace(/\n([A-Za-z0-9+/]{20})/, '\nAAAA$1');
    expect(() => parseCaBundle('client-crl', damaged)).toThrow(/not a DER CertificateList/);
  });
});

describe('the CA store', () => {
  it('reads the three directories, names files by content, reports each unusable key', () => {
    const store = caStoreFromEntries(
      new Map([
        ['client-cas/partners', ca.certPem],
        ['client-cas/leaf-only', leaf.certPem],
        ['client-crls/partners', crl],
        ['backend-cas/internal', encryptBundle(ca.certPem, 'k')],
        ['backend-cas/bad.name/x', ca.certPem],
        ['certs/site', leaf.bundlePem],
      ]),
      'k',
    );
    expect([...store.bundles.keys()].sort()).toEqual(['backend-ca/internal', 'client-ca/partners', 'client-crl/partners']);
    expect(store.bundles.get('client-ca/partners')?.fileName).toMatch(/^client-ca-partners-[0-9a-f]{16}\.pem$/);
    expect(store.bundles.get('backend-ca/internal')?.pem).toBe(ca.certPem);
    expect(store.rejected.map((r) => r.key)).toEqual(['client-cas/leaf-only', 'backend-cas/bad.name/x']);
    // An encrypted value without the key cannot be read: reported, never crashing the read.
    expect(caStoreFromEntries(new Map([['backend-cas/internal', encryptBundle(ca.certPem, 'k')]]), undefined).rejected[0]?.reason).toMatch(/not set/);
  });

  it('takes a name from etcd before the directory, and reports the one not used', () => {
    const fromDir = caStoreFromFiles(new Map([['client-cas/partners.pem', ca.certPem]]));
    expect(fromDir.bundles.get('client-ca/partners')?.source).toBe('client-cas/partners.pem');
    const merged = mergeCaStores([caStoreFromEntries(new Map([['client-cas/partners', ca.certPem]]), undefined), fromDir]);
    expect(merged.bundles.get('client-ca/partners')?.source).toBe('client-cas/partners');
    expect(merged.rejected).toEqual([{ key: 'client-cas/partners.pem', reason: expect.stringContaining('same name') }]);
  });

  it("a name etcd holds but cannot use is not taken from the directory: the operator's newer bundle was meant, the service closes", () => {
    const fromDir = caStoreFromFiles(new Map([['client-crls/partners.pem', crl]]));
    const broken = caStoreFromEntries(new Map([['client-crls/partners', 'not a CRL']]), undefined);
    const merged = mergeCaStores([broken, fromDir]);
    expect(merged.bundles.has('client-crl/partners')).toBe(false);
    expect(merged.rejected.map((r) => r.key)).toEqual(['client-crls/partners', 'client-crls/partners.pem']);
    expect(merged.rejected[1]?.reason).toMatch(/client-crls\/partners .*could not be used/);
  });
});

/** The services of these keys (under services/), resolved against `store`. */
function resolved(keys: Record<string, string>, store: CaStore) {
  const entries = new Map(Object.entries(keys).map(([k, v]) => [`services/${k}`, v]));
  const parsed = parseEntries(entries, { reservedPorts: [] });
  return { parsed, ...resolveCaBundles(parsed.state, store, '/state/certs') };
}
const svc = (state: { http: readonly HttpService[] }, name: string) => state.http.find((s) => s.name === name)!;

describe('resolveCaBundles', () => {
  const store = () =>
    caStoreFromEntries(
      new Map([
        ['client-cas/partners', ca.certPem],
        ['client-crls/partners', crl],
        ['backend-cas/internal', ca.certPem],
      ]),
      undefined,
    );
  const base = { 'web/virtual_hosts': 'a.test, *.w.test', 'web/upstreams/a': '10.0.0.1:80' };

  it('gives a checked service its files and one line per host; leaves other services the same objects', () => {
    const cas = store();
    const r = resolved({ ...base, 'web/client_ca': 'partners', 'web/client_crl': 'partners', 'other/virtual_hosts': 'b.test' }, cas);
    expect(r.rejected).toEqual([]);
    const files = svc(r.state, 'web').caFiles!;
    expect(files.clientCa).toMatch(/^\/state\/certs\/client-ca-partners-/);
    expect(files.clientCrl).toMatch(/^\/state\/certs\/client-crl-partners-/);
    expect(r.clientAuth.map((h) => [h.sni, h.verify])).toEqual([
      ['*.w.test', 'required'],
      ['a.test', 'required'],
    ]);
    expect(r.files.map((f) => f.file)).toEqual([files.clientCa, files.clientCrl]);
    expect(svc(r.state, 'other')).toBe(svc(r.parsed.state, 'other'));
    // The same inputs: the same result, and the same resolved service for the same parsed one.
    expect(resolveCaBundles(r.parsed.state, cas, '/state/certs')).toBe(resolveCaBundles(r.parsed.state, cas, '/state/certs'));
    const again = parseEntries(new Map([...Object.entries({ ...base, 'web/client_ca': 'partners' })].map(([k, v]) => [`services/${k}`, v])), {
      reservedPorts: [],
    });
    expect(resolveCaBundles(again.state, cas, '/d').state.http[0]?.caFiles?.closed).toBeUndefined();
  });

  it("/status lists the service's client_ca, client_verify, client_crl and backend_ca, and an invalid one as closed", () => {
    const keys = {
      ...base,
      'web/client_ca': 'partners',
      'web/client_verify': 'optional',
      'web/client_crl': 'partners',
      'web/backend_protocol': 'https',
      'web/backend_ca': 'internal',
    };
    expect(settingsReportOf(svc(resolved(keys, store()).state, 'web'))).toMatchObject({
      client_ca: 'partners',
      client_verify: 'optional',
      client_crl: 'partners',
      backend_ca: 'internal',
    });
    expect(settingsReportOf(svc(resolved({ ...base, 'web/client_ca': '../x' }, store()).state, 'web'))).toMatchObject({ client_ca: 'closed' });
  });

  it('from one state to the next of the same store, only the changed services are looked at: a service that starts or stops naming a bundle is seen', () => {
    const cas = store();
    const parse = (keys: Record<string, string>) =>
      parseEntries(new Map(Object.entries(keys).map(([k, v]) => [`services/${k}`, v])), { reservedPorts: [] }).state;
    const one = parse({ ...base, 'web/client_ca': 'partners', 'api/virtual_hosts': 'b.test', 'api/upstreams/a': '10.0.0.2:80' });
    const first = resolveCaBundles(one, cas, '/d');
    expect(first.clientAuth.map((h) => h.sni)).toEqual(['*.w.test', 'a.test']);
    // Another instance of api (a service naming no bundle): the same lines and rejections, web's resolved object kept.
    const api = parse({ 'api/virtual_hosts': 'b.test', 'api/upstreams/a': '10.0.0.3:80' }).http[0]!;
    const two = { http: [api, one.http[1]!], tcp: [] };
    const second = resolveCaBundles(two, cas, '/d');
    expect(second.clientAuth).toBe(first.clientAuth);
    expect(second.rejected).toBe(first.rejected);
    expect(svc(second.state, 'web')).toBe(svc(first.state, 'web'));
    expect(svc(second.state, 'api')).toBe(api);
    // api now names a bundle, web no longer does.
    const three = parse({ 'web/virtual_hosts': 'a.test', 'api/virtual_hosts': 'b.test', 'api/client_ca': 'nobody' });
    const third = resolveCaBundles(three, cas, '/d');
    expect(svc(third.state, 'web').caFiles).toBeUndefined();
    expect(svc(third.state, 'api').caFiles?.closed).toEqual({ status: 403 });
    expect(third.clientAuth).toEqual([]);
    // Back to no bundle at all: the parsed state itself.
    const four = parse({ 'web/virtual_hosts': 'a.test' });
    expect(resolveCaBundles(four, cas, '/d').state).toBe(four);
  });

  it('a state without any bundle name is returned as it is', () => {
    const r = resolved(base, store());
    expect(r.state).toBe(r.parsed.state);
  });

  it.each([
    ['a missing client_ca bundle', { 'web/client_ca': 'nobody' }, 'services/web/client_ca', /no usable bundle nobody/],
    ['a missing client_crl bundle', { 'web/client_ca': 'partners', 'web/client_crl': 'nobody' }, 'services/web/client_crl', /revoked certificates would pass/],
    ['client_verify without client_ca', { 'web/client_verify': 'optional' }, 'services/web/client_verify', /without client_ca/],
    ['client_crl without client_ca', { 'web/client_crl': 'partners' }, 'services/web/client_crl', /without client_ca/],
  ])('%s closes the service (403) with a rejection', (_what, keys, key, reason) => {
    const r = resolved({ ...base, ...keys }, store());
    expect(svc(r.state, 'web').caFiles?.closed).toEqual({ status: 403 });
    expect(r.rejected).toEqual([{ key, code: 'unusable_client_auth', reason: expect.stringMatching(reason) }]);
    expect(r.clientAuth).toEqual([]);
  });

  it('an invalid client_ca or client_verify value closes the service, reported once (by the parser)', () => {
    for (const keys of [{ 'web/client_ca': 'bad name' }, { 'web/client_ca': 'partners', 'web/client_verify': 'maybe' }] as Record<string, string>[]) {
      const r = resolved({ ...base, ...keys }, store());
      expect(r.parsed.rejected.map((x) => x.code)).toEqual(['invalid_value']);
      expect(svc(r.state, 'web').caFiles?.closed).toEqual({ status: 403 });
      expect(r.rejected).toEqual([]);
    }
  });

  it('no virtual_hosts, or a host another service checks otherwise, closes the later service', () => {
    const noHosts = resolved({ 'web/virtual_path': '/x', 'web/client_ca': 'partners' }, store());
    expect(noHosts.rejected[0]?.reason).toMatch(/no virtual_hosts/);
    const clash = resolved(
      {
        ...base,
        'web/client_ca': 'partners',
        'zzz/virtual_hosts': 'a.test',
        'zzz/virtual_path': '/z',
        'zzz/client_ca': 'partners',
        'zzz/client_verify': 'optional',
      },
      store(),
    );
    expect(svc(clash.state, 'web').caFiles?.closed).toBeUndefined();
    expect(svc(clash.state, 'zzz').caFiles?.closed).toEqual({ status: 403 });
    expect(clash.rejected[0]).toMatchObject({ key: 'services/zzz/client_ca', reason: expect.stringContaining('service web') });
    // The same check on the same host is no clash.
    const same = resolved(
      { ...base, 'web/client_ca': 'partners', 'zzz/virtual_hosts': 'a.test', 'zzz/virtual_path': '/z', 'zzz/client_ca': 'partners' },
      store(),
    );
    expect(same.rejected).toEqual([]);
  });

  it("a wildcard's service lists the names under it that another check owns (its backend refuses them); the same CA and CRL is not listed", () => {
    const r = resolved(
      {
        ...base,
        'web/client_ca': 'partners',
        'admin/virtual_hosts': 'admin.w.test, deep.x.w.test, admin.other.test',
        'admin/client_ca': 'partners',
        'admin/client_crl': 'partners',
        'sub/virtual_hosts': '*.sub.w.test',
        'sub/client_ca': 'partners',
        'sub/client_crl': 'partners',
        'twin/virtual_hosts': 'twin.w.test',
        'twin/client_ca': 'partners',
        'twin/client_verify': 'optional',
      },
      store(),
    );
    expect(r.rejected).toEqual([]);
    expect(svc(r.state, 'web').caFiles?.otherChecks).toEqual({ exact: ['admin.w.test', 'deep.x.w.test'], suffixes: ['.sub.w.test'] });
    expect(svc(r.state, 'admin').caFiles?.otherChecks).toBeUndefined();
    expect(svc(r.state, 'sub').caFiles?.otherChecks).toBeUndefined();
  });

  it('uncheckedUnderWildcards: exact names one label under a checked wildcard, not checked themselves', () => {
    const r = resolved(
      {
        ...base,
        'web/client_ca': 'partners',
        'www/virtual_hosts': 'www.w.test, deep.x.w.test, other.test, *.x.w.test',
        'adm/virtual_hosts': 'adm.w.test',
        'adm/client_ca': 'partners',
      },
      store(),
    );
    expect(uncheckedUnderWildcards(r.state, r.clientAuth)).toEqual(['www.w.test']);
    expect(
      uncheckedUnderWildcards(
        r.state,
        r.clientAuth.filter((c) => !c.sni.startsWith('*.')),
      ),
    ).toEqual([]);
  });

  it('backend_ca: its file for https; a missing bundle answers 503; ignored without https', () => {
    const https = { ...base, 'web/backend_protocol': 'https' };
    expect(svc(resolved({ ...https, 'web/backend_ca': 'internal' }, store()).state, 'web').caFiles?.backendCa).toMatch(/backend-ca-internal-/);
    const missing = resolved({ ...https, 'web/backend_ca': 'nobody' }, store());
    expect(svc(missing.state, 'web').caFiles?.closed).toEqual({ status: 503 });
    expect(missing.rejected[0]?.code).toBe('unusable_backend_ca');
    const plain = resolved({ ...base, 'web/backend_ca': 'nobody' }, store());
    expect(plain.state).toBe(plain.parsed.state);
  });
});

describe('withClientAuth', () => {
  const check = (sni: string): ClientAuthHost => ({ sni, verify: 'required', caFile: '/c/ca.pem' });

  it("moves a checked host off its certificate's line onto a line of its own; a host under a wildcard keeps the wildcard line", async () => {
    const other = await makeLeaf({ names: ['c.test'], issuer: ca });
    const set = selectCertificates([
      { source: { kind: 'env', ref: 'SSL_CERTS' }, pem: leaf.bundlePem },
      { source: { kind: 'env', ref: 'SSL_CERT_C' }, pem: other.bundlePem },
    ]);
    const out = withClientAuth(set, [check('a.test'), check('x.w.test'), check('c.test')], [{ file: '/c/ca.pem', pem: ca.certPem }]);
    expect(out.served.map((s) => s.sni)).toEqual([['*.w.test', 'b.test']]);
    expect(out.clientAuth?.map((c) => [c.sni, c.bundle.names.includes('c.test') ? 'c' : 'leaf'])).toEqual([
      ['a.test', 'leaf'],
      ['x.w.test', 'leaf'],
      ['c.test', 'c'],
    ]);
    expect(out.caFiles).toEqual([{ file: '/c/ca.pem', pem: ca.certPem }]);
  });

  it("the default certificate's line left without names excludes the moved ones, rather than taking all its names again", async () => {
    const only = await makeLeaf({ names: ['solo.test'], issuer: ca });
    const set = selectCertificates([{ source: { kind: 'env', ref: 'SSL_CERTS' }, pem: only.bundlePem }]);
    const out = withClientAuth(set, [check('solo.test')], []);
    expect(out.served.map((s) => s.sni)).toEqual([['!solo.test']]);
    expect(out.clientAuth?.[0]?.sni).toBe('solo.test');
  });

  it('an unchecked exact name one label under a checked wildcard gets a plain line with the certificate that covers it', async () => {
    const exact = await makeLeaf({ names: ['own.w.test'], issuer: ca });
    const set = selectCertificates([
      { source: { kind: 'env', ref: 'SSL_CERTS' }, pem: leaf.bundlePem },
      { source: { kind: 'env', ref: 'SSL_CERT_OWN' }, pem: exact.bundlePem },
    ]);
    const out = withClientAuth(set, [check('*.w.test')], [], ['own.w.test', 'www.w.test']);
    // own.w.test keeps its own certificate's line; www.w.test gets the wildcard's certificate without the check.
    expect(out.served.map((s) => [s.sni, s.bundle.names.includes('own.w.test') ? 'own' : 'leaf'])).toEqual([
      [['a.test', 'b.test'], 'leaf'],
      [['own.w.test'], 'own'],
      [['www.w.test'], 'leaf'],
    ]);
    expect(out.clientAuth?.map((c) => c.sni)).toEqual(['*.w.test']);
  });

  it('resumption is left on while every checked host trusts the same CA and CRL', () => {
    const set = selectCertificates([{ source: { kind: 'env', ref: 'SSL_CERTS' }, pem: leaf.bundlePem }]);
    expect(resumptionCrossesChecks(withClientAuth(set, [check('a.test'), { ...check('b.test'), verify: 'optional' }], []))).toBe(false);
    expect(resumptionCrossesChecks(withClientAuth(set, [check('a.test'), { ...check('b.test'), caFile: '/c/other.pem' }], []))).toBe(true);
    expect(resumptionCrossesChecks(withClientAuth(set, [check('a.test'), { ...check('b.test'), crlFile: '/c/crl.pem' }], []))).toBe(true);
    expect(resumptionCrossesChecks(set)).toBe(false);
  });

  it('is the same set when nothing is checked, and carries no lines without a served certificate', () => {
    const set = selectCertificates([{ source: { kind: 'env', ref: 'SSL_CERTS' }, pem: leaf.bundlePem }]);
    expect(withClientAuth(set, [], [])).toBe(set);
    const none = withClientAuth(selectCertificates([]), [check('a.test')], []);
    expect(none.clientAuth).toBeUndefined();
  });
});
