import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { makeLeaf, removeCertFiles } from '../support/certs.js';
import { edgelbEnv, runEdgelb, type EdgelbProcess, edgelbCommand } from '../support/edgelb-process.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { closeBackends, startBackends } from '../support/lb.js';
import { freePort } from '../support/ports.js';
import { adminGet, keyMaterial, linkWebService, secretsDir, setUserPassword, tlsSettings, v2Value, type Api } from '../support/secured-etcd.js';
import { waitFor } from '../support/wait.js';

// The commands that talk to etcd (check, cert import, cert list, run), each as its own process
// the way an operator runs them, against a TLS etcd 3.4 with client certificates and a user
// limited to the load balancer's prefix, over the v3 and the v2 API: the settings work as flags
// and as environment; a wrong password or certificate fails in one line naming the cause; the
// password is never printed.

const FIXED = ['--state-dir', '/var/lib/edgelb', '--http-port', '80', '--admin-port', '8404'];

let etcd: EtcdServer;
let backends: Record<'a', Backend>;
let secrets: Awaited<ReturnType<typeof secretsDir>>;
let bundleFile: string;
let running: EdgelbProcess | undefined;
let stateDir: string;

/** The user of each API's load balancer: limited to its prefix, its password in a file. */
const users = {
  v3: { prefix: '/kontena/haproxy/secured-cli-v3', username: 'lb-cli-v3', password: 'Cli-v3-Password-2b7e41', file: '' },
  v2: { prefix: '/kontena/haproxy/secured-cli-v2', username: 'lb-cli-v2', password: 'Cli-v2-Password-9d05c3', file: '' },
};
const WRONG_PASSWORD = 'Wrong-Password-Never-Printed-6a1c';

beforeAll(async () => {
  let bundlePem: string;
  [etcd, backends, secrets, bundlePem, stateDir] = await Promise.all([
    startEtcd({ tls: true, enableV2: true }),
    startBackends('a'),
    secretsDir(),
    makeLeaf({ names: ['import.secured.test'] }).then((leaf) => leaf.bundlePem),
    mkdtemp(path.join(os.tmpdir(), 'edgelb-secured-run-')),
  ]);
  bundleFile = await secrets.write('bundle.pem', bundlePem);
  for (const api of ['v3', 'v2'] as const) {
    const user = users[api];
    await etcd.enableAuth({ prefix: user.prefix, username: user.username, password: user.password });
    user.file = await secrets.write(`${api}.password`, `${user.password}\n`);
    await linkWebService(etcd, api, user.prefix, 'web', 'web.cli.test', backends.a.address);
  }
});

afterAll(async () => {
  running?.child.kill('SIGTERM'); // execa escalates to SIGKILL after 5 s; SIGTERM lets edgelb stop its HAProxy
  await running?.child;
  await Promise.all([etcd?.stop(), closeBackends(backends), secrets?.remove(), stateDir && rm(stateDir, { recursive: true, force: true })]);
  removeCertFiles();
});

const edgelb = edgelbCommand;

/** The connection as flags: TLS files, user and password file (the password itself has no flag). */
function flags(api: Api, overrides: { passwordFile?: string } = {}): string[] {
  const tls = tlsSettings(etcd);
  return [
    '--etcd-endpoints',
    etcd.endpoint,
    '--etcd-api',
    api,
    '--etcd-path',
    users[api].prefix,
    '--etcd-ca-file',
    tls.ETCD_CA_FILE!,
    '--etcd-cert-file',
    tls.ETCD_CERT_FILE!,
    '--etcd-key-file',
    tls.ETCD_KEY_FILE!,
    '--etcd-username',
    users[api].username,
    '--etcd-password-file',
    overrides.passwordFile ?? users[api].file,
  ];
}

/** The connection as environment, with the password in ETCD_PASSWORD (environment only). */
function environment(api: Api, overrides: { password?: string; tls?: Record<string, string> } = {}): Record<string, string> {
  return {
    ETCD_ENDPOINTS: etcd.endpoint,
    ETCD_API: api,
    ETCD_PATH: users[api].prefix,
    ...(overrides.tls ?? tlsSettings(etcd)),
    ETCD_USERNAME: users[api].username,
    ETCD_PASSWORD: overrides.password ?? users[api].password,
  };
}

