/**
 * Convergence: how long from an etcd write until HAProxy routes a request by it.
 *
 * Against the real thing: etcd (Debian's etcd-server), the controller as a child process
 * (`node --import tsx src/main.ts run`, or dist/ with --from dist) with its supervised
 * HAProxy, and two local HTTP backends. Two kinds of change, N samples each, interleaved:
 *
 *   structural  one etcd txn puts a new service: virtual_hosts s<i>.bench.local + one upstream;
 *               then poll that host until the expected backend answers
 *   instance-remove  service `inst` has an instance on A and one on B; one etcd delete removes
 *               the one on B; the clock stops at the first of 10 polls in a row answered by A
 *               (the instance is drained through the runtime API, no reload)
 *   instance-add     one etcd put adds it back; the clock stops at the first answer from B. A new
 *               instance gets traffic only once proven healthy: by the controller's own first
 *               probe (milliseconds), not HAProxy's checks (one check interval, then `rise`)
 *
 * With --api v2, etcd serves its v2 API too (--enable-v2), the controller runs with ETCD_API=v2
 * and every write goes through /v2/keys as a Kontena grid's agents write: one form-encoded PUT
 * or DELETE per key (v2 has no transactions, so a structural change is two writes and its clock
 * starts before the first).
 *
 * The clock starts just before the etcd write is sent and stops when the first response
 * from the expected backend has been read. Polls go out about every 2 ms, each on a new
 * connection (after a reload only new connections reach the new worker), so a figure is
 * at most ~2 ms plus one request late. Between samples the bench waits until the controller
 * has logged the apply of that revision, so samples do not overlap.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { machineInfo, quantile, round } from './report.js';
import path from 'node:path';
import {
  freePort,
  REPO_ROOT,
  request,
  sleep,
  startController,
  startEtcd,
  startSampleBackend,
  waitFor,
  type LocalController,
  type LocalEtcd,
  type LogEntry,
  type SampleBackend,
} from '../scripts/lib/local-stack.js';
import { keyPath, v2Request, type V2Reply } from '../test/support/etcd-v2.js';

const DEFAULT_SAMPLES = 50;
const MAX_SAMPLES = 1000;
const WARMUP = 3;
const POLL_INTERVAL_MS = 2;
const SAMPLE_TIMEOUT_MS = 20_000;
const APPLY_LOG_TIMEOUT_MS = 5_000;
const SETTLE_MS = 50;
const TOTAL_BUDGET_MS = 20 * 60_000;

type Kind = 'structural' | 'instance-remove' | 'instance-add';

interface Options {
  readonly samples: number;
  readonly from: 'dist' | 'source';
  readonly out: string;
  readonly checkInterval: string;
  readonly api: 'v3' | 'v2';
}

/** How the bench writes entries: the v3 API (one txn per change) or v2 (one request per key). */
interface EntryWriter {
  /** Puts the keys (relative to the prefix); resolves with the revision (v3) or etcd index (v2) of the last write. */
  put(entries: Readonly<Record<string, string>>): Promise<string>;
  delete(key: string): Promise<string>;
}

function v3Writer(etcd: LocalEtcd, prefix: string): EntryWriter {
  const key = (k: string) => Buffer.from(`${prefix}/${k}`);
  return {
    async put(entries) {
      const written = await etcd.client.kv.txn({
        success: Object.entries(entries).map(([k, value]) => ({ request_put: { key: key(k), value: Buffer.from(value) } })),
      });
      return String(written.header.revision);
    },
    async delete(k) {
      return String((await etcd.client.delete().key(`${prefix}/${k}`)).header.revision);
    },
  };
}

function v2Writer(etcd: LocalEtcd, prefix: string): EntryWriter {
  const target = { endpoint: etcd.endpoint };
  const indexOf = (reply: V2Reply) => {
    if (reply.status >= 300) throw new Error(`etcd v2 answered ${reply.status}: ${reply.body.slice(0, 200)}`);
    return String((JSON.parse(reply.body) as { node: { modifiedIndex: number } }).node.modifiedIndex);
  };
  return {
    async put(entries) {
      let index = '0';
      for (const [k, value] of Object.entries(entries)) index = indexOf(await v2Request(target, 'PUT', keyPath(`${prefix}/${k}`), { form: { value } }));
      return index;
    },
    async delete(k) {
      return indexOf(await v2Request(target, 'DELETE', keyPath(`${prefix}/${k}`)));
    },
  };
}

