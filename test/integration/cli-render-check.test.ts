import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckReport } from '../../src/cli/check.js';
import { parseEntriesText } from '../../src/cli/entries-file.js';
import { TEMPLATES_DIR } from '../../src/render/render.js';
import { makeLeaf } from '../support/certs.js';
import { edgelbCommand } from '../support/edgelb-process.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { startLbWith } from '../support/lb.js';
import { freePort } from '../support/ports.js';

// `edgelb render` and `edgelb check` as an operator runs them: a child process, a clean
// environment, exit codes, stdout and stderr. Entries come from the fixture files and a real etcd.

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'src/main.ts');
const FIXTURES = path.join(ROOT, 'test/fixtures/cli');
const ENTRIES = path.join(FIXTURES, 'entries.yaml');
const BAD = path.join(FIXTURES, 'bad-entries.yaml');
const EXPECTED = path.join(FIXTURES, 'expected.cfg');
/** Where the image installs edgelb (docker/Dockerfile): the checked-in config reads as the image renders it. */
const IMAGE_TEMPLATES = '/opt/edgelb/templates';
const FIXED = ['--state-dir', '/var/lib/edgelb', '--http-port', '80', '--admin-port', '8404'];

const edgelb = edgelbCommand;

let etcd: EtcdServer;
let tmp: string;
const PREFIX = '/kontena/haproxy/cli-render';

beforeAll(async () => {
  etcd = await startEtcd();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'edgelb-cli-render-'));
});

