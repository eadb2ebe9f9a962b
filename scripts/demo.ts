/**
 * edgelb demo: a local etcd, two sample backends and the real controller (with its own
 * HAProxy), wired up with two routes you can curl and change live through etcd.
 *
 *   bash scripts/demo.sh            run until Ctrl-C, forwarding the controller's log
 *   bash scripts/demo.sh --check    start everything, verify the routes, TLS and status, stop, exit 0
 *
 * Runs as `node --import tsx scripts/demo.ts` after scripts/setup.sh has built dist/.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  formatLogEntry,
  freePort,
  portIsFree,
  REPO_ROOT,
  request,
  startController,
  startEtcd,
  startSampleBackend,
  waitFor,
  type LocalController,
  type LocalEtcd,
  type SampleBackend,
} from './lib/local-stack.js';

const PREFIX = '/kontena/haproxy/demo';
const ROUTE_DEADLINE_MS = 30_000;

interface Options {
  readonly check: boolean;
  readonly httpPort: number | undefined;
}

function parseArgs(argv: readonly string[]): Options {
  let check = false;
  let httpPort: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--check') check = true;
    else if (arg === '--port' || arg === '--http-port') {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 1 || value > 65535) usage(`${arg} needs a port number`);
      httpPort = value;
    } else if (arg === '-h' || arg === '--help') usage();
    else usage(`unknown argument ${JSON.stringify(arg)}`);
  }
  return { check, httpPort };
}

function usage(problem?: string): never {
  const text = [
    'usage: bash scripts/demo.sh [--check] [--port N]',
    '  --check    start everything, verify the sample routes answer, stop, exit 0 (non-interactive)',
    '  --port N   HAProxy HTTP port (default 8080 when free, else a random free port)',
  ].join('\n');
  if (problem) {
    process.stderr.write(`demo: ${problem}\n${text}\n`);
    process.exit(2);
  }
  process.stdout.write(`${text}\n`);
  process.exit(0);
}

const out = (line = '') => process.stdout.write(`${line}\n`);

/** `starting etcd... ok (0.4 s)`: the label first, so a hang shows where it hangs. */
async function step<T>(label: string, action: () => Promise<T>, detail?: (value: T) => string): Promise<T> {
  process.stdout.write(`${label}... `);
  const started = performance.now();
  try {
    const value = await action();
    const extra = detail ? `, ${detail(value)}` : '';
    out(`ok (${((performance.now() - started) / 1000).toFixed(1)} s${extra})`);
    return value;
  } catch (error) {
    out('FAILED');
    throw error;
  }
}

class Demo {
  private readonly cleanups: { what: string; run: () => Promise<void> }[] = [];
  private stopping: Promise<void> | undefined;
  etcd: LocalEtcd | undefined;
  controller: LocalController | undefined;
  backends: SampleBackend[] = [];
  httpPort = 0;
  /** Set once the routes are up; until then, log lines are kept quiet unless something fails. */
  following = false;
  readonly earlyLog: string[] = [];

  onCleanup(what: string, run: () => Promise<void>): void {
    this.cleanups.push({ what, run });
  }