interface Sample {
  readonly kind: Kind;
  readonly ms: number;
  readonly polls: number;
  /** Connection errors and answers other than 200/503 seen while polling (a seamless reload has none). */
  readonly disruptions: number;
  readonly revision: string;
  /** The controller's own apply duration for that revision (parse, render, haproxy -c, reload), if logged. */
  readonly applyMs: number | undefined;
}

interface Summary {
  readonly kind: Kind;
  readonly samples: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly meanMs: number;
  readonly applyMedianMs: number | undefined;
  readonly disruptions: number;
}

const USAGE = `usage: npm run bench -- convergence [--samples N] [--from source|dist] [--check-interval 2s] [--api v3|v2] [--out FILE]
  --samples N   samples per kind (default ${DEFAULT_SAMPLES}, at most ${MAX_SAMPLES}); ${WARMUP} warm-up samples per kind are not counted
  --from        run the controller from src/ through tsx (default) or from the built dist/
  --check-interval  KONTENA_LB_CHECK_INTERVAL for the controller (default 2s, edgelb's default)
  --api         write and watch through the etcd v3 API (default) or v2, as a Kontena grid does
                (default output then bench/results/convergence-v2.json)
  --out FILE    JSON results (default bench/results/convergence.json)`;

function parseArgs(args: readonly string[]): Options | string {
  let samples = DEFAULT_SAMPLES;
  let from: Options['from'] = 'source';
  let out: string | undefined;
  let checkInterval = '2s';
  let api: Options['api'] = 'v3';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    try {
      if (arg === '--samples' || arg === '-n') {
        samples = Number(value());
        if (!Number.isInteger(samples) || samples < 1 || samples > MAX_SAMPLES) return `--samples must be 1..${MAX_SAMPLES}`;
      } else if (arg?.startsWith('--samples=')) {
        samples = Number(arg.slice('--samples='.length));
        if (!Number.isInteger(samples) || samples < 1 || samples > MAX_SAMPLES) return `--samples must be 1..${MAX_SAMPLES}`;
      } else if (arg === '--from') {
        const v = value();
        if (v !== 'dist' && v !== 'source') return '--from must be source or dist';
        from = v;
      } else if (arg === '--check-interval') {
        checkInterval = value();
        if (!/^\d+(ms|s)$/.test(checkInterval)) return '--check-interval must be like 500ms or 2s';
      } else if (arg === '--api') {
        const v = value();
        if (v !== 'v3' && v !== 'v2') return '--api must be v3 or v2';
        api = v;
      } else if (arg === '--out') {
        out = path.resolve(value());
      } else if (arg === '--help' || arg === '-h') {
        return '';
      } else {
        return `unknown argument ${JSON.stringify(arg)}`;
      }
    } catch (error) {
      return (error as Error).message;
    }
  }
  out ??= path.join(REPO_ROOT, 'bench', 'results', api === 'v2' ? 'convergence-v2.json' : 'convergence.json');
  return { samples, from, out, checkInterval, api };
}

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args);
  if (typeof parsed === 'string') {
    (parsed ? process.stderr : process.stdout).write(`${parsed ? `convergence: ${parsed}\n` : ''}${USAGE}\n`);
    return parsed ? 2 : 0;
  }
  const options = parsed;
  const startedAt = new Date();
  const budgetEnds = Date.now() + TOTAL_BUDGET_MS;
  const log = (line: string) => process.stderr.write(`${line}\n`);

  let etcd: LocalEtcd | undefined;
  let controller: LocalController | undefined;
  const backends: SampleBackend[] = [];
  let tempDir: string | undefined;
  let aborted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    aborted = signal;
    log(`convergence: ${signal}, stopping after cleanup`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-bench-'));
    await mkdir(path.join(tempDir, 'etcd'), { mode: 0o700 });
    log('convergence: starting etcd, backends and the controller');
    etcd = await startEtcd(path.join(tempDir, 'etcd'), { enableV2: options.api === 'v2' });
    const a = await startSampleBackend('alpha');
    backends.push(a);
    const b = await startSampleBackend('bravo');
    backends.push(b);
    const httpPort = await freePort(undefined);
    const prefix = `/kontena/haproxy/bench-${process.pid}`;
    const applies = new Map<string, number | undefined>();
    process.env.KONTENA_LB_CHECK_INTERVAL = options.checkInterval; // inherited by the controller
    process.env.ETCD_API = options.api;
    controller = startController({
      from: options.from,
      etcdEndpoint: etcd.endpoint,
      etcdPath: prefix,
      httpPort,
      httpsPort: await freePort(undefined),
      statsPort: await freePort(undefined),
      stateDir: path.join(tempDir, 'state'),
      logLevel: 'info',
      onLog: (entry: LogEntry) => {
        if (typeof entry.revision === 'string' && (entry.action === 'reloaded' || entry.action === 'started' || entry.action === 'runtime')) {
          applies.set(entry.revision, typeof entry.durationMs === 'number' ? entry.durationMs : undefined);
        }
        const level = typeof entry.level === 'number' ? entry.level : 30;
        if (level >= 50) log(`  edgelb: ${String(entry.msg)} ${JSON.stringify({ ...entry, msg: undefined })}`);
      },
    });
    const lb = controller;
    const writer = options.api === 'v2' ? v2Writer(etcd, prefix) : v3Writer(etcd, prefix);
    const checkAlive = () => {
      if (aborted) throw new Error(`interrupted by ${aborted}`);
      if (lb.process.exited) throw new Error(`the controller exited:\n${lb.process.tail()}`);
      if (Date.now() > budgetEnds) throw new Error(`over the total time budget of ${TOTAL_BUDGET_MS / 60_000} min`);
    };

    let applyLogMissing = false;
    /** Waits until the controller has applied `revision` (or a later one), so the next sample starts from idle. */
    const settle = async (revision: string): Promise<number | undefined> => {
      const target = BigInt(revision);
      const applied = () => [...applies.keys()].some((r) => BigInt(r) >= target);
      if (!applyLogMissing) {
        try {
          await waitFor(applied, { timeoutMs: APPLY_LOG_TIMEOUT_MS, intervalMs: 2, what: 'apply log', bail: checkAlive });
        } catch (error) {
          if (aborted || lb.process.exited || Date.now() > budgetEnds) throw error;
          applyLogMissing = true;
          log(`convergence: no "config applied" log line with revision ${revision}; waiting a fixed 300 ms between samples from now on`);
        }
      }
      await sleep(applyLogMissing ? 300 : SETTLE_MS);
      return applies.get(revision);
    };

    /** Polls `host` every ~2 ms on fresh connections until `expected` answers; ms since t0. */
    const pollUntil = async (host: string, expected: string, t0: number) => {
      const deadline = t0 + SAMPLE_TIMEOUT_MS;
      let polls = 0;
      let disruptions = 0;
      for (;;) {
        const sent = performance.now();
        polls++;
        try {
          const reply = await request({ port: httpPort, path: '/bench', host, timeoutMs: 2000 });
          if (reply.backend === expected) return { ms: performance.now() - t0, polls, disruptions };
          if (reply.status !== 200 && reply.status !== 503) disruptions++;
        } catch {
          disruptions++;
        }
        if (performance.now() > deadline) throw new Error(`${host} did not answer from ${expected} within ${SAMPLE_TIMEOUT_MS} ms`);
        if (polls % 50 === 0) checkAlive();
        const wait = POLL_INTERVAL_MS - (performance.now() - sent);
        if (wait > 0) await sleep(wait);
      }
    };

    // The service the instance samples move between backends; its first apply starts HAProxy.
    const setupRevision = await writer.put({
      'services/inst/virtual_hosts': 'inst.bench.local',
      'services/inst/upstreams/u-a': a.address,
      'services/inst/upstreams/u-b': b.address,
    });
    for (const backend of [a, b]) {
      await waitFor(async () => (await request({ port: httpPort, path: '/', host: 'inst.bench.local', timeoutMs: 2000 })).backend === backend.name, {
        timeoutMs: 60_000,
        intervalMs: 25,
        what: `the controller to start HAProxy and route inst.bench.local to ${backend.name}`,
        bail: checkAlive,
      });
    }
    await settle(setupRevision);
    let structuralCount = 0;

    const sampleStructural = async (): Promise<Sample> => {
      const i = structuralCount++;
      const backend = i % 2 === 0 ? b : a;
      const name = `s${i}`;
      const host = `${name}.bench.local`;
      const t0 = performance.now();
      const revision = await writer.put({ [`services/${name}/virtual_hosts`]: host, [`services/${name}/upstreams/${name}-1`]: backend.address });
      const result = await pollUntil(host, backend.name, t0);
      return { kind: 'structural', ...result, revision, applyMs: await settle(revision) };
    };

    /** Polls until `count` answers in a row came from `expected`; ms from t0 to the first of them. */
    const pollStreak = async (host: string, expected: string, t0: number, count: number) => {
      const deadline = t0 + SAMPLE_TIMEOUT_MS;
      let polls = 0;
      let disruptions = 0;
      let streak = 0;
      let streakStart = 0;
      for (;;) {
        const sent = performance.now();
        polls++;
        try {
          const reply = await request({ port: httpPort, path: '/bench', host, timeoutMs: 2000 });
          if (reply.backend === expected) {
            if (streak++ === 0) streakStart = sent;
            if (streak >= count) return { ms: streakStart - t0, polls, disruptions };
          } else {
            streak = 0;
            if (reply.status !== 200) disruptions++;
          }
        } catch {
          disruptions++;
          streak = 0;
        }
        if (performance.now() > deadline) throw new Error(`${host} did not answer ${count} times in a row from ${expected} within ${SAMPLE_TIMEOUT_MS} ms`);
        if (polls % 50 === 0) checkAlive();
        const wait = POLL_INTERVAL_MS - (performance.now() - sent);
        if (wait > 0) await sleep(wait);
      }
    };

    const sampleRemove = async (): Promise<Sample> => {
      const t0 = performance.now();
      const revision = await writer.delete('services/inst/upstreams/u-b');
      const result = await pollStreak('inst.bench.local', a.name, t0, 10);
      return { kind: 'instance-remove', ...result, revision, applyMs: await settle(revision) };
    };

    const sampleAdd = async (): Promise<Sample> => {
      const t0 = performance.now();
      const revision = await writer.put({ 'services/inst/upstreams/u-b': b.address });
      const result = await pollUntil('inst.bench.local', b.name, t0);
      return { kind: 'instance-add', ...result, revision, applyMs: await settle(revision) };
    };

    log(`convergence: ${WARMUP} warm-up + ${options.samples} samples of each kind (controller from ${options.from}, etcd ${options.api} API)`);
    for (let i = 0; i < WARMUP; i++) {
      await sampleStructural();
      await sampleRemove();
      await sampleAdd();
    }
    const samples: Sample[] = [];
    for (let i = 0; i < options.samples; i++) {
      checkAlive();
      samples.push(await sampleStructural());
      samples.push(await sampleRemove());
      samples.push(await sampleAdd());
      if ((i + 1) % 10 === 0 || i + 1 === options.samples) log(`  ${i + 1}/${options.samples}`);
    }

    const summaries = (['structural', 'instance-remove', 'instance-add'] as const).map((kind) =>
      summarize(
        kind,
        samples.filter((s) => s.kind === kind),
      ),
    );
    const machine = machineInfo();
    const command = `npm run bench -- convergence${args.length > 0 ? ` ${args.join(' ')}` : ''}`;
    const report = {
      benchmark: 'convergence',
      date: startedAt.toISOString(),
      command,
      method: {
        clock: 'from just before the etcd write is sent to the first response read from the expected backend',
        pollIntervalMs: POLL_INTERVAL_MS,
        connections: 'a new TCP connection per poll',
        warmupSamplesPerKind: WARMUP,
        controller: options.from === 'dist' ? 'node dist/src/main.js run (child process)' : 'node --import tsx src/main.ts run (child process)',
        percentiles: 'linear interpolation between closest ranks',
        structural: 'one etcd txn: services/s<i>/virtual_hosts = s<i>.bench.local and services/s<i>/upstreams/s<i>-1 = backend',
        instanceRemove: 'one etcd delete of services/inst/upstreams/u-b (instances on A and B); clock stops at the first of 10 consecutive answers from A',
        instanceAdd:
          "one etcd put of services/inst/upstreams/u-b = B; clock stops at the first answer from B, which gets traffic once the controller's probe has proven it healthy",
        checkInterval: options.checkInterval,
        etcdApi:
          options.api === 'v2'
            ? "v2: etcd --enable-v2, ETCD_API=v2, one form-encoded PUT/DELETE per key as a Kontena grid's agents write (structural: two PUTs)"
            : 'v3',
      },
      machine,
      results: summaries,
      samples,
    };
    await mkdir(path.dirname(options.out), { recursive: true });
    await writeFile(options.out, `${JSON.stringify(report, null, 2)}\n`);

    process.stdout.write(`${markdown(summaries, machine, report.date, command, options.api)}\n`);
    log(`convergence: JSON written to ${path.relative(process.cwd(), options.out) || options.out}`);
    return 0;
  } catch (error) {
    log(`convergence: failed: ${(error as Error).message}`);
    return aborted ? 130 : 1;
  } finally {
    log('convergence: stopping the controller, HAProxy, backends and etcd');
    await controller?.stop(15_000).catch((error: Error) => log(`  controller: ${error.message}`));
    await Promise.all(backends.map((backend) => backend.close()));
    await etcd?.stop().catch((error: Error) => log(`  etcd: ${error.message}`));
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function summarize(kind: Kind, samples: readonly Sample[]): Summary {
  const sorted = samples.map((s) => s.ms).sort((x, y) => x - y);
  const applyTimes = samples
    .map((s) => s.applyMs)
    .filter((ms): ms is number => ms !== undefined)
    .sort((x, y) => x - y);
  return {
    kind,
    samples: sorted.length,
    medianMs: round(quantile(sorted, 0.5)),
    p90Ms: round(quantile(sorted, 0.9)),
    p99Ms: round(quantile(sorted, 0.99)),
    minMs: round(sorted[0] ?? NaN),
    maxMs: round(sorted[sorted.length - 1] ?? NaN),
    meanMs: round(sorted.reduce((sum, ms) => sum + ms, 0) / sorted.length),
    applyMedianMs: applyTimes.length > 0 ? round(quantile(applyTimes, 0.5)) : undefined,
    disruptions: samples.reduce((sum, s) => sum + s.disruptions, 0),
  };
}

/** Issue 13's targets for the p99 (instance added; new service), shown beside the figures. */
const P99_TARGET_MS: Partial<Record<Kind, number>> = { structural: 400, 'instance-add': 100 };

const LABELS: Record<Kind, string> = {
  structural: 'structural (new service + host + upstream; reload)',
  'instance-remove': 'instance removed (runtime API)',
  'instance-add': 'instance added (runtime API, proven by the first probe)',
};

function markdown(summaries: readonly Summary[], machine: ReturnType<typeof machineInfo>, date: string, command: string, api: Options['api']): string {
  const cell = (value: number | undefined) => (value === undefined ? '-' : value.toFixed(1));
  return [
    `## Convergence: etcd ${api} write → first request routed by it`,
    '',
    '| change | samples | median ms | p90 ms | p99 ms | p99 target ms | min ms | max ms | controller apply, median ms | disruptions |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...summaries.map((s) => {
      const target = P99_TARGET_MS[s.kind];
      const verdict = target === undefined ? '-' : `${target} (${s.p99Ms <= target ? 'met' : 'missed'})`;
      return `| ${LABELS[s.kind]} | ${s.samples} | ${cell(s.medianMs)} | ${cell(s.p90Ms)} | ${cell(s.p99Ms)} | ${verdict} | ${cell(s.minMs)} | ${cell(s.maxMs)} | ${cell(s.applyMedianMs)} | ${s.disruptions} |`;
    }),
    '',
    `- machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.os}`,
    `- node ${machine.node}; ${machine.haproxy}; ${machine.etcd}`,
    `- date: ${date}`,
    `- command: \`${command}\``,
    `- polling every ${POLL_INTERVAL_MS} ms on new connections; "disruptions" counts failed polls or answers other than 200/503 (expected 0)`,
  ].join('\n');
}
