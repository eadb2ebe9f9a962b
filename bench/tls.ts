/**
 * TLS: certificate convergence, handshake throughput, and certificate swaps under load.
 *
 * Against the real thing: etcd (Debian's etcd-server), the controller in this process
 * (test/support/edgelb.ts: the same wiring as `edgelb run`) with its supervised HAProxy, and a
 * local HTTP backend. All TLS clients are on loopback: TLS 1.3, X25519, EC P-256 certificates.
 *
 *   latency     a new certificate (new host name) is written to the vault (etcd certs/<name>);
 *               the clock stops when a TLS client with that SNI is served it. Polls are full
 *               handshakes about every 2 ms. Measured with few certificates loaded, and again
 *               with --many (default 1,000) loaded.
 *   handshakes  full TLS handshakes per second (a new connection each, never resumed), --clients
 *               concurrent clients split over worker threads, for --duration seconds, SNI picked
 *               at random among the loaded names; with 1 certificate and with --many loaded
 *               (from KONTENA_LB_CERTS_DIR), in --rounds alternating windows per case with both load
 *               balancers running. Every 4th handshake checks the certificate matches the SNI
 *               name. HAProxy's CPU time over each window is read from /proc.
 *   swap        constant HTTPS load on one name (new-connection and keep-alive clients, each
 *               request verified against the CA and host name) while its certificate is replaced
 *               --swaps times through the vault; every failed request is counted.
 *
 * Clients and HAProxy share the machine's cores, so the handshake rates are a comparison
 * (1 vs many certificates), not a capacity figure.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { machineInfo, quantile, round } from './report.js';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { REPO_ROOT } from '../scripts/lib/local-stack.js';
import { startBackend, type Backend } from '../test/support/backend.js';
import { makeCa, makeLeaf, makeManyLeaves, removeCertFiles, type CertAuthority, type LeafCert } from '../test/support/certs.js';
import { startTestEdgelb, type TestEdgelb } from '../test/support/edgelb.js';
import { startEtcd, type EtcdServer } from '../test/support/etcd.js';
import { lbReady, putKeys, settled } from '../test/support/lb.js';
import { fingerprintOf, handshake, startHttpsLoad, type LoadStats } from '../test/support/tls.js';
import { sleep, waitFor } from '../test/support/wait.js';

const DEFAULTS = { samples: 30, clients: 8, durationS: 5, rounds: 2, many: 1000, swaps: 20 } as const;
const LIMITS = { samples: 500, clients: 32, durationS: 30, rounds: 10, many: 5000, swaps: 200 } as const;
const WARMUP = 3;
const POLL_INTERVAL_MS = 2;
const SAMPLE_TIMEOUT_MS = 15_000;
const TOTAL_BUDGET_MS = 15 * 60_000;
const CHECK_EVERY = 4;

interface Options {
  readonly samples: number;
  readonly clients: number;
  readonly durationS: number;
  readonly rounds: number;
  readonly many: number;
  readonly swaps: number;
  readonly out: string;
}

const USAGE = `usage: npm run bench -- tls [--samples N] [--clients N] [--duration S] [--rounds N] [--many N] [--swaps N] [--out FILE]
  --samples N    latency samples per case (default ${DEFAULTS.samples}, at most ${LIMITS.samples}); ${WARMUP} warm-up samples are not counted
  --clients N    concurrent handshake clients (default ${DEFAULTS.clients}, at most ${LIMITS.clients}), over min(N, CPUs) worker threads
  --duration S   seconds per handshake-rate window (default ${DEFAULTS.durationS}, at most ${LIMITS.durationS})
  --rounds N     alternating windows per case, 1 certificate then many (default ${DEFAULTS.rounds}, at most ${LIMITS.rounds})
  --many N       certificates loaded in the "many" case (default ${DEFAULTS.many}, at most ${LIMITS.many})
  --swaps N      certificate replacements under load (default ${DEFAULTS.swaps}, at most ${LIMITS.swaps})
  --out FILE     JSON results (default bench/results/tls.json)`;

function parseArgs(args: readonly string[]): Options | string {
  const values: Record<keyof typeof DEFAULTS, number> = { ...DEFAULTS };
  let out = path.join(REPO_ROOT, 'bench', 'results', 'tls.json');
  const flags: Record<string, keyof typeof DEFAULTS> = {
    '--samples': 'samples',
    '-n': 'samples',
    '--clients': 'clients',
    '--duration': 'durationS',
    '--rounds': 'rounds',
    '--many': 'many',
    '--swaps': 'swaps',
  };
  for (let i = 0; i < args.length; i++) {
    let arg = args[i]!;
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = () => inline ?? args[++i];
    if (arg === '--help' || arg === '-h') return '';
    if (arg === '--out') {
      const v = value();
      if (!v) return '--out needs a value';
      out = path.resolve(v);
      continue;
    }
    const name = flags[arg];
    if (!name) return `unknown argument ${JSON.stringify(arg)}`;
    const n = Number(value());
    if (!Number.isInteger(n) || n < 1 || n > LIMITS[name]) return `${arg} must be an integer 1..${LIMITS[name]}`;
    values[name] = n;
  }
  return { ...values, out };
}

interface Stats {
  readonly n: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

interface LatencyResult extends Stats {
  readonly certsLoaded: number;
  /** The controller's own apply duration (parse, select, runtime API) per sample, median. */
  readonly applyMedianMs: number | undefined;
  /** How the samples were applied: runtime API or reload, by count. */
  readonly actions: Record<string, number>;
  /** Failed handshakes while polling (other than "not served yet"). */
  readonly pollErrors: number;
  readonly samplesMs: readonly number[];
}

