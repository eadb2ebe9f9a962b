import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parseEntries } from '../../src/model/parse.js';
import { createRenderer, TEMPLATES_DIR } from '../../src/render/render.js';
import type { RenderSettings } from '../../src/render/render-settings.js';
import { buildView, regexLiteral } from '../../src/render/view.js';

const fixtures = path.join(import.meta.dirname, '../fixtures/render');
const settings: RenderSettings = {
  httpPort: 8080,
  adminSocket: '/var/lib/edgelb/haproxy.sock',
  errorsDir: '/usr/share/edgelb/errors',
  challengeMap: '/var/lib/edgelb/acme-challenges.map',
  canaryMap: '/var/lib/edgelb/canary.map',
  globalSettings: ['maxconn 20000'],
  defaultsSettings: ['option http-ignore-probes'],
  hardStopAfter: '1h',
  serverStateFile: '/var/lib/edgelb/server-state',
  peerSocket: '/var/lib/edgelb/peers.sock',
  checkInterval: '2000ms',
  checkFastInterval: '250ms',
  acceptProxy: false,
  tunnelTimeout: '1h',
  accessLog: 'text',
};
const render = createRenderer();
const stateOf = (entries: Record<string, string>) => parseEntries(new Map(Object.entries(entries)), { reservedPorts: [8080] }).state;

describe('render', () => {
  it('renders the fixture entries to the checked-in config', () => {
    const entries = JSON.parse(readFileSync(path.join(fixtures, 'kontena.entries.json'), 'utf8')) as Record<string, string>;
    const text = render(stateOf(entries), settings);
    const expectedFile = path.join(fixtures, 'kontena.expected.cfg');
    if (process.env.UPDATE_FIXTURES) writeFileSync(expectedFile, text);
    expect(text).toBe(readFileSync(expectedFile, 'utf8'));
  });

  it('renders HTTPS, redirects and HSTS when certificates are served', () => {
    const entries = JSON.parse(readFileSync(path.join(fixtures, 'kontena.entries.json'), 'utf8')) as Record<string, string>;
    const tlsEntries = { ...entries, 'services/web/ssl_redirect': 'true', 'services/web/hsts': '31536000', 'services/api/ssl_redirect': 'true' };
    const tls = {
      port: 443,
      crtList: '/var/lib/edgelb/certs/crt-list',
      http2: true,
      minVersion: 'TLSv1.2' as const,
      ciphers: 'ECDHE-RSA-AES128-GCM-SHA256',
      defaultCert: 'vault-web-1234',
    };
    const text = render(stateOf(tlsEntries), { ...settings, tls });
    const expectedFile = path.join(fixtures, 'kontena-tls.expected.cfg');
    if (process.env.UPDATE_FIXTURES) writeFileSync(expectedFile, text);
    expect(text).toBe(readFileSync(expectedFile, 'utf8'));
    const offPort = render(stateOf(tlsEntries), { ...settings, tls: { ...tls, port: 8443, http2: false } });
    expect(offPort).toContain('alpn http/1.1 proto h1 ssl-min-ver');
    expect(offPort).toContain('redirect location https://%[var(txn.host)]:8443%[capture.req.uri] code 301');
  });

  it('leaves redirects out while no certificate is served', () => {
    const text = render(stateOf({ 'services/a/virtual_path': '/a', 'services/a/ssl_redirect': 'true', 'services/a/hsts': '100' }), settings);
    expect(text).not.toMatch(/redirect|Strict-Transport|ssl crt-list/);
  });

  it('is deterministic and independent of key order', () => {
    const a = stateOf({ 'services/b/virtual_path': '/b', 'services/a/virtual_path': '/a' });
    const b = stateOf({ 'services/a/virtual_path': '/a', 'services/b/virtual_path': '/b' });
    expect(render(a, settings)).toBe(render(b, settings));
  });

  it('orders routes: host+path, then host, then path; exact before wildcard; longer paths first; then by name', () => {
    const view = buildView(
      stateOf({
        'services/z-path-short/virtual_path': '/test',
        'services/y-path-long/virtual_path': '/test/foo',
        'services/x-root/virtual_path': '/',
        'services/b-host/virtual_hosts': 'a.com',
        'services/a-host/virtual_hosts': 'a.com',
        'services/c-wild/virtual_hosts': '*.a.com',
        'services/d-both/virtual_hosts': 'a.com',
        'services/d-both/virtual_path': '/x',
      }),
      settings,
    );
    expect(view.rules.map((r) => `${r.backend} ${r.conditions.join(' ')}`)).toEqual([
      'http-d-both host_d-both path0_d-both',
      'http-a-host host_a-host',
      'http-b-host host_b-host',
      'http-c-wild hostwild_c-wild',
      'http-y-path-long path0_y-path-long',
      'http-z-path-short path0_z-path-short',
      'http-x-root path0_x-root',
    ]);
  });

  it('leaves a service without hosts or paths unrouted but keeps its backend', () => {
    const view = buildView(stateOf({ 'services/lonely/upstreams/a': '10.0.0.1:80' }), settings);
    expect(view.rules).toEqual([]);
    expect(view.httpBackends.map((b) => b.name)).toEqual(['http-lonely']);
  });

  it('does not strip the virtual path when keep_virtual_path is true', () => {
    const text = render(stateOf({ 'services/a/virtual_path': '/a', 'services/a/keep_virtual_path': 'true' }), settings);
    expect(text).not.toContain('replace-path');
  });

  it('produces configs that HAProxy accepts', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-render-'));
    try {
      const entries = JSON.parse(readFileSync(path.join(fixtures, 'kontena.entries.json'), 'utf8')) as Record<string, string>;
      const file = path.join(dir, 'haproxy.cfg');
      const challengeMap = path.join(dir, 'acme.map');
      writeFileSync(challengeMap, '');
      writeFileSync(
        file,
        render(stateOf(entries), { ...settings, challengeMap, adminSocket: path.join(dir, 's.sock'), errorsDir: path.join(TEMPLATES_DIR, 'errors') }),
      );
      const result = await execa('haproxy', ['-c', '-f', file], { reject: false, all: true });
      expect(result.all).toContain('Configuration file is valid');
      expect(result.exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('regexLiteral', () => {
  it('brackets every regex metacharacter and leaves the rest alone', () => {
    expect(regexLiteral('/v1.0/a+b*c$')).toBe('/v1[.]0/a[+]b[*]c[$]');
    expect(new RegExp(`^${regexLiteral('/v1.0')}$`).test('/v1x0')).toBe(false);
    expect(new RegExp(`^${regexLiteral('/v1.0')}$`).test('/v1.0')).toBe(true);
  });
});
