import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/admin/status.js';
import { registerCertCommands } from '../../src/cli/cert.js';
import type { Backend } from '../support/backend.js';
import { makeLeaf, removeCertFiles, type LeafCert } from '../support/certs.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { etcdConnection } from '../support/etcd-connection.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { closeBackends, putKeys, settled, startBackends, startLbWith } from '../support/lb.js';
import { waitFor } from '../support/wait.js';

// Issue 16: certificate trouble seen coming, through a real controller and HAProxy: a certificate
// valid 2 days (made with openssl here) with KONTENA_LB_CERT_WARN_DAYS=21 is `expiring`, a host no
// certificate covers is `default_only`, an ACME domain failing for two days is `renewal_failing`;
// in /status, once each in the log, and in `edgelb cert list`.

let etcd: EtcdServer;
let lb: TestEdgelb;
let b: Record<'web', Backend>;
let short: LeafCert;

const TWO_DAYS_AGO = new Date(Date.now() - 2 * 86_400_000).toISOString();
const failingState = JSON.stringify({
  domain: 'acme.test',
  status: 'failing',
  failures: 6,
  failingSince: TWO_DAYS_AGO,
  lastError: { at: new Date().toISOString(), message: 'DNS problem: NXDOMAIN looking up A for acme.test' },
  updatedAt: new Date().toISOString(),
});

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web');
  short = await makeLeaf({ names: ['short.test'], days: 2 });
  lb = await startLbWith(
    etcd,
    {
      'services/web/virtual_hosts': 'short.test,nocert.test',
      'services/web/upstreams/one': b.web.address,
      'acme/state/acme.test': failingState,
    },
    { SSL_CERT_short: short.bundlePem, KONTENA_LB_CERT_WARN_DAYS: '21' },
  );
});

afterAll(async () => {
  await lb?.stopAll();
  await closeBackends(b);
  await etcd?.stop();
  removeCertFiles();
});

async function status(): Promise<StatusReport> {
  const reply = await get(lb.config.adminPort, '/status');
  return JSON.parse(reply.body) as StatusReport;
}

describe('certificate warnings', () => {
  it('lists an expiring certificate, a host only the default certificate serves and a failing ACME renewal in /status', async () => {
    const warnings = (await status()).certificateWarnings;
    expect(warnings.map((w) => [w.kind, w.subject])).toEqual([
      ['default_only', 'nocert.test'],
      ['expiring', expect.stringMatching(/^env-SSL_CERT_short-[0-9a-f]+$/)],
      ['renewal_failing', 'acme.test'],
    ]);
    const expiring = warnings.find((w) => w.kind === 'expiring')!;
    expect(expiring.detail).toMatch(/^expires \S+ \(in 1 day\), served for short\.test$/);
    expect(Date.parse(expiring.since!)).toBeLessThan(Date.now());
    expect(warnings.find((w) => w.kind === 'renewal_failing')).toMatchObject({ since: TWO_DAYS_AGO, detail: expect.stringContaining('NXDOMAIN') });
  });

  it('logs each warning once, not on every apply', async () => {
    const logged = () => lb.logs.filter((l) => l.event === 'certificate.attention').map((l) => `${l.kind} ${l.subject}`);
    await waitFor(() => logged().length === 3, { timeoutMs: 5000, what: 'three certificate.attention lines' });
    // Another apply (a new service) logs none again; a new problem host is logged once.
    await settled(lb, await putKeys(etcd, lb, { 'services/more/virtual_hosts': 'more.test', 'services/more/upstreams/one': b.web.address }));
    await waitFor(() => logged().includes('default_only more.test'), { timeoutMs: 5000, what: 'the new host to be logged' });
    expect(logged()).toHaveLength(4);
    expect(new Set(logged()).size).toBe(4);
  });

  /** `edgelb cert list`'s lines, with the ACME settings `acme` when given. */
  async function certList(acme?: { envDomains: string[]; dns01: boolean }): Promise<string[]> {
    const lines: string[] = [];
    const program = new Command('edgelb').exitOverride();
    registerCertCommands(program, {
      loadSettings: () => ({
        etcd: etcdConnection(etcd.endpoint),
        etcdPath: lb.prefix,
        vaultKey: undefined,
        env: { SSL_CERT_short: short.bundlePem },
        certWarnDays: 21,
        ...(acme ? { acme } : {}),
      }),
      out: (line) => void lines.push(line),
      fail: (message) => {
        throw new Error(message);
      },
      etcdTimeoutMs: 5000,
    });
    await program.parseAsync(['cert', 'list'], { from: 'user' });
    return lines;
  }

  it('shows the same warnings in `edgelb cert list`', async () => {
    const lines = await certList();
    const table = lines.slice(lines.findIndex((l) => l.startsWith('WARNING')));
    expect(table[0]).toMatch(/^WARNING +CERTIFICATE OR HOST +SINCE +DETAIL$/);
    expect(table.slice(1, 5).map((l) => l.split(/ +/).slice(0, 2).join(' '))).toEqual([
      'default_only more.test',
      'default_only nocert.test',
      `expiring ${(await status()).certificateWarnings.find((w) => w.kind === 'expiring')!.subject}`,
      'renewal_failing acme.test',
    ]);
  });

  it('leaves out in `edgelb cert list` a failing ACME domain that ACME is no longer asked for, given the ACME settings', async () => {
    const kinds = (lines: string[]) => lines.slice(lines.findIndex((l) => l.startsWith('WARNING')) + 1).map((l) => l.split(/ +/).slice(0, 2).join(' '));
    expect(kinds(await certList({ envDomains: ['acme.test'], dns01: false }))).toContain('renewal_failing acme.test');
    // No service has acme=true and KONTENA_LB_ACME_DOMAINS does not name it: its state is history.
    expect(kinds(await certList({ envDomains: [], dns01: false }))).not.toContain('renewal_failing acme.test');
  });
});
