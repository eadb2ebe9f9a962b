import { describe, expect, it } from 'vitest';
import type { AcmeDomainState } from '../../src/acme/state.js';
import { failedState } from '../../src/acme/schedule.js';
import { pendingState } from '../../src/acme/state.js';
import { CertWarningReports } from '../../src/controller/cert-warning-reports.js';
import { loadConfig } from '../../src/config.js';
import { certificateWarnings, type CertWarningInputs } from '../../src/tls/cert-warnings.js';
import type { CertBundle } from '../../src/tls/bundle.js';
import type { CertSet, ServedCert } from '../../src/tls/store.js';
import { renderSettingsIn } from '../support/render-settings.js';
import { createSectionRenderer } from '../../src/render/render.js';
import { capturingLogger } from '../support/log-capture.js';

// Issue 16: certificate warnings (tls/cert-warnings.ts) at fixed clocks. What /status, the log
// and `edgelb cert list` show is in test/integration/cert-warnings.test.ts.

const NOW = new Date('2026-12-02T12:00:00Z');
const DAY = 86_400_000;

function served(id: string, sni: string[], daysLeft: number): ServedCert {
  const bundle = { id, names: sni, notAfter: new Date(NOW.getTime() + daysLeft * DAY), subject: `CN=${sni[0]}` } as unknown as CertBundle;
  return { bundle, sni, expired: daysLeft <= 0 };
}

const certSet = (...certs: ServedCert[]): CertSet => ({ served: certs, rejected: [], warnings: [], all: certs.map((c) => c.bundle) });
const host = (name: string) => (name.startsWith('*.') ? { name: name.slice(2), wildcard: true } : { name, wildcard: false });
const inputs = (over: Partial<CertWarningInputs>): CertWarningInputs => ({ certs: certSet(), hosts: [], acme: [], now: NOW, warnDays: 21, ...over });

describe('certificate warnings', () => {
  it('warns of a served certificate within the warning days, since the day it entered them, and of an expired one', () => {
    const warnings = certificateWarnings(
      inputs({ certs: certSet(served('env-a', ['a.test'], 2), served('env-b', ['b.test'], 21.5), served('env-c', ['c.test'], -1)) }),
    );
    expect(warnings).toEqual([
      { kind: 'expiring', subject: 'env-a', detail: 'expires 2026-12-04T12:00:00.000Z (in 2 days), served for a.test', since: '2026-11-13T12:00:00.000Z' },
      { kind: 'expiring', subject: 'env-c', detail: 'expired 2026-12-01T12:00:00.000Z, still served for c.test', since: '2026-12-01T12:00:00.000Z' },
    ]);
    expect(certificateWarnings(inputs({ certs: certSet(served('env-b', ['b.test'], 21.5)), warnDays: 22 }))).toHaveLength(1);
  });

  it('warns of ACME renewal failing for longer than a day, from its first failure in a row', () => {
    const backoff = { baseMs: 60_000, capMs: 3600_000 };
    let state: AcmeDomainState | undefined;
    for (const hoursAgo of [30, 20, 1]) {
      state = failedState(state, 'x.test', { message: 'connection refused' }, new Date(NOW.getTime() - hoursAgo * 3600_000), backoff).state;
    }
    expect(state!.failingSince).toBe('2026-12-01T06:00:00.000Z');
    expect(certificateWarnings(inputs({ acme: [state!] }))).toEqual([
      {
        kind: 'renewal_failing',
        subject: 'x.test',
        detail: 'ACME has failed 3 times in a row; last error: connection refused',
        since: '2026-12-01T06:00:00.000Z',
      },
    ]);
    // 23 hours: not yet.
    expect(certificateWarnings(inputs({ acme: [state!], now: new Date(Date.parse(state!.failingSince!) + 23 * 3600_000) }))).toEqual([]);
    // A state written before failingSince existed: from its last error.
    const { failingSince: _, ...older } = state!;
    expect(certificateWarnings(inputs({ acme: [older] }))).toEqual([]);
    expect(certificateWarnings(inputs({ acme: [{ ...older, status: 'valid' }], now: new Date(NOW.getTime() + 3 * DAY) }))).toEqual([]);
  });

  it('logs a served certificate once as it enters the warning days, and again once when it expires', () => {
    const { logger, logs } = capturingLogger();
    let now = NOW;
    const reports = new CertWarningReports(logger, 21, () => now);
    try {
      const certs = certSet(served('env-a', ['a.test'], 2));
      const state = { http: [], tcp: [] };
      for (const hours of [0, 1, 47, 49, 50]) {
        now = new Date(NOW.getTime() + hours * 3600_000);
        reports.update(certs, { ...state }, []);
      }
      expect(logs.filter((l) => l.event === 'certificate.attention').map((l) => String(l.detail).split(' ')[0])).toEqual(['expires', 'expired']);
    } finally {
      reports.stop();
    }
  });

  it('leaves out the failing state of a domain ACME is no longer asked for (its service removed or renamed)', () => {
    const backoff = { baseMs: 60_000, capMs: 3600_000 };
    const failing = (domain: string) => failedState(undefined, domain, { message: 'NXDOMAIN' }, new Date(NOW.getTime() - 30 * 3600_000), backoff).state;
    const acme = [failing('ww.test'), failing('www.test')];
    const subjects = (over: Partial<CertWarningInputs>) => certificateWarnings(inputs({ acme, ...over })).map((w) => w.subject);
    expect(subjects({ acmeDomains: ['www.test'] })).toEqual(['www.test']);
    // Not known (ACME not started, or off): every state counts.
    expect(subjects({})).toEqual(['ww.test', 'www.test']);
    const { logger, logs } = capturingLogger();
    const reports = new CertWarningReports(logger, 21, () => NOW);
    try {
      reports.update(certSet(), { http: [], tcp: [] }, acme, ['www.test']);
      expect(reports.warnings.map((w) => w.subject)).toEqual(['www.test']);
      expect(logs.filter((l) => l.event === 'certificate.attention').map((l) => l.subject)).toEqual(['www.test']);
    } finally {
      reports.stop();
    }
  });

  it('keeps warning of a failing renewal while its next attempt runs (the state pending again), and logs it once', () => {
    const backoff = { baseMs: 60_000, capMs: 3600_000 };
    const failed = failedState(undefined, 'x.test', { message: 'no TXT record' }, new Date(NOW.getTime() - 30 * 3600_000), backoff).state;
    const retrying = pendingState(failed, 'x.test', { orderUrl: 'https://ca/order/2', startedAt: NOW.toISOString(), tokens: [], by: 'lb-a' }, NOW);
    expect(certificateWarnings(inputs({ acme: [retrying] })).map((w) => [w.kind, w.subject, w.since])).toEqual([
      ['renewal_failing', 'x.test', failed.failingSince],
    ]);
    const { logger, logs } = capturingLogger();
    const reports = new CertWarningReports(logger, 21, () => NOW);
    try {
      const state = { http: [], tcp: [] };
      let again = failed;
      for (let attempt = 0; attempt < 3; attempt++) {
        reports.update(certSet(), state, [again]);
        again = pendingState(again, 'x.test', { orderUrl: `https://ca/order/${attempt}`, startedAt: NOW.toISOString(), tokens: [], by: 'lb-a' }, NOW);
        reports.update(certSet(), state, [again]);
        again = failedState(again, 'x.test', { message: 'no TXT record' }, NOW, backoff).state;
      }
      expect(logs.filter((l) => l.event === 'certificate.attention')).toHaveLength(1);
      expect(reports.warnings.map((w) => w.kind)).toEqual(['renewal_failing']);
    } finally {
      reports.stop();
    }
  });

  it('warns of a host no served certificate covers (wildcards one label deep), only while HTTPS is served', () => {
    const certs = certSet(served('env-main', ['www.test', 'api.test'], 90), served('env-wild', ['*.apps.test'], 90));
    const hosts = ['www.test', 'x.apps.test', 'a.b.apps.test', '*.apps.test', '*.other.test', 'nocert.test', 'nocert.test'].map(host);
    expect(certificateWarnings(inputs({ certs, hosts })).map((w) => [w.kind, w.subject])).toEqual([
      ['default_only', '*.other.test'],
      ['default_only', 'a.b.apps.test'],
      ['default_only', 'nocert.test'],
    ]);
    expect(certificateWarnings(inputs({ certs, hosts: [host('nocert.test')] }))[0]!.detail).toBe(
      'no served certificate covers nocert.test: HTTPS clients get the default certificate env-main',
    );
    expect(certificateWarnings(inputs({ hosts }))).toEqual([]);
  });
});