function expectNoPassword(output: string, ...passwords: string[]): void {
  for (const password of passwords) expect(output.includes(password), `output shows the password ${password.slice(0, 6)}...`).toBe(false);
}

describe.each(['v3', 'v2'] as const)('the CLI over etcd %s (TLS, client certificate, user limited to the prefix)', (api) => {
  it('check, cert import and cert list succeed with the settings as flags and as environment', async () => {
    const user = users[api];
    const checked = new RegExp(`^checked \\d+ entries from etcd ${etcd.endpoint.replaceAll('.', '\\.')} \\(${api}\\) ${user.prefix}/ at revision \\d+$`, 'm');
    const [withFlags, withEnv, imported] = await Promise.all([
      edgelb(['check', ...FIXED, ...flags(api)]),
      edgelb(['check', ...FIXED], environment(api)),
      edgelb(['cert', 'import', bundleFile], environment(api)),
    ]);
    for (const result of [withFlags, withEnv]) {
      expect(result.stderr).toBe('');
      expect(result.exitCode, result.stdout).toBe(0);
      expect(result.stdout).toMatch(checked);
      expect(result.stdout).toContain('would serve 1 HTTP and 0 TCP services; haproxy -c: valid');
      expectNoPassword(`${result.stdout}${result.stderr}`, user.password);
    }

    expect(imported.stderr).toBe('');
    expect(imported.exitCode).toBe(0);
    expect(imported.stdout).toMatch(new RegExp(`^imported ${user.prefix}/certs/import\\.secured\\.test: import\\.secured\\.test, expires `));
    const stored =
      api === 'v3'
        ? await etcd.client.get(`${user.prefix}/certs/import.secured.test`).string()
        : await v2Value(etcd, `${user.prefix}/certs/import.secured.test`);
    expect(stored).toContain('-----BEGIN CERTIFICATE-----');

    const listed = await edgelb(['cert', 'list', '--json', ...flags(api)]);
    expect(listed.stderr).toBe('');
    expect(listed.exitCode).toBe(0);
    expect((JSON.parse(listed.stdout) as { name: string; status: string }[]).map((r) => [r.name, r.status])).toEqual([['import.secured.test', 'valid']]);
    expectNoPassword(`${imported.stdout}${listed.stdout}`, user.password);
  });

  it('a wrong password or an untrusted certificate: one line naming the cause, a non-zero exit, no password', async () => {
    const wrongFile = await secrets.write(`${api}.wrong`, WRONG_PASSWORD);
    const endpoint = etcd.endpoint.replaceAll('.', '\\.');
    const auth = `etcd refused the user name or password \\(check ETCD_USERNAME and ETCD_PASSWORD or ETCD_PASSWORD_FILE\\): `;
    const tls = `the TLS handshake with etcd failed \\(check ETCD_CA_FILE, ETCD_CERT_FILE and ETCD_KEY_FILE\\): (https://127\\.0\\.0\\.1:\\d+: )?etcd refused edgelb's client certificate`;
    const cases: [string, string[], Record<string, string>, number, RegExp][] = [
      [
        'check, password file',
        ['check', ...FIXED, ...flags(api, { passwordFile: wrongFile })],
        {},
        2,
        new RegExp(`^edgelb: cannot read from etcd at ${endpoint}: ${auth}.* \\(check ETCD_ENDPOINTS, or use --from-file\\)$`),
      ],
      [
        'cert list, ETCD_PASSWORD',
        ['cert', 'list'],
        environment(api, { password: WRONG_PASSWORD }),
        1,
        new RegExp(`^edgelb: cannot reach etcd at ${endpoint}: ${auth}`),
      ],
      [
        'cert import, ETCD_PASSWORD',
        ['cert', 'import', bundleFile, '--name', 'refused'],
        environment(api, { password: WRONG_PASSWORD }),
        1,
        new RegExp(`^edgelb: cannot reach etcd at ${endpoint}: ${auth}`),
      ],
      [
        'check, untrusted client certificate',
        ['check', ...FIXED],
        environment(api, { tls: tlsSettings(etcd, { client: etcd.tls!.untrustedClient }) }),
        2,
        new RegExp(`^edgelb: cannot read from etcd at ${endpoint}: ${tls}`),
      ],
    ];
    const results = await Promise.all(cases.map(([, args, env]) => edgelb(args, env)));
    for (const [i, [what, , , exitCode, pattern]] of cases.entries()) {
      const result = results[i]!;
      expect(result.exitCode, what).toBe(exitCode);
      expect(result.stdout, what).toBe('');
      const lines = result.stderr.trim().split('\n');
      expect(lines, what).toHaveLength(1);
      expect(lines[0], what).toMatch(pattern);
      expectNoPassword(`${result.stdout}${result.stderr}`, WRONG_PASSWORD, users[api].password);
      for (const line of keyMaterial(etcd.tls!.untrustedClient.keyPem)) expect(result.stderr.includes(line), what).toBe(false);
    }
    // Refused before writing: nothing was stored.
    const refused = `${users[api].prefix}/certs/refused`;
    expect(api === 'v3' ? await etcd.client.get(refused).string() : await v2Value(etcd, refused)).toBeFalsy();
  });
});