afterAll(async () => {
  await etcd?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('edgelb render', () => {
  it('renders the fixture entries file to the checked-in config, with nothing on stderr', async () => {
    const result = await edgelb(['render', '--from-file', ENTRIES, ...FIXED]);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const text = `${result.stdout.replaceAll(TEMPLATES_DIR, IMAGE_TEMPLATES)}\n`;
    if (process.env.UPDATE_FIXTURES) writeFileSync(EXPECTED, text);
    expect(text).toBe(readFileSync(EXPECTED, 'utf8'));
    expect(text).toContain('backend http-docs'); // the flat keys
    expect(text).toContain('server db-1 10.81.0.9:5432');
  });

  it('renders the same config from the same entries in etcd (read once, no watch)', async () => {
    const entries = parseEntriesText(readFileSync(ENTRIES, 'utf8'), ENTRIES, PREFIX);
    for (const [key, value] of entries) await etcd.client.put(`${PREFIX}/${key}`).value(value);
    const result = await edgelb(['render', ...FIXED], { ETCD_ENDPOINTS: etcd.endpoint, ETCD_PATH: PREFIX });
    expect(result.exitCode).toBe(0);
    expect(`${result.stdout.replaceAll(TEMPLATES_DIR, IMAGE_TEMPLATES)}\n`).toBe(readFileSync(EXPECTED, 'utf8'));
  });

  it('prints exactly the config a running controller applies for the same entries and settings', async () => {
    const entries = parseEntriesText(readFileSync(ENTRIES, 'utf8'), ENTRIES, '');
    const lb = await startLbWith(etcd, Object.fromEntries(entries));
    try {
      const c = lb.config;
      const result = await edgelb([
        'render',
        '--from-file',
        ENTRIES,
        '--state-dir',
        c.stateDir,
        '--http-port',
        String(c.httpPort),
        '--https-port',
        String(c.httpsPort),
        '--stats-port',
        String(c.statsPort),
        '--admin-port',
        String(c.adminPort),
      ]);
      expect(result.exitCode).toBe(0);
      expect(`${result.stdout}\n`).toBe(readFileSync(lb.configFile, 'utf8'));
    } finally {
      await lb.stopAll();
    }
  });

  it('hides STATS_PASSWORD and basic-auth passwords unless --show-secrets', async () => {
    const file = path.join(tmp, 'secrets.yaml');
    writeFileSync(file, 'services/web/virtual_hosts: web.test\nservices/web/basic_auth_secrets: "user alice insecure-password Op3nSesame"\n');
    const env = { STATS_PASSWORD: 'Stat5Secret' };
    const hidden = await edgelb(['render', '--from-file', file, ...FIXED], env);
    expect(hidden.exitCode).toBe(0);
    expect(hidden.stdout).toContain('user alice insecure-password <hidden');
    expect(hidden.stdout).not.toContain('Op3nSesame');
    expect(hidden.stdout).not.toContain('Stat5Secret');
    const shown = await edgelb(['render', '--from-file', file, '--show-secrets', ...FIXED], env);
    expect(shown.stdout).toContain('Op3nSesame');
    expect(shown.stdout).toContain('stats auth stats:Stat5Secret');
  });

  it('leaves rejected entries out and says so on stderr, in one line', async () => {
    const result = await edgelb(['render', '--from-file', BAD, ...FIXED]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('backend http-good');
    expect(result.stdout).not.toContain('http-badhost');
    expect(result.stderr.trim().split('\n')).toEqual(['edgelb: 10 entries were rejected and left out; run "edgelb check" for the reasons']);
  });

  it('fails in one line with a hint: unreadable file, bad YAML, a list value, unreachable etcd, no LB name, a bad setting', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['render', '--from-file', path.join(tmp, 'missing.yaml')], {}, /^edgelb: cannot read .*missing\.yaml: ENOENT$/],
      [['render', '--from-file', file('bad.yaml', 'services: [unclosed')], {}, /^edgelb: .*bad\.yaml:1:\d+ is not valid YAML or JSON: /],
      [
        ['render', '--from-file', file('list.yaml', 'services/web/virtual_hosts: [a.com, b.com]')],
        {},
        /^edgelb: .*services\/web\/virtual_hosts is a list; write the value as etcd holds it/,
      ],
      [['render', '--from-file', file('scalar.yaml', '42')], {}, /^edgelb: .*must hold a mapping of etcd keys to values/],
      [
        ['render', '--etcd-endpoints', `http://127.0.0.1:${await freePort()}`, '--service-name', 'lb'],
        {},
        /^edgelb: cannot read from etcd at http:\/\/127\.0\.0\.1:\d+: .* \(check ETCD_ENDPOINTS, or use --from-file\)$/,
      ],
      [['render'], {}, /^edgelb: set KONTENA_SERVICE_NAME \(with KONTENA_STACK_NAME\) or ETCD_PATH/],
      [
        ['render', '--from-file', ENTRIES, '--http-port', 'eighty'],
        {},
        /^edgelb: KONTENA_LB_HTTP_PORT must be a port number between 1 and 65535, got "eighty"$/,
      ],
    ];
    // Independent processes: run side by side (each pays for a Node start with tsx).
    const results = await Promise.all(cases.map(([args, env]) => edgelb(args, env)));
    for (const [i, [args, , pattern]] of cases.entries()) {
      const result = results[i]!;
      expect(result.exitCode, args.join(' ')).toBe(2);
      expect(result.stdout, args.join(' ')).toBe('');
      const lines = result.stderr.trim().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0], args.join(' ')).toMatch(pattern);
    }
  }, 120_000);

  it('shows progress on stderr when it is a terminal, and only then', async () => {
    const big = file(
      'big.yaml',
      Array.from(
        { length: 2000 },
        (_, i) => `services/s${i}/virtual_hosts: s${i}.example.com\nservices/s${i}/upstreams/a: 10.0.${i >> 8}.${i & 255}:80\n`,
      ).join(''),
    );
    // `script` gives the command a pseudo-terminal; stdout goes to a file so only stderr reaches it.
    const out = path.join(tmp, 'big.cfg');
    const command = `node --import tsx ${MAIN} render --from-file ${big} ${FIXED.join(' ')} > ${out}`;
    const tty = await execa('script', ['-qec', command, '/dev/null'], {
      reject: false,
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '' },
      extendEnv: false,
      timeout: 60_000,
    });
    expect(tty.exitCode).toBe(0);
    expect(tty.stdout).toMatch(/reading .*big\.yaml: 4,000 keys, [\d.]+ s/);
    expect(tty.stdout).toMatch(/validating 4,000 entries: 2,000 HTTP and 0 TCP services, 0 rejected/);
    expect(tty.stdout).toMatch(/rendering: [\d,]+ lines/);
    expect(readFileSync(out, 'utf8')).toContain('backend http-s1999');

    const piped = await edgelb(['render', '--from-file', big, ...FIXED]);
    expect(piped.exitCode).toBe(0);
    expect(piped.stderr).toBe('');
  });
});