describe('KONTENA_LB_CERT_WARN_DAYS and KONTENA_LB_SSL_CIPHERSUITES', () => {
  const load = (env: Record<string, string>) => loadConfig({ ETCD_PATH: '/lb', KONTENA_LB_STATE_DIR: '/tmp/x', ...env }, { checkFilesystem: false });

  it('takes 21 days by default and 1–365', () => {
    expect(load({}).certWarnDays).toBe(21);
    expect(load({ KONTENA_LB_CERT_WARN_DAYS: '7' }).certWarnDays).toBe(7);
    for (const bad of ['0', '366', 'soon', '-1'])
      expect(() => load({ KONTENA_LB_CERT_WARN_DAYS: bad })).toThrow(/KONTENA_LB_CERT_WARN_DAYS must be a number of days between 1 and 365/);
  });

  it('renders the TLS 1.3 suites on the HTTPS bind line when set, and refuses what is not a suite list', () => {
    expect(load({}).sslCiphersuites).toBeUndefined();
    expect(load({ KONTENA_LB_SSL_CIPHERSUITES: 'TLS_AES_128_CCM_8_SHA256:TLS_CHACHA20_POLY1305_SHA256' }).sslCiphersuites).toBe(
      'TLS_AES_128_CCM_8_SHA256:TLS_CHACHA20_POLY1305_SHA256',
    );
    for (const bad of [
      'ECDHE-RSA-AES128-GCM-SHA256',
      'TLS_AES_999',
      'TLS_AES_128_GCM_SHA256:TLS_AES_128_GCM_SHA257',
      'TLS_AES_128_GCM_SHA256 ssl',
      'TLS_AES_128_GCM_SHA256:',
      'TLS_A\nbind :1',
    ]) {
      expect(() => load({ KONTENA_LB_SSL_CIPHERSUITES: bad })).toThrow(/KONTENA_LB_SSL_CIPHERSUITES must be TLS 1.3 suites/);
    }
    const tls = { port: 443, crtList: '/s/crt-list', http2: true, minVersion: 'TLSv1.2' as const, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', defaultCert: 'a' };
    const render = createSectionRenderer();
    const state = { http: [], tcp: [] };
    const withSuites = render(state, { ...renderSettingsIn('/s'), tls: { ...tls, ciphersuites: 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256' } }).text;
    expect(withSuites).toMatch(
      /^ {4}bind \*:443 ssl .* ciphers ECDHE-RSA-AES128-GCM-SHA256 ciphersuites TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256$/m,
    );
    expect(render(state, { ...renderSettingsIn('/s'), tls }).text).not.toContain('ciphersuites');
  });
});