describe('edgelb run as a process with an etcd password', () => {
  it('never prints it: refused, fixed in etcd, recovered, re-read and stopped', async () => {
    const api = 'v3';
    const prefix = '/kontena/haproxy/secured-run';
    const username = 'lb-run';
    const password = 'Run-Password-Never-Printed-e4f29a';
    await etcd.enableAuth({ prefix, username, password: 'the-other-password-3c8d' });
    await linkWebService(etcd, api, prefix, 'web', 'web.run.test', backends.a.address);
    const httpPort = await freePort();
    const env: Record<string, string> = {
      ...(await edgelbEnv(etcd.endpoint, prefix, httpPort, stateDir)),
      ...tlsSettings(etcd),
      ETCD_API: api,
      ETCD_USERNAME: username,
      ETCD_PASSWORD: password,
      LOG_LEVEL: 'debug',
    };
    const adminPort = Number(env.KONTENA_LB_ADMIN_PORT);
    running = runEdgelb(env);
    await running.waitForOutput(/"code":"auth"[^\n]*\n[\s\S]*"code":"auth"/); // two attempts refused
    const refused = await adminGet(adminPort, '/healthz');
    expect(refused.status).toBe(503);
    expect(refused.body).toMatch(/user name or password/);

    await setUserPassword(etcd, api, username, password);
    await running.waitForOutput('watching etcd');
    await waitFor(async () => (await get(httpPort, '/', 'web.run.test')).backend === 'a', { timeoutMs: 15_000, what: 'web.run.test through HAProxy' });
    const shown = await Promise.all(['/healthz', '/status', '/metrics'].map(async (p) => (await adminGet(adminPort, p)).body));
    running.child.kill('SIGHUP');
    await running.waitForOutput('SIGHUP: re-reading etcd');
    await waitFor(() => running!.output().split('SIGHUP: re-reading etcd')[1]?.includes('watching etcd'), { what: 'the re-read after SIGHUP' });
    // Signalled directly: execa's kill() would SIGKILL after 5 s, which a graceful stop on a busy machine can take.
    process.kill(running.child.pid!, 'SIGTERM');
    await running.waitForOutput('stopping: HAProxy finishes in-flight requests', 10_000);
    const stopped = await running.child;
    expect(stopped.exitCode, `${stopped.signal} ${running.output().slice(-3000)}`).toBe(0);

    const output = running.output();
    expect(output).toContain('etcd refused the user name or password');
    expect(output).toContain('"username":"lb-run"'); // the start line names the user, not the password
    expectNoPassword(`${output}\n${shown.join('\n')}`, password);
    // Every line is a JSON log line, or a line HAProxy writes to the same stdout itself (its access
    // log, a proxy stopped): no warning from Node or a library in between.
    const haproxyLine = /^(\S+:\d+ \[[^\]]+\] \S+ \S+\/\S+ |Proxy \S+ stopped \(cumulated conns)/;
    for (const line of output.split('\n').filter((l) => l.trim() !== '' && !haproxyLine.test(l))) expect(() => JSON.parse(line), line).not.toThrow();
  });
});