  /** Stops everything in reverse order of starting; safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const { what, run } of this.cleanups.reverse()) {
        // While the log is being followed, its lines interleave: keep the progress on lines of its own.
        if (this.following) out(`stopping ${what}...`);
        else process.stdout.write(`stopping ${what}... `);
        try {
          await run();
          out(this.following ? `stopped ${what}` : 'ok');
        } catch (error) {
          out(`stopping ${what} failed: ${(error as Error).message}`);
        }
      }
    })();
    return this.stopping;
  }
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const mainJs = path.join(REPO_ROOT, 'dist', 'src', 'main.js');
  if (!existsSync(mainJs)) {
    process.stderr.write(`demo: ${mainJs} is missing; run "bash scripts/setup.sh" (or use "bash scripts/demo.sh")\n`);
    return 1;
  }

  const demo = new Demo();
  let interrupted = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted++;
    if (interrupted > 1) {
      out(`\n${signal} again: killing everything now`);
      process.exit(130); // the exit hook SIGKILLs the children's process groups
    }
    out(`\n${signal}: shutting down (press Ctrl-C again to kill at once)`);
    void demo.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const tempDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-demo-'));
    demo.onCleanup(`temp dir ${tempDir}`, () => rm(tempDir, { recursive: true, force: true }));
    const etcdDir = path.join(tempDir, 'etcd');
    const stateDir = path.join(tempDir, 'state');
    await mkdir(etcdDir, { recursive: true, mode: 0o700 });

    const etcd = await step(
      'starting etcd',
      () => startEtcd(etcdDir),
      (e) => `${e.endpoint}, pid ${e.process.pid}`,
    );
    demo.etcd = etcd;
    demo.onCleanup('etcd', () => etcd.stop());

    const [alpha, bravo] = await step(
      'starting sample backends',
      async () => [await startSampleBackend('alpha', '#2d6cdf'), await startSampleBackend('bravo', '#d9480f')] as const,
      (list) => list.map((b) => `${b.name} on ${b.address}`).join(', '),
    );
    demo.backends = [alpha, bravo];
    demo.onCleanup('sample backends', async () => {
      await Promise.all(demo.backends.map((b) => b.close()));
    });

    const httpPort = options.httpPort ?? ((await portIsFree(8080)) ? 8080 : await freePort(undefined));
    if (options.httpPort !== undefined && !(await portIsFree(httpPort))) throw new Error(`port ${httpPort} is in use`);
    demo.httpPort = httpPort;
    const httpsPort = (await portIsFree(8443)) && httpPort !== 8443 ? 8443 : await freePort(undefined);
    const statsPort = await freePort(undefined);
    const adminPort = (await portIsFree(8404)) ? 8404 : await freePort(undefined);

    const logLevel = (process.env.LOG_LEVEL ?? 'info').trim().toLowerCase() || 'info';
    const controller = await step(
      'starting edgelb (node dist/src/main.js run)',
      async () => {
        const started = startController({
          from: 'dist',
          etcdEndpoint: etcd.endpoint,
          etcdPath: PREFIX,
          httpPort,
          httpsPort,
          statsPort,
          adminPort,
          stateDir,
          logLevel,
          onLog: (entry) => {
            const line = `  edgelb | ${formatLogEntry(entry)}`;
            if (demo.following) out(line);
            else {
              demo.earlyLog.push(line);
              if (demo.earlyLog.length > 200) demo.earlyLog.shift();
            }
          },
        });
        demo.controller = started;
        demo.onCleanup('edgelb and its HAProxy', () => started.stop());
        // Its first (info) log line comes after the configuration was accepted; a bad one makes it exit
        // instead. With a quieter LOG_LEVEL there is no such line: then surviving a moment has to do.
        const since = Date.now();
        const logsInfo = ['info', 'debug', 'trace'].includes(logLevel);
        await waitFor(() => started.logs.length > 0 || (!logsInfo && Date.now() - since > 1500), {
          timeoutMs: 20_000,
          what: 'edgelb to log that it is starting',
          bail: () => {
            if (started.process.exited) throw new Error(`edgelb exited at start:\n${started.process.tail()}`);
          },
        });
        return started;
      },
      (c) => `pid ${c.process.pid}, HTTP port ${httpPort}`,
    );

    await step(
      'registering routes in etcd',
      async () => {
        const put = (key: string, value: string) => etcd.client.put(`${PREFIX}/${key}`).value(value);
        await put('services/web/virtual_hosts', 'www.demo.local');
        await put('services/web/upstreams/web-1', alpha.address);
        await put('services/web/upstreams/web-2', bravo.address);
        await put('services/api/virtual_path', '/api');
        await put('services/api/upstreams/api-1', bravo.address);
      },
      () => 'services web and api',
    );

    await step('waiting for the routes to answer', async () => {
      const deadline = Date.now() + ROUTE_DEADLINE_MS;
      const bail = () => {
        if (controller.process.exited) throw new Error(`edgelb exited:\n${controller.process.tail()}`);
      };
      await waitFor(
        async () => {
          const r = await request({ port: httpPort, path: '/', host: 'www.demo.local', timeoutMs: 2000 });
          return r.status === 200 && (r.backend === 'alpha' || r.backend === 'bravo');
        },
        { timeoutMs: deadline - Date.now(), intervalMs: 25, bail, what: 'http://www.demo.local/ to answer from alpha or bravo' },
      );
      await waitFor(
        async () => {
          const r = await request({ port: httpPort, path: '/api/hello', host: '127.0.0.1', timeoutMs: 2000 });
          return r.status === 200 && r.backend === 'bravo';
        },
        { timeoutMs: Math.max(1000, deadline - Date.now()), intervalMs: 25, bail, what: '/api/hello to answer from bravo' },
      );
    });

    // A self-signed certificate for www.demo.local, for the operator to import into the vault:
    // the same `edgelb cert import` as in production, and HTTPS is served within a moment.
    const tls = await step(
      'making a demo certificate for www.demo.local (openssl)',
      () => makeDemoCertificate(tempDir),
      (t) => path.relative(process.cwd(), t.bundle) || t.bundle,
    );

    const etcdctl = `ETCDCTL_API=3 etcdctl --endpoints=${etcd.endpoint}`;
    const addAlpha = `${etcdctl} put ${PREFIX}/services/api/upstreams/api-2 ${alpha.address}`;
    const base = `http://127.0.0.1:${httpPort}`;
    out();
    out(`edgelb demo is up: HAProxy on port ${httpPort}, etcd at ${etcd.endpoint}, routes under ${PREFIX}`);
    out();
    out('Try it:');
    out(`  curl -H 'Host: www.demo.local' ${base}/            # service "web": alpha and bravo take turns`);
    out(`  curl -H 'Host: www.demo.local' ${base}/hello/world # the backend names the path it received`);
    out(`  curl ${base}/api/hello                             # service "api" (virtual_path /api): bravo gets /hello`);
    out(`  curl -i ${base}/                                   # no service for this host and path: 503`);
    out(`  curl --resolve www.demo.local:${httpPort}:127.0.0.1 http://www.demo.local:${httpPort}/`);
    out(`  browser: ${base}/api/  (or add "127.0.0.1 www.demo.local" to /etc/hosts and open http://www.demo.local:${httpPort}/)`);
    out();
    out('Change the routes live (edgelb applies every change within a moment, no restart):');
    out(`  ${etcdctl} get --prefix ${PREFIX}/`);
    out(`  ${addAlpha}`);
    out('      # alpha joins "api": curl /api/hello a few times');
    out(`  ${etcdctl} put ${PREFIX}/services/web/virtual_hosts 'www.demo.local,*.demo.local'`);
    out(`      # then: curl -H 'Host: anything.demo.local' ${base}/`);
    out(`  ${etcdctl} put ${PREFIX}/services/blog/virtual_hosts blog.demo.local`);
    out(`  ${etcdctl} put ${PREFIX}/services/blog/upstreams/blog-1 ${alpha.address}`);
    out(`      # a new service: curl -H 'Host: blog.demo.local' ${base}/`);
    out(`  ${etcdctl} del --prefix ${PREFIX}/services/api/`);
    out('      # removes "api": /api/hello answers 503');
    out();
    const importCert = `node dist/src/main.js cert import ${tls.bundle} --etcd-endpoints ${etcd.endpoint} --etcd-path ${PREFIX}`;
    const curlTls = `curl --cacert ${tls.cert} --resolve www.demo.local:${httpsPort}:127.0.0.1 https://www.demo.local:${httpsPort}/`;
    const status = `node dist/src/main.js status --admin-port ${adminPort}`;
    out(`TLS: nothing listens on HTTPS port ${httpsPort} until a certificate is loaded. Import the demo one:`);
    out(`  ${importCert}`);
    out(`  ${curlTls}`);
    out('      # HTTPS to "web", verified against the demo certificate (HTTP/2 with curl --http2)');
    out();
    out('What edgelb is serving, from its admin port (also /healthz, /status and /metrics over HTTP):');
    out(`  ${status}`);
    out(`  curl http://127.0.0.1:${adminPort}/metrics`);

    if (options.check) {
      await step(
        'checking the routes',
        async () => {
          const seen = new Set<string>();
          for (let i = 0; i < 6; i++) {
            const r = await request({ port: httpPort, path: `/check/${i}`, host: 'WWW.demo.local:80' });
            if (r.status !== 200 || !r.backend) throw new Error(`www.demo.local answered ${r.status} without a backend`);
            if (r.backendPath !== `/check/${i}`) throw new Error(`web: backend received ${r.backendPath}, expected /check/${i}`);
            seen.add(r.backend);
          }
          if (seen.size !== 2) throw new Error(`web: expected alpha and bravo to take turns, saw only ${[...seen].join(', ')}`);
          const api = await request({ port: httpPort, path: '/api/hello?x=1', host: 'anything.example' });
          if (api.status !== 200 || api.backend !== 'bravo' || api.backendPath !== '/hello?x=1') {
            throw new Error(`api: got ${api.status} from ${api.backend ?? 'no backend'} for ${api.backendPath ?? '?'}`);
          }
          const none = await request({ port: httpPort, path: '/', host: 'nothing.example' });
          if (none.status !== 503) throw new Error(`a request matching no service answered ${none.status}, expected 503`);
        },
        () => 'web: alpha+bravo, api: bravo with /api stripped, no route: 503',
      );

      await step(
        'checking a live change (the printed etcdctl put)',
        async () => {
          await runShell(addAlpha);
          await waitFor(
            async () => {
              const r = await request({ port: httpPort, path: '/api/x', host: 'localhost' });
              return r.backend === 'alpha';
            },
            { timeoutMs: 15_000, intervalMs: 10, what: 'alpha to answer /api after the etcdctl put' },
          );
        },
        () => 'alpha now serves /api too',
      );

      await step(
        'checking TLS (the printed cert import and curl)',
        async () => {
          await runShell(importCert);
          await waitFor(
            async () => {
              const body = await runShell(curlTls).catch(() => undefined);
              return body !== undefined && /alpha|bravo/.test(body);
            },
            { timeoutMs: 15_000, intervalMs: 50, what: `${curlTls} to answer from web` },
          );
        },
        () => `https://www.demo.local:${httpsPort}/ answers with the demo certificate`,
      );

      await step(
        'checking edgelb status (the printed command)',
        async () => {
          const text = await runShell(status);
          if (!/: healthy\n/.test(text) || !/\bweb +http +www\.demo\.local/.test(text)) throw new Error(`unexpected status output:\n${text}`);
        },
        () => 'healthy, services listed',
      );

      out();
      out('OK');
      await demo.stop();
      return 0;
    }

    out();
    out('Controller log follows. Press Ctrl-C to stop everything.');
    out();
    for (const line of demo.earlyLog.splice(0)) out(line);
    demo.following = true;
    const exit = await controller.process.done;
    if (interrupted === 0) {
      out(`edgelb exited unexpectedly (${exit.signal ?? `code ${exit.code}`})`);
      await demo.stop();
      return 1;
    }
    await new Promise(() => undefined); // the signal handler finishes the shutdown and exits
    return 0;
  } catch (error) {
    process.stderr.write(`\ndemo: ${(error as Error).message}\n`);
    if (demo.earlyLog.length > 0) {
      process.stderr.write(`last controller log lines:\n${demo.earlyLog.slice(-30).join('\n')}\n`);
    }
    await demo.stop();
    return 1;
  }
}

/** Runs a printed command line exactly as an operator would paste it, from the repository root; resolves with its stdout. */
function runShell(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', command], { timeout: 15_000, cwd: REPO_ROOT }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/** A self-signed certificate for www.demo.local: `<dir>/tls/www.demo.local.pem` (certificate then key, as the vault takes it) and the certificate alone for curl. */
async function makeDemoCertificate(dir: string): Promise<{ bundle: string; cert: string }> {
  const tlsDir = path.join(dir, 'tls');
  await mkdir(tlsDir, { recursive: true, mode: 0o700 });
  const cert = path.join(tlsDir, 'www.demo.local.crt');
  const key = path.join(tlsDir, 'www.demo.local.key');
  const bundle = path.join(tlsDir, 'www.demo.local.pem');
  await new Promise<void>((resolve, reject) => {
    execFile(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/CN=www.demo.local',
        '-addext',
        'subjectAltName=DNS:www.demo.local',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { timeout: 15_000 },
      (error, _stdout, stderr) => (error ? reject(new Error(`openssl: ${stderr.trim() || error.message}`)) : resolve()),
    );
  });
  await writeFile(bundle, `${await readFile(cert, 'utf8')}${await readFile(key, 'utf8')}`, { mode: 0o600 });
  return { bundle, cert };
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`demo: ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
