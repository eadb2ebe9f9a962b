import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseEntries } from '../../src/model/parse.js';
import { createRenderer, TEMPLATES_DIR } from '../../src/render/render.js';
import { renderSettingsIn } from '../support/render-settings.js';
import type { RenderSettings } from '../../src/render/render-settings.js';
import { makeLeaf, removeCertFiles } from '../support/certs.js';

// The load-balancer-wide features of the Kontena load balancer (PROXY protocol, health URI,
// statistics page, tunnel timeout) and per-service basic auth, as rendered config lines, and
// HAProxy's own verdict on the result. What clients see is in test/integration.

const dir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-render-features-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  removeCertFiles();
});

const base: RenderSettings = renderSettingsIn(dir);
const all: RenderSettings = {
  ...base,
  acceptProxy: true,
  tunnelTimeout: '90m',
  healthUri: '/lb-health',
  stats: { port: 1000, password: 'pa$$:w0rd!' },
};
const entries = {
  'services/web/virtual_hosts': 'www.foo.com',
  'services/web/upstreams/a': '10.0.0.1:80',
  'services/web/basic_auth_secrets': 'user alice insecure-password s3cret\nuser bob password $1$Ma9tw2hT$8YpAqWayq7afY9JYpLm2b1',
  'services/closed/virtual_path': '/closed',
  'services/closed/basic_auth_secrets': 'alice s3cret',
  'services/open/virtual_path': '/open',
  'tcp-services/db/external_port': '5432',
  'tcp-services/db/upstreams/a': '10.0.0.2:5432',
};
const render = createRenderer();
const state = parseEntries(new Map(Object.entries(entries)), { reservedPorts: [8080] }).state;
const backend = (text: string, name: string) => /\nbackend [^\n]+\n(?: {4}[^\n]*\n)*/g.exec(text.slice(text.indexOf(`\nbackend ${name}\n`)))?.[0] ?? '';

