import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { CertFiles } from '../../src/haproxy/cert-files.js';
import { HaproxyRuntime } from '../../src/haproxy/runtime.js';
import { validateConfigFile } from '../../src/haproxy/validate.js';
import { desiredFromEntries } from '../../src/pipeline/from-entries.js';
import { parseOptionsOf, settingsBaseOf, statePaths } from '../../src/pipeline/settings-of.js';
import { createCrtListRenderer, createRenderer } from '../../src/render/render.js';
import { makeCa, makeCrl, makeLeaf, removeCertFiles, type CertAuthority, type LeafCert } from '../support/certs.js';
import { envCert } from '../support/tls.js';

// What `edgelb check` does (pipeline/from-entries.ts, then the files and haproxy -c) for services with
// client_ca, client_crl, client_verify and backend_ca: HAProxy 2.6 accepts the crt-list lines with
// per-SNI verify options, a default certificate's line of negative filters only, and the closed states.

let ca: CertAuthority;
let solo: LeafCert;
let crl: string;
let stateDir: string;

beforeAll(async () => {
  ca = await makeCa('haproxy -c CA');
  solo = await makeLeaf({ names: ['solo.test'] });
  crl = await makeCrl(ca, []);
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-mtls-check-'));
});
afterAll(() => {
  removeCertFiles();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('client-certificate lines through haproxy -c', () => {
  it('checked hosts (required with a CRL, optional), backend_ca with and without its bundle: a valid config and crt-list', async () => {
    const config = loadConfig(
      { ETCD_PATH: '/x', KONTENA_LB_STATE_DIR: stateDir, KONTENA_LB_HTTP_PORT: '18081', KONTENA_LB_HTTPS_PORT: '18444' },
      { checkFilesystem: false },
    );
    const entries = new Map(
      Object.entries({
        'client-cas/partners': ca.certPem,
        'client-crls/partners': crl,
        'backend-cas/internal': ca.certPem,
        'services/solo/virtual_hosts': 'solo.test',
        'services/solo/client_ca': 'partners',
        'services/solo/client_crl': 'partners',
        'services/solo/upstreams/a': '127.0.0.1:1',
        'services/uncovered/virtual_hosts': 'other.test, *.wild.test',
        'services/uncovered/client_ca': 'partners',
        'services/uncovered/client_verify': 'optional',
        'services/uncovered/upstreams/a': '127.0.0.1:2',
        'services/www/virtual_hosts': 'www.wild.test',
        'services/www/upstreams/a': '127.0.0.1:6',
        'services/admin/virtual_hosts': 'admin.wild.test',
        'services/admin/client_ca': 'partners',
        'services/admin/client_crl': 'partners',
        'services/admin/upstreams/a': '127.0.0.1:5',
        'services/app/virtual_hosts': 'app.test',
        'services/app/backend_protocol': 'https',
        'services/app/backend_ca': 'internal',
        'services/app/upstreams/a': '127.0.0.1:3',
        'services/lost/virtual_hosts': 'lost.test',
        'services/lost/backend_protocol': 'https',
        'services/lost/backend_ca': 'nobody',
        'services/lost/upstreams/a': '127.0.0.1:4',
      }),
    );
    const base = settingsBaseOf(config, stateDir);
    const { desired } = desiredFromEntries(
      {
        entries,
        parseOptions: parseOptionsOf(config),
        vaultKey: undefined,
        defaultCert: undefined,
        offers: [{ kind: 'env', certs: [envCert('SSL_CERTS', solo.bundlePem)], rejected: [] }],
      },
      base,
    );
    expect(desired.rejected.map((r) => [r.key, r.code])).toEqual([['services/lost/backend_ca', 'unusable_backend_ca']]);
    const paths = statePaths(stateDir);
    writeFileSync(paths.challengeMap, '');
    writeFileSync(paths.canaryMap, '');
    const certFiles = new CertFiles({
      dir: paths.certsDir,
      crtList: paths.crtList,
      renderCrtList: createCrtListRenderer(),
      runtime: new HaproxyRuntime(paths.adminSocket),
    });
    await certFiles.write(desired.certs);
    const crtList = readFileSync(paths.crtList, 'utf8').trim().split('\n');
    // The default certificate covered only the checked host: its own line excludes it.
    expect(crtList[0]).toMatch(/\.pem !solo\.test$/);
    expect(crtList.slice(1).map((line) => line.replace(/\/\S+\//g, ''))).toEqual([
      // An unchecked host under the checked wildcard: a plain line, no client certificate asked.
      expect.stringMatching(/^env-\S+\.pem www\.wild\.test$/),
      expect.stringMatching(/^env-\S+\.pem \[verify optional ca-file client-ca-partners-[0-9a-f]{16}\.pem\] \*\.wild\.test$/),
      expect.stringMatching(/^env-\S+\.pem \[verify required ca-file client-ca-partners-\S+\.pem crl-file client-crl-partners-\S+\.pem\] admin\.wild\.test$/),
      expect.stringMatching(/^env-\S+\.pem \[verify optional ca-file client-ca-partners-\S+\.pem\] other\.test$/),
      expect.stringMatching(/^env-\S+\.pem \[verify required ca-file client-ca-partners-\S+\.pem crl-file client-crl-partners-\S+\.pem\] solo\.test$/),
    ]);
    const text = createRenderer()(desired.state, desired.settings);
    expect(text).toMatch(/server a 127\.0\.0\.1:3 .* ssl verify required ca-file \S+backend-ca-internal-/);
    expect(text).toMatch(/server a 127\.0\.0\.1:4 .* ssl verify required ca-file @system-ca/);
    expect(text).toContain('http-request deny deny_status 503');
    // Two checks (a CRL on one): no session resumption; the wildcard's backend refuses admin's name.
    expect(text).toContain('tune.ssl.cachesize 0');
    expect(text).toMatch(/ssl crt-list \S+ no-tls-tickets /);
    expect(text).toContain('acl other_client_check ssl_fc_sni,lower -m str admin.wild.test');
    const file = path.join(stateDir, 'haproxy.cfg');
    writeFileSync(file, text);
    expect(await validateConfigFile(config.haproxyBin, file)).toEqual({ ok: true, errors: [] });
  });
});