interface RateResult {
  readonly certsLoaded: number;
  readonly clients: number;
  readonly threads: number;
  /** Total over all rounds. */
  readonly durationS: number;
  /** Handshakes per second in each round. */
  readonly rounds: readonly number[];
  readonly handshakes: number;
  readonly perSecond: number;
  readonly failures: number;
  readonly errors: Record<string, number>;
  readonly checked: number;
  readonly wrongCert: number;
  readonly resumed: number;
  readonly handshakeLatency: Omit<Stats, 'n'>;
  readonly haproxyCpuS: number | undefined;
  readonly perHaproxyCpuS: number | undefined;
  /** CPU time of this process (the client threads; the controller is idle meanwhile). */
  readonly clientCpuS: number;
}

interface SwapResult {
  readonly swaps: number;
  readonly durationS: number;
  readonly requests: number;
  readonly failures: number;
  readonly newConnection: { requests: number; failures: number };
  readonly keepAlive: { requests: number; failures: number };
  readonly errors: readonly string[];
  readonly certsSeen: number;
  readonly reloads: number;
  readonly runtimeUpdates: number;
  readonly swapVisibleMs: Stats;
}

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args);
  if (typeof parsed === 'string') {
    (parsed ? process.stderr : process.stdout).write(`${parsed ? `tls: ${parsed}\n` : ''}${USAGE}\n`);
    return parsed ? 2 : 0;
  }
  const options = parsed;
  const startedAt = new Date();
  const budgetEnds = Date.now() + TOTAL_BUDGET_MS;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  let aborted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    aborted = signal;
    log(`tls: ${signal}, stopping after cleanup`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const checkAlive = () => {
    if (aborted) throw new Error(`interrupted by ${aborted}`);
    if (Date.now() > budgetEnds) throw new Error(`over the total time budget of ${TOTAL_BUDGET_MS / 60_000} min`);
  };

  let etcd: EtcdServer | undefined;
  let backend: Backend | undefined;
  const lbs: TestEdgelb[] = [];
  const tempDirs: string[] = [];
  const stopLb = async (lb: TestEdgelb) => {
    lbs.splice(lbs.indexOf(lb), 1);
    await lb.stopAll();
  };

  try {
    log('tls: starting etcd and a backend; making certificates');
    etcd = await startEtcd();
    backend = await startBackend('bench');
    const certStarted = performance.now();
    const ca = await makeCa('edgelb bench CA');
    const many = await makeManyLeaves(options.many, ca, { prefix: 'svc-', domain: 'many.bench.test' });
    const latencyLeaves = await makeManyLeaves(2 * (options.samples + WARMUP), ca, { prefix: 'lat-', domain: 'bench.test' });
    const one = await makeLeaf({ names: ['one.bench.test'], issuer: ca });
    const swapVersions: LeafCert[] = [];
    for (let i = 0; i < options.swaps + 1; i += 8) {
      swapVersions.push(
        ...(await Promise.all(Array.from({ length: Math.min(8, options.swaps + 1 - i) }, () => makeLeaf({ names: ['swap.bench.test'], issuer: ca })))),
      );
    }
    const certGenerationMs = Math.round(performance.now() - certStarted);
    log(`tls: ${options.many + latencyLeaves.length + swapVersions.length + 1} certificates made in ${(certGenerationMs / 1000).toFixed(1)} s`);
    checkAlive();

    const certsDir = async (leaves: readonly LeafCert[]) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-bench-certs-'));
      tempDirs.push(dir);
      await Promise.all(leaves.map((leaf, i) => writeFile(path.join(dir, `${String(i).padStart(5, '0')}.pem`), leaf.bundlePem)));
      return dir;
    };
    const startLb = async (leaves: readonly LeafCert[]) => {
      const t0 = performance.now();
      const lb = await startTestEdgelb(etcd!, { KONTENA_LB_CERTS_DIR: await certsDir(leaves), LOG_LEVEL: 'info' });
      lbs.push(lb);
      await lbReady(lb);
      await settled(
        lb,
        await putKeys(etcd!, lb, {
          'services/bench/virtual_hosts': 'swap.bench.test,one.bench.test',
          'services/bench/upstreams/one': backend!.address,
        }),
        60_000,
      );
      await waitFor(() => lb.controller.status().certs.served.length === leaves.length, { timeoutMs: 60_000, what: `${leaves.length} certificates served` });
      const probe = leaves[Math.floor(leaves.length / 2)]!;
      await waitFor(async () => (await handshake(lb.config.httpsPort, { servername: probe.names[0] })).cert.fingerprint256 === fingerprintOf(probe.certPem), {
        timeoutMs: 30_000,
        what: 'the HTTPS listener to serve the loaded certificates',
      });
      return { lb, readyMs: Math.round(performance.now() - t0) };
    };

    log('tls: load balancer with 1 certificate');
    const small = await startLb([one]);
    log(`tls: load balancer with ${options.many} certificates`);
    const big = await startLb(many);
    log(`  serving all ${options.many} ${(big.readyMs / 1000).toFixed(1)} s after start`);
    checkAlive();

    // Alternating rounds, so that drift in what else the machine does hits both cases alike.
    const runsOne: RateRun[] = [];
    const runsMany: RateRun[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      log(`tls: handshakes/s, round ${round}/${options.rounds} (${options.clients} clients, ${options.durationS} s each)`);
      runsOne.push(await handshakeRate(small.lb, [one], options));
      checkAlive();
      runsMany.push(await handshakeRate(big.lb, many, options));
      checkAlive();
      log(`  1 certificate: ${runsOne.at(-1)!.handshakes / options.durationS}/s; ${options.many}: ${runsMany.at(-1)!.handshakes / options.durationS}/s`);
    }
    const rateOne = combineRates(1, runsOne, options);
    const rateMany = combineRates(options.many, runsMany, options);

    log(`tls: latency, vault write → served, with 1 certificate loaded (${options.samples} samples)`);
    const latencyFew = await latency(etcd, small.lb, latencyLeaves.slice(0, options.samples + WARMUP), 1, checkAlive, log);
    log(`  median ${latencyFew.medianMs} ms`);
    checkAlive();
    log(`tls: latency with ${options.many} certificates loaded`);
    const latencyMany = await latency(etcd, big.lb, latencyLeaves.slice(options.samples + WARMUP), options.many, checkAlive, log);
    log(`  median ${latencyMany.medianMs} ms`);
    await stopLb(big.lb);
    checkAlive();

    log(`tls: ${options.swaps} certificate swaps under load`);
    const swap = await swapUnderLoad(etcd, small.lb, swapVersions, ca, checkAlive);
    log(`  ${swap.requests} requests, ${swap.failures} failed`);
    await stopLb(small.lb);

    const machine = machineInfo({ openssl: ['openssl', 'version'] });
    const command = `npm run bench -- tls${args.length > 0 ? ` ${args.join(' ')}` : ''}`;
    const ratio = Math.round((rateMany.perSecond / rateOne.perSecond) * 1000) / 1000;
    const report = {
      benchmark: 'tls',
      date: startedAt.toISOString(),
      command,
      method: {
        controller: 'in-process (test/support/edgelb.ts startTestEdgelb: startEdgelb with a temp state dir), LOG_LEVEL=info',
        certificates: 'EC P-256 leaves issued by one EC P-256 CA (openssl); TLS 1.3 with the client defaults',
        latency: `clock from just before the etcd put of certs/<new name> to the first handshake with that SNI that is served the new certificate; polls are new handshakes every ~${POLL_INTERVAL_MS} ms; ${WARMUP} warm-up samples; the controller is idle before each sample`,
        handshakes: `new TCP connection and full handshake per attempt (no session passed, so never resumed), no HTTP request; SNI random among the loaded names; ${options.clients} concurrent clients over worker threads; ${options.rounds} alternating rounds of ${options.durationS} s per case (1 certificate, then many), both load balancers running throughout; every ${CHECK_EVERY}th handshake compares the served certificate with the SNI name's; HAProxy CPU from /proc/<pid>/stat (master and workers)`,
        swap: 'startHttpsLoad: 4 new-connection clients and 2 keep-alive clients, GET through HAProxy to the backend, each verified against the CA and host name; the certs/swap vault entry replaced with a new certificate for the same name, next swap once a handshake sees the new one',
        percentiles: 'linear interpolation between closest ranks',
      },
      machine,
      setup: { certGenerationMs, readyWith1Ms: small.readyMs, readyWithManyMs: big.readyMs },
      results: { latency: [latencyFew, latencyMany], handshakes: [rateOne, rateMany], handshakeRatio: ratio, swap },
    };
    await mkdir(path.dirname(options.out), { recursive: true });
    await writeFile(options.out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${markdown(report, options)}\n`);
    log(`tls: JSON written to ${path.relative(process.cwd(), options.out) || options.out}`);
    return 0;
  } catch (error) {
    log(`tls: failed: ${(error as Error).stack ?? (error as Error).message}`);
    return aborted ? 130 : 1;
  } finally {
    log('tls: stopping the controllers, HAProxy, the backend and etcd');
    for (const lb of lbs.splice(0)) await lb.stopAll().catch((error: Error) => log(`  edgelb: ${error.message}`));
    await backend?.close();
    await etcd?.stop().catch((error: Error) => log(`  etcd: ${error.message}`));
    for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
    removeCertFiles();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// ---------------------------------------------------------------- (a) latency

async function latency(
  etcd: EtcdServer,
  lb: TestEdgelb,
  leaves: readonly LeafCert[],
  certsLoaded: number,
  checkAlive: () => void,
  log: (line: string) => void,
): Promise<LatencyResult> {
  const port = lb.config.httpsPort;
  const samples: number[] = [];
  const applyMs: number[] = [];
  const actions: Record<string, number> = {};
  let pollErrors = 0;
  for (let i = 0; i < leaves.length; i++) {
    checkAlive();
    await lb.controller.whenIdle();
    const leaf = leaves[i]!;
    const name = leaf.names[0]!;
    const want = fingerprintOf(leaf.certPem);
    const key = `certs/${name.split('.')[0]}`;
    const t0 = performance.now();
    const written = await putKeys(etcd, lb, { [key]: leaf.bundlePem });
    for (;;) {
      const sent = performance.now();
      try {
        if ((await handshake(port, { servername: name, timeoutMs: 2000 })).cert.fingerprint256 === want) break;
      } catch {
        pollErrors++;
      }
      if (sent - t0 > SAMPLE_TIMEOUT_MS) throw new Error(`${name} was not served within ${SAMPLE_TIMEOUT_MS} ms`);
      const wait = POLL_INTERVAL_MS - (performance.now() - sent);
      if (wait > 0) await sleep(wait);
    }
    const ms = performance.now() - t0;
    await settled(lb, written);
    const last = lb.controller.status().lastApply;
    if (i >= WARMUP) {
      samples.push(ms);
      if (last) {
        applyMs.push(last.durationMs);
        actions[last.action] = (actions[last.action] ?? 0) + 1;
      }
    }
    if ((i + 1 - WARMUP) % 10 === 0 && i >= WARMUP) log(`  ${i + 1 - WARMUP}/${leaves.length - WARMUP}`);
  }
  const sortedApply = [...applyMs].sort((a, b) => a - b);
  return {
    certsLoaded,
    ...summarize(samples),
    applyMedianMs: sortedApply.length > 0 ? round(quantile(sortedApply, 0.5)) : undefined,
    actions,
    pollErrors,
    samplesMs: samples.map(round),
  };
}

// ---------------------------------------------------------------- (b) handshakes per second

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const tls = require('node:tls');
const { port, names, fingerprints, concurrency, durationMs, checkEvery } = workerData;
let deadline = 0, ok = 0, failed = 0, wrong = 0, resumed = 0, checked = 0;
const errors = {};
const latencies = [];
function once() {
  return new Promise((resolve) => {
    const i = Math.floor(Math.random() * names.length);
    const started = performance.now();
    let done = false;
    const socket = tls.connect({ host: '127.0.0.1', port, servername: names[i], rejectUnauthorized: false }, () => {
      if (done) return;
      done = true;
      const now = performance.now();
      if (now <= deadline) {
        ok++;
        if (latencies.length < 50000) latencies.push(now - started);
        if (socket.isSessionReused()) resumed++;
        if (ok % checkEvery === 0) {
          checked++;
          if (socket.getPeerCertificate().fingerprint256 !== fingerprints[i]) wrong++;
        }
      }
      socket.destroy();
      resolve();
    });
    socket.on('error', (error) => {
      if (done) return;
      done = true;
      if (performance.now() <= deadline) {
        failed++;
        const key = error.code || error.message;
        errors[key] = (errors[key] || 0) + 1;
      }
      socket.destroy();
      resolve();
    });
  });
}
async function loop() { while (performance.now() < deadline) await once(); }
parentPort.once('message', async () => {
  deadline = performance.now() + durationMs;
  await Promise.all(Array.from({ length: concurrency }, loop));
  parentPort.postMessage({ ok, failed, wrong, resumed, checked, errors, latencies });
});
parentPort.postMessage('ready');
`;

interface WorkerResult {
  ok: number;
  failed: number;
  wrong: number;
  resumed: number;
  checked: number;
  errors: Record<string, number>;
  latencies: number[];
}

interface RateRun {
  readonly handshakes: number;
  readonly failures: number;
  readonly errors: Record<string, number>;
  readonly checked: number;
  readonly wrongCert: number;
  readonly resumed: number;
  readonly latencies: readonly number[];
  readonly haproxyCpuS: number | undefined;
  readonly clientCpuS: number;
  readonly threads: number;
}

/** One window of --duration seconds: every client thread starts on the same message. */
async function handshakeRate(lb: TestEdgelb, leaves: readonly LeafCert[], options: Options): Promise<RateRun> {
  const threads = Math.max(1, Math.min(options.clients, os.availableParallelism()));
  const names = leaves.map((l) => l.names[0]!);
  const fingerprints = leaves.map((l) => fingerprintOf(l.certPem));
  const durationMs = options.durationS * 1000;
  const workers = Array.from({ length: threads }, (_, t) => {
    const concurrency = Math.floor(options.clients / threads) + (t < options.clients % threads ? 1 : 0);
    return new Worker(WORKER, { eval: true, workerData: { port: lb.config.httpsPort, names, fingerprints, concurrency, durationMs, checkEvery: CHECK_EVERY } });
  });
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.once('message', () => resolve());
            w.once('error', reject);
          }),
      ),
    );
    const cpuBefore = await haproxyCpuSeconds(lb);
    const clientBefore = process.cpuUsage();
    const results = Promise.all(
      workers.map(
        (w) =>
          new Promise<WorkerResult>((resolve, reject) => {
            w.once('message', (m: WorkerResult) => resolve(m));
            w.once('error', reject);
          }),
      ),
    );
    for (const w of workers) w.postMessage('go');
    const all = await results;
    const client = process.cpuUsage(clientBefore);
    const cpuAfter = await haproxyCpuSeconds(lb);
    const errors: Record<string, number> = {};
    for (const r of all) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    return {
      handshakes: all.reduce((s, r) => s + r.ok, 0),
      failures: all.reduce((s, r) => s + r.failed, 0),
      errors,
      checked: all.reduce((s, r) => s + r.checked, 0),
      wrongCert: all.reduce((s, r) => s + r.wrong, 0),
      resumed: all.reduce((s, r) => s + r.resumed, 0),
      latencies: all.flatMap((r) => r.latencies),
      haproxyCpuS: cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined,
      clientCpuS: (client.user + client.system) / 1e6,
      threads,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function combineRates(certsLoaded: number, runs: readonly RateRun[], options: Options): RateResult {
  const handshakes = runs.reduce((s, r) => s + r.handshakes, 0);
  const durationS = options.durationS * runs.length;
  const cpu = runs.every((r) => r.haproxyCpuS !== undefined) ? runs.reduce((s, r) => s + r.haproxyCpuS!, 0) : undefined;
  const errors: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const { n: _n, ...handshakeLatency } = summarize(runs.flatMap((r) => r.latencies));
  return {
    certsLoaded,
    clients: options.clients,
    threads: runs[0]?.threads ?? 0,
    durationS,
    rounds: runs.map((r) => Math.round(r.handshakes / options.durationS)),
    handshakes,
    perSecond: Math.round(handshakes / durationS),
    failures: runs.reduce((s, r) => s + r.failures, 0),
    errors,
    checked: runs.reduce((s, r) => s + r.checked, 0),
    wrongCert: runs.reduce((s, r) => s + r.wrongCert, 0),
    resumed: runs.reduce((s, r) => s + r.resumed, 0),
    handshakeLatency,
    haproxyCpuS: cpu === undefined ? undefined : Math.round(cpu * 100) / 100,
    perHaproxyCpuS: cpu ? Math.round(handshakes / cpu) : undefined,
    clientCpuS: Math.round(runs.reduce((s, r) => s + r.clientCpuS, 0) * 100) / 100,
  };
}

/** utime + stime of HAProxy's master and its workers, in seconds (Linux /proc), or undefined. */
async function haproxyCpuSeconds(lb: TestEdgelb): Promise<number | undefined> {
  const master = lb.haproxy.pid;
  if (master === undefined) return undefined;
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = async (pid: string) => {
      const text = await readFile(`/proc/${pid}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      return { ppid: Number(fields[1]), cpu: Number(fields[11]) + Number(fields[12]) };
    };
    let total = 0;
    for (const pid of (await readdir('/proc')).filter((p) => /^[0-9]+$/.test(p))) {
      try {
        const s = await stat(pid);
        if (Number(pid) === master || s.ppid === master) total += s.cpu;
      } catch {
        // gone meanwhile
      }
    }
    return total / ticks;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- (c) swaps under load

async function swapUnderLoad(etcd: EtcdServer, lb: TestEdgelb, versions: readonly LeafCert[], ca: CertAuthority, checkAlive: () => void): Promise<SwapResult> {
  const port = lb.config.httpsPort;
  const serves = async (leaf: LeafCert, timeoutMs: number) => {
    const want = fingerprintOf(leaf.certPem);
    await waitFor(async () => (await handshake(port, { servername: 'swap.bench.test' })).cert.fingerprint256 === want, {
      timeoutMs,
      intervalMs: POLL_INTERVAL_MS,
      what: 'swap.bench.test to be served the new certificate',
    });
  };
  await settled(lb, await putKeys(etcd, lb, { 'certs/swap': versions[0]!.bundlePem }));
  await serves(versions[0]!, 10_000);
  await lb.controller.whenIdle();
  const before = lb.controller.status().counters;
  const load = startHttpsLoad({
    port,
    servername: 'swap.bench.test',
    backend: 'bench',
    newConnectionClients: 4,
    keepAliveClients: 2,
    ca: ca.certPem,
  });
  const visible: number[] = [];
  const t0 = performance.now();
  let stats: LoadStats;
  try {
    await waitFor(() => load.stats().requests >= 50, { timeoutMs: 10_000, what: 'the load to get going' });
    for (let i = 1; i < versions.length; i++) {
      checkAlive();
      const started = performance.now();
      const written = await putKeys(etcd, lb, { 'certs/swap': versions[i]!.bundlePem });
      await serves(versions[i]!, SAMPLE_TIMEOUT_MS);
      visible.push(performance.now() - started);
      await settled(lb, written);
      // The load runs on the new certificate for a moment before the next swap (bounded: one per swap).
      await sleep(100);
    }
  } finally {
    stats = await load.stop();
  }
  const after = lb.controller.status().counters;
  return {
    swaps: visible.length,
    durationS: Math.round((performance.now() - t0) / 100) / 10,
    requests: stats.requests,
    failures: stats.failures,
    newConnection: stats.newConnection,
    keepAlive: stats.keepAlive,
    errors: stats.errors,
    certsSeen: stats.certs.size,
    reloads: after.reloads - before.reloads,
    runtimeUpdates: after.runtimeUpdates - before.runtimeUpdates,
    swapVisibleMs: summarize(visible),
  };
}

// ---------------------------------------------------------------- figures

function summarize(values: readonly number[]): Stats {
  const sorted = [...values].sort((x, y) => x - y);
  return {
    n: sorted.length,
    medianMs: round(quantile(sorted, 0.5)),
    p90Ms: round(quantile(sorted, 0.9)),
    p99Ms: round(quantile(sorted, 0.99)),
    minMs: round(sorted[0] ?? NaN),
    maxMs: round(sorted[sorted.length - 1] ?? NaN),
    meanMs: round(sorted.reduce((sum, v) => sum + v, 0) / sorted.length),
  };
}

interface Report {
  readonly date: string;
  readonly command: string;
  readonly machine: ReturnType<typeof machineInfo>;
  readonly setup: { certGenerationMs: number; readyWith1Ms: number; readyWithManyMs: number };
  readonly results: {
    latency: readonly LatencyResult[];
    handshakes: readonly RateResult[];
    handshakeRatio: number;
    swap: SwapResult;
  };
}

function markdown(report: Report, options: Options): string {
  const { latency, handshakes, handshakeRatio, swap } = report.results;
  const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(1));
  const [one, many] = handshakes;
  const { machine } = report;
  return [
    '## TLS: certificate convergence, handshake rate, swaps under load',
    '',
    '| measure | certificates loaded | n | median | p90 | p99 | min | max | notes |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...latency.map(
      (l) =>
        `| (a) vault write → served to a client with that SNI (ms) | ${l.certsLoaded} | ${l.n} | ${ms(l.medianMs)} | ${ms(l.p90Ms)} | ${ms(l.p99Ms)} | ${ms(l.minMs)} | ${ms(l.maxMs)} | controller apply median ${ms(l.applyMedianMs)} ms; ${Object.entries(
          l.actions,
        )
          .map(([a, n]) => `${a} ×${n}`)
          .join(', ')} |`,
    ),
    ...handshakes.map(
      (h) =>
        `| (b) full TLS handshakes per second | ${h.certsLoaded} | ${h.handshakes} | **${h.perSecond}/s** | | | | | rounds ${h.rounds.map((r) => `${r}/s`).join(', ')}; ${h.clients} clients / ${h.threads} threads, ${h.durationS} s in all; handshake median ${ms(h.handshakeLatency.medianMs)} ms, p99 ${ms(h.handshakeLatency.p99Ms)} ms; HAProxy CPU ${h.haproxyCpuS ?? '-'} s (${h.perHaproxyCpuS ?? '-'} handshakes/CPU-s), client CPU ${h.clientCpuS} s; failures ${h.failures}, wrong cert ${h.wrongCert} of ${h.checked} checked, resumed ${h.resumed} |`,
    ),
    `| (b) ratio: ${many?.certsLoaded ?? options.many} certificates / 1 | | | **${handshakeRatio.toFixed(3)}** | | | | | per HAProxy CPU-s: ${one?.perHaproxyCpuS && many?.perHaproxyCpuS ? (many.perHaproxyCpuS / one.perHaproxyCpuS).toFixed(3) : '-'} |`,
    `| (c) certificate swaps under HTTPS load: requests / **failures** | 1 + swapped | ${swap.swaps} swaps | ${swap.requests} / **${swap.failures}** | | | | | ${swap.newConnection.requests} new-connection + ${swap.keepAlive.requests} keep-alive requests in ${swap.durationS} s; ${swap.certsSeen} certificates seen; reloads ${swap.reloads}, runtime updates ${swap.runtimeUpdates} |`,
    `| (c) swap: vault write → new certificate served, under load (ms) | 1 | ${swap.swapVisibleMs.n} | ${ms(swap.swapVisibleMs.medianMs)} | ${ms(swap.swapVisibleMs.p90Ms)} | ${ms(swap.swapVisibleMs.p99Ms)} | ${ms(swap.swapVisibleMs.minMs)} | ${ms(swap.swapVisibleMs.maxMs)} | |`,
    '',
    `- machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.os}`,
    `- node ${machine.node}; ${machine.haproxy}; ${machine.etcd}; ${machine.openssl}`,
    `- date: ${report.date}`,
    `- command: \`${report.command}\``,
    `- setup: certificates made in ${(report.setup.certGenerationMs / 1000).toFixed(1)} s; HTTPS serving ${(report.setup.readyWith1Ms / 1000).toFixed(1)} s after start with 1 certificate, ${(report.setup.readyWithManyMs / 1000).toFixed(1)} s with ${many?.certsLoaded ?? options.many}`,
    '- TLS 1.3, EC P-256 certificates; clients and HAProxy share the CPUs, so handshake rates compare the two cases rather than measure capacity',
  ].join('\n');
}