describe('render: load balancer features', () => {
  it('turns every feature off by default', () => {
    const text = render(state, base);
    expect(text).not.toMatch(/accept-proxy|monitor-uri|listen stats|stats auth/);
    expect(text).toContain('    timeout tunnel 1h\n');
  });

  it('accepts the PROXY protocol on the HTTP, HTTPS and TCP listeners', () => {
    const tls = {
      port: 8443,
      crtList: path.join(dir, 'crt-list'),
      http2: true,
      minVersion: 'TLSv1.2' as const,
      ciphers: 'ECDHE-RSA-AES128-GCM-SHA256',
      defaultCert: 'x',
    };
    const text = render(state, { ...all, tls });
    expect(text).toContain('    bind *:8080 accept-proxy\n');
    expect(text).toMatch(/\n {4}bind \*:8443 ssl crt-list .* accept-proxy\n/);
    expect(text).toContain('    bind *:5432 accept-proxy\n');
    // Not the statistics page: operators reach it directly, not through the cloud load balancer.
    expect(text).toContain('    bind *:1000\n');
  });

  it('renders the tunnel timeout, the health URI and the statistics page', () => {
    const text = render(state, all);
    expect(text).toContain('    timeout tunnel 90m\n');
    expect(text).toContain('    monitor-uri /lb-health\n');
    expect(text).toContain('    stats auth stats:pa$$:w0rd!\n');
  });

  it('guards a service with its userlist, closes one with unusable secrets, leaves others open', () => {
    const text = render(state, all);
    expect(backend(text, 'http-web')).toContain('    http-request auth realm web unless { http_auth(auth-web) }\n');
    expect(text).toContain('userlist auth-web\n    user alice insecure-password s3cret\n    user bob password $1$Ma9tw2hT$8YpAqWayq7afY9JYpLm2b1\n');
    expect(backend(text, 'http-closed')).toMatch(/\n {4}http-request auth realm closed\n/);
    expect(text).not.toContain('userlist auth-closed');
    expect(backend(text, 'http-open')).toMatch(/^\nbackend http-open\n/);
    expect(backend(text, 'http-open')).not.toContain('auth');
  });

  it('keeps every character config.ts and the model let through a password intact for HAProxy', async () => {
    const punctuation = '!$%&()*+,-./:;<=>?@[]^_`{|}~';
    const withAll = parseEntries(
      new Map(
        Object.entries({
          'services/web/virtual_hosts': 'www.foo.com',
          'services/web/basic_auth_secrets': `user alice insecure-password a${punctuation}z`,
        }),
      ),
      { reservedPorts: [8080] },
    ).state;
    writeFileSync(all.challengeMap, '');
    const file = path.join(dir, 'punctuation.cfg');
    writeFileSync(file, render(withAll, { ...all, stats: { port: 1000, password: `s${punctuation}z` } }));
    const result = await execa('haproxy', ['-c', '-f', file], { reject: false, all: true });
    expect(result.all).toContain('Configuration file is valid');
    expect(result.all).not.toMatch(/parsing \[/); // no warning about any line
  });

  it("writes SYSLOG_TARGET as the global log line from its typed fields; the access log's stdout line is the frontends'", async () => {
    const cases: [string, string][] = [
      ['127.0.0.1', '    log 127.0.0.1:514 local1 info\n'],
      ['udp@[::1]:1514 local0', '    log udp@[::1]:1514 local0\n'],
      ['2001:db8::1:5514 daemon notice err', '    log [2001:db8::1]:5514 daemon notice err\n'],
      ['tcp@localhost:6514 len 4096 format rfc5424 local7 info', '    log tcp@localhost:6514 len 4096 format rfc5424 local7 info\n'],
    ];
    writeFileSync(all.challengeMap, '');
    for (const [raw, line] of cases) {
      const syslog = loadConfig({ ETCD_PATH: '/x', SYSLOG_TARGET: raw }, { checkFilesystem: false }).syslogTarget;
      const text = render(state, { ...base, syslog });
      expect(text).toMatch(/\nglobal\n( {4}#[^\n]*\n)* {4}# SYSLOG_TARGET[^\n]*\n {4}log /);
      expect(text).toContain('\nfrontend http\n    log stdout len 4096 format raw local0 info\n');
      expect(text).toContain(line);
      const file = path.join(dir, 'syslog.cfg');
      writeFileSync(file, text);
      const result = await execa('haproxy', ['-c', '-f', file], { reject: false, all: true });
      expect(result.all, raw).toContain('Configuration file is valid');
    }
    expect(render(state, base)).not.toContain('SYSLOG_TARGET');
  });

  it('writes KONTENA_LB_SSL_MIN_VERSION and its cipher list on the HTTPS bind line, and HAProxy accepts them', async () => {
    writeFileSync(all.challengeMap, '');
    const leaf = await makeLeaf({ names: ['tls.test'] });
    writeFileSync(path.join(dir, 'tls.pem'), leaf.bundlePem);
    writeFileSync(path.join(dir, 'crt-list'), `${path.join(dir, 'tls.pem')}\n`);
    for (const version of ['TLSv1.0', 'TLSv1.3'] as const) {
      const config = loadConfig({ ETCD_PATH: '/x', KONTENA_LB_SSL_MIN_VERSION: version }, { checkFilesystem: false });
      const tls = {
        port: 8443,
        crtList: path.join(dir, 'crt-list'),
        http2: true,
        minVersion: config.sslMinVersion,
        ciphers: config.sslCiphers,
        defaultCert: 'x',
      };
      const text = render(state, { ...base, tls });
      expect(text).toContain(` ssl-min-ver ${version} ciphers ${config.sslCiphers}\n`);
      const file = path.join(dir, 'tls.cfg');
      writeFileSync(file, text);
      const result = await execa('haproxy', ['-c', '-f', file], { reject: false, all: true });
      expect(result.all, version).toContain('Configuration file is valid');
    }
  });

  it('produces a config HAProxy accepts with every feature on', async () => {
    writeFileSync(all.challengeMap, '');
    const file = path.join(dir, 'haproxy.cfg');
    writeFileSync(file, render(state, all));
    const result = await execa('haproxy', ['-c', '-f', file], { reject: false, all: true });
    expect(result.all).toContain('Configuration file is valid');
    expect(result.exitCode).toBe(0);
  });
});

describe('templates in strict mode', () => {
  it('refuse to render a value the view does not have, instead of printing nothing', () => {
    const templates = path.join(dir, 'strict-templates');
    mkdirSync(templates);
    for (const name of readdirSync(TEMPLATES_DIR).filter((n) => n.endsWith('.hbs'))) {
      writeFileSync(path.join(templates, name), readFileSync(path.join(TEMPLATES_DIR, name), 'utf8'));
    }
    // As if a view field were renamed while the template still prints the old name.
    writeFileSync(
      path.join(templates, 'http-backend.hbs'),
      readFileSync(path.join(TEMPLATES_DIR, 'http-backend.hbs'), 'utf8').replace('balance {{balance}}', 'balance {{balanceAlgorithm}}'),
    );
    const render = createRenderer(templates);
    const state = parseEntries(new Map([['services/web/upstreams/a', '10.0.0.1:80']]), { reservedPorts: [] }).state;
    expect(() => render(state, base)).toThrow(/"balanceAlgorithm" not defined/);
  });
});