describe('edgelb check', () => {
  it('exits 0 and says so when nothing would be rejected', async () => {
    const result = await edgelb(['check', '--from-file', ENTRIES, ...FIXED]);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      `checked 17 entries from ${ENTRIES}`,
      'would serve 4 HTTP and 1 TCP services; haproxy -c: valid',
      'ok: nothing would be rejected',
    ]);
  });

  it('catches each class of bad entry, with its key and reason, and exits 1', async () => {
    const result = await edgelb(['check', '--from-file', BAD, '--json', ...FIXED]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as CheckReport;
    expect(report.haproxyOk).toBe(false);
    expect(report.services).toEqual({ http: 5, tcp: 0 }); // good, badup, badbalance, typo, haproxy (isolated by run)
    const found = report.problems.map((p) => [p.kind, p.subject, p.reason]);
    expect(found).toEqual(
      expect.arrayContaining([
        ['entry', 'services/badhost/virtual_hosts', 'invalid_virtual_hosts'],
        ['entry', 'services/badpath/virtual_path', 'invalid_virtual_path'],
        ['entry', 'services/badup/upstreams/badup-1', 'invalid_upstream'],
        ['entry', 'services/badbalance/balance', 'invalid_balance'],
        ['entry', 'services/typo/virtal_hosts', 'unknown_setting'],
        ['entry', 'services/inject/virtual_hosts', 'invalid_virtual_hosts'],
        ['entry', 'services/section/custom_settings', 'invalid_custom_settings'],
        ['entry', 'services/layout/upstreams', 'key_layout'],
        ['entry', 'tcp-services/clash/external_port', 'port_conflict'],
        ['entry', 'tcp-services/noport/external_port', 'missing_external_port'],
        ['layout', 'service/misspelt/virtual_hosts', 'unknown_subtree'],
        ['certificate', 'certs/broken', 'invalid_certificate'],
        ['haproxy', 'http:haproxy', 'haproxy_rejected'],
      ]),
    );
    expect(found).toHaveLength(13);
    const haproxy = report.problems.find((p) => p.kind === 'haproxy')!;
    expect(haproxy.message).toMatch(/^rendered config line \d+: unknown keyword 'no-such-keyword' in 'backend' section$/);
    expect(haproxy.service).toBe('haproxy');
    expect(report.problems.find((p) => p.subject === 'services/inject/virtual_hosts')!.service).toBe('inject');
  });

  it('prints a table a person can read, ending with the count', async () => {
    const result = await edgelb(['check', '--from-file', BAD, ...FIXED]);
    expect(result.exitCode).toBe(1);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[1]).toBe('would serve 5 HTTP and 0 TCP services; haproxy -c: REFUSED');
    expect(lines[3]).toMatch(/^KIND +KEY \/ SERVICE +CLASS +REASON$/);
    expect(lines.find((l) => l.includes('services/badhost/virtual_hosts'))).toMatch(
      /^entry +services\/badhost\/virtual_hosts +invalid_virtual_hosts +host "not a host!" is not a valid host name.*\(service badhost left out\)$/,
    );
    expect(lines.at(-1)).toBe('13 problems: edgelb run would leave them out and log each (see README, Troubleshooting)');
  });

  it('checks the entries in etcd, and a global setting HAProxy refuses', async () => {
    const prefix = '/kontena/haproxy/cli-check';
    await etcd.client.put(`${prefix}/services/web/virtual_hosts`).value('www.example.com');
    await etcd.client.put(`${prefix}/services/web/upstreams/a`).value('10.0.0.1:80');
    const ok = await edgelb(['check', ...FIXED], { ETCD_ENDPOINTS: etcd.endpoint, ETCD_PATH: prefix });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain(`checked 2 entries from etcd ${etcd.endpoint} (v3) ${prefix}/ at revision`);

    const bad = await edgelb(['check', ...FIXED, '--global-settings', 'not-a-global-keyword'], { ETCD_ENDPOINTS: etcd.endpoint, ETCD_PATH: prefix });
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(/haproxy +global settings +haproxy_rejected +.*not-a-global-keyword.*the whole config would be refused/);
  });

  it('renders and checks the HTTPS listener run would serve: a cipher list HAProxy refuses fails check, as it would fail run', async () => {
    const leaf = await makeLeaf({ names: ['www.example.com'] });
    const env = { SSL_CERTS: leaf.bundlePem };
    const rendered = await edgelb(['render', '--from-file', ENTRIES, ...FIXED], env);
    expect(rendered.exitCode).toBe(0);
    expect(rendered.stdout).toMatch(/^ +bind \S*:443 .*crt-list \/var\/lib\/edgelb\/certs\/crt-list/m);
    const good = await edgelb(['check', '--from-file', ENTRIES, ...FIXED], env);
    expect(good.exitCode).toBe(0);
    const bad = await edgelb(['check', '--from-file', ENTRIES, ...FIXED, '--ssl-ciphers', 'NO-SUCH-CIPHER'], env);
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(/haproxy +global settings +haproxy_rejected +.*cipher/i);
  });

  it('renders KONTENA_LB_SSL_CIPHERSUITES on the HTTPS bind line; a name that is no TLS 1.3 suite is refused before HAProxy sees it (issue 16)', async () => {
    const leaf = await makeLeaf({ names: ['www.example.com'] });
    const env = { SSL_CERTS: leaf.bundlePem };
    const suites = ['--ssl-ciphersuites', 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'];
    const rendered = await edgelb(['render', '--from-file', ENTRIES, ...FIXED, ...suites], env);
    expect(rendered.stdout).toMatch(/^ +bind \S*:443 .* ciphersuites TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256( |$)/m);
    expect((await edgelb(['check', '--from-file', ENTRIES, ...FIXED, ...suites], env)).exitCode).toBe(0);
    const bad = await edgelb(['check', '--from-file', ENTRIES, ...FIXED, '--ssl-ciphersuites', 'TLS_NO_SUCH_SUITE'], env);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/KONTENA_LB_SSL_CIPHERSUITES must be TLS 1\.3 suites .*"TLS_NO_SUCH_SUITE"/);
  });

  it('names every HAProxy 1.8 directive, in custom_settings and in the environment, with its replacement', async () => {
    const legacy = file(
      'legacy.json',
      JSON.stringify({
        'services/web/virtual_hosts': 'web.test',
        'services/web/upstreams/a': '10.0.0.1:80',
        'services/web/custom_settings':
          'reqadd X-Forwarded-Proto:\\ https if { ssl_fc }\nhttp-request set-header X-Ok 1\nrspadd X-Frame-Options:\\ DENY\nblock if { src 10.0.0.0/8 }',
        'tcp-services/db/external_port': '5432',
        'tcp-services/db/upstreams/a': '10.0.0.2:5432',
        'tcp-services/db/custom_settings': 'option forceclose',
      }),
    );
    const env = ['--custom-settings', 'option http-tunnel', '--global-settings', 'nbproc 2'];
    const [json, human] = await Promise.all([
      edgelb(['check', '--from-file', legacy, '--json', ...env, ...FIXED]),
      edgelb(['check', '--from-file', legacy, '--no-haproxy', ...env, ...FIXED]),
    ]);
    expect(json.exitCode).toBe(1);
    const report = JSON.parse(json.stdout) as CheckReport;
    const found = report.problems.filter((p) => p.kind === 'legacy').map((p) => [p.subject, p.message, p.service]);
    expect(found).toEqual([
      [
        'services/web/custom_settings',
        expect.stringMatching(
          /^line 1: reqadd is HAProxy 1\.8 syntax that HAProxy 2\.6 refuses \(removed in 2\.1\); instead: http-request add-header <name> <value>/,
        ),
        'web',
      ],
      ['services/web/custom_settings', expect.stringMatching(/^line 3: rspadd .*; instead: http-response add-header <name> <value>/), 'web'],
      ['services/web/custom_settings', expect.stringMatching(/^line 4: block .*; instead: http-request deny with the same condition/), 'web'],
      ['tcp-services/db/custom_settings', expect.stringMatching(/^line 1: option forceclose .*\(removed in 2\.0\); instead: remove the line/), 'db'],
      ['KONTENA_LB_CUSTOM_SETTINGS', expect.stringMatching(/^line 1: option http-tunnel .*; instead: remove the line/), undefined],
      ['KONTENA_LB_GLOBAL_SETTINGS', expect.stringMatching(/^line 1: nbproc .*\(removed in 2\.5\)/), undefined],
    ]);
    expect(report.problems.every((p) => p.reason !== 'haproxy_1_8_directive' || p.kind === 'legacy')).toBe(true);
    // haproxy -c refuses the same config: the global setting takes the whole config down.
    expect(report.haproxyOk).toBe(false);

    // Without haproxy -c, the same lines are named, in the table.
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toContain('haproxy -c: skipped');
    const rows = human.stdout.split('\n').filter((l) => l.startsWith('legacy '));
    expect(rows).toHaveLength(6);
    expect(rows[0]).toMatch(/^legacy +services\/web\/custom_settings +haproxy_1_8_directive +line 1: reqadd .* \(service web left out\)$/);
    expect(human.stdout.trimEnd().split('\n').at(-1)).toBe('6 problems: edgelb run would leave them out and log each (see README, Troubleshooting)');
  });

  it('lists a bcrypt basic-auth hash as a warning, without the hash, and still exits 0', async () => {
    const hash = '$2b$04$.tkkPBiJGtmnTnwyM1BWBuD1Vgtep16tqZcbCuBTnKDfSXrW1DZUS';
    const entries = file(
      'bcrypt.json',
      JSON.stringify({
        'services/web/virtual_hosts': 'web.test',
        'services/web/upstreams/a': '10.0.0.1:80',
        'services/web/basic_auth_secrets': `user erin password ${hash}`,
      }),
    );
    const result = await edgelb(['check', '--from-file', entries, ...FIXED]);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[1]).toBe('would serve 1 HTTP and 0 TCP services; haproxy -c: valid');
    expect(lines.find((l) => l.startsWith('warning'))).toMatch(
      /^warning +services\/web\/basic_auth_secrets +entry_warning +bcrypt hashes \(erin \(cost 04\)\): HAProxy runs a bcrypt verification on every request .*openssl passwd -6\) takes about 1-2 ms$/,
    );
    expect(lines.slice(-2)).toEqual(['ok: nothing would be rejected', '1 warning: served as written; edgelb run logs each as "entry warning"']);
    expect(result.stdout + result.stderr).not.toContain('$2b$');
  });

  it('--no-haproxy skips haproxy -c; a missing haproxy is one line with a hint', async () => {
    const skipped = await edgelb(['check', '--from-file', ENTRIES, '--no-haproxy', ...FIXED]);
    expect(skipped.exitCode).toBe(0);
    expect(skipped.stdout).toContain('haproxy -c: skipped');
    const missing = await edgelb(['check', '--from-file', ENTRIES, ...FIXED, '--haproxy-bin', '/nonexistent/haproxy']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.trim()).toBe(
      'edgelb: cannot find "/nonexistent/haproxy" to run "haproxy -c" (install haproxy, set KONTENA_LB_HAPROXY_BIN, or pass --no-haproxy)',
    );
  });
});

describe('the command line', () => {
  it('has --help on every command and --version', async () => {
    const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const v = await edgelb(['--version']);
    expect(v.exitCode).toBe(0);
    expect(v.stdout.trim()).toBe(version);
    const commands = [[], ['run'], ['render'], ['check'], ['status'], ['cert'], ['cert', 'import'], ['cert', 'list']];
    const helps = await Promise.all(commands.map((command) => edgelb([...command, '--help'])));
    for (const [i, command] of commands.entries()) {
      expect(helps[i]!.exitCode, command.join(' ')).toBe(0);
      expect(helps[i]!.stdout, command.join(' ')).toContain(`Usage: edgelb${command.length > 0 ? ` ${command.join(' ')}` : ''}`);
    }
  }, 120_000);

  it('answers an unknown option with the error and a hint', async () => {
    const result = await edgelb(['render', '--no-such-flag']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual(["error: unknown option '--no-such-flag'", '(run with --help for usage)']);
  });
});

function file(name: string, content: string): string {
  const target = path.join(tmp, name);
  writeFileSync(target, content);
  return target;
}
