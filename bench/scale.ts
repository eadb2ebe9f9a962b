/**
 * Scale: 1,000 and 10,000 services with 3 instances each, with ACME off and on.
 *
 * For each size and ACME mode, against a real etcd and the real controller (a child process with
 * its HAProxy; with ACME on, a local pebble as the ACME directory: the manager elects itself
 * leader, announces the replica and watches its keys, while no service asks for a certificate):
 *   1. all entries are written to etcd first (transactions of 128 keys), then the controller
 *      starts: "first apply" is the controller's own logged duration of its first apply (read,
 *      parse, render, haproxy -c, start), and "start → routed" the time from spawning it to the
 *      first request routed to a sample backend;
 *   2. memory once it serves: controller RSS, HAProxy RSS and PSS (master + workers), and the
 *      controller's RSS again after the instance changes;
 *   3. instance changes at that size, N samples each, one at a time:
 *        remove  delete the instance on backend B of service s<i> (it has one on A and one on B),
 *                clock stops at the first of 10 requests in a row answered by A only;
 *        add     put a new instance on B into service s<i>, clock stops at the first request
 *                answered by B (the controller's first probe of it passed), and, separately,
 *                when HAProxy's runtime (`show servers state`) lists it;
 *      plus the controller's own logged duration of each of those applies (durationMs, to 0.1 ms:
 *      from taking the snapshot to the runtime commands sent; the 25 ms quiet time before it is not in it).
 * Upstreams other than the sample backends point at closed loopback ports (HAProxy marks them
 * down), and KONTENA_LB_CHECK_INTERVAL is 30s so 30,000 health checks do not saturate 2 CPUs.
 *
 * HAProxy reserves one file descriptor per health-checked server: 10,000 × 3 needs an open-files
 * limit above 30,241. Where the hard limit is lower (`ulimit -Hn`), a size is given as
 * services×instances, e.g. `--sizes 1000x3,6000x3,10000x1`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sendCommand } from '../src/haproxy/master-cli.js';
import {
  freePort,
  REPO_ROOT,
  request,
  startController,
  startEtcd,
  startSampleBackend,
  waitFor,
  type LocalController,
  type LogEntry,
} from '../scripts/lib/local-stack.js';
import { commandLine, footer, runBench, spread, type Spread } from './lib/harness.js';
import { haproxyProcesses, memoryOf, totalMemory } from './lib/processes.js';
import { startPebble, type Pebble } from '../test/support/pebble.js';

const USAGE = `usage: npm run bench -- scale [--sizes 1000x3,10000x3] [--acme off,on] [--samples N] [--from source|dist] [--out FILE]
  --sizes     services×instances each, comma-separated (×3 when left out), default 1000x3,10000x3
  --acme      ACME off, on (a local pebble), or both: default off,on
  --samples   instance changes of each kind per size, default 30
  --from      controller from src/ via tsx (default) or from dist/`;

interface SizeResult {
  readonly acme: boolean;
  readonly services: number;
  readonly instances: number;
  readonly entries: number;
  readonly firstApplyMs: number | undefined;
  readonly startToRoutedMs: number;
  readonly controllerRssMiB: number;
  readonly controllerRssAfterMiB: number;
  readonly haproxyRssMiB: number;
  readonly haproxyPssMiB: number | undefined;
  readonly haproxyProcesses: number;
  readonly removeMs: Spread;
  readonly addMs: Spread;
  readonly addListedMs: Spread;
  readonly controllerApplyMs: Spread;
  readonly reloadsDuringChanges: number;
  /** Every sample in order (remove, add, and the applies of both interleaved), to see warm-up and pauses. */
  readonly samples: {
    readonly removeMs: readonly number[];
    readonly addMs: readonly number[];
    readonly addListedMs: readonly number[];
    readonly controllerApplyMs: readonly number[];
  };
}

export async function run(args: readonly string[]): Promise<number> {
  let sizes: { services: number; instances: number }[] = [
    { services: 1000, instances: 3 },
    { services: 10_000, instances: 3 },
  ];
  let samples = 30;
  let acmeModes = [false, true];
  let from: 'source' | 'dist' = 'source';
  let out = path.join(REPO_ROOT, 'bench', 'results', 'scale.json');
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = args[i + 1];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    } else if (arg === '--sizes' && value) {
      sizes = value.split(',').map((size) => {
        const [services, instances = '3'] = size.split('x');
        return { services: Number(services), instances: Number(instances) };
      });
      i++;
    } else if (arg === '--acme' && value && /^(off|on)(,(off|on))?$/.test(value)) {
      acmeModes = value.split(',').map((mode) => mode === 'on');
      i++;
    } else if (arg === '--samples' && value) {
      samples = Number(value);
      i++;
    } else if (arg === '--from' && (value === 'source' || value === 'dist')) {
      from = value;
      i++;
    } else if (arg === '--out' && value) {
      out = path.resolve(value);
      i++;
    } else {
      process.stderr.write(`scale: unknown or incomplete argument ${JSON.stringify(arg)}\n${USAGE}\n`);
      return 2;
    }
  }
  const badSize = (n: number, min: number, max: number) => !Number.isInteger(n) || n < min || n > max;
  if (sizes.some((z) => badSize(z.services, 10, 20_000) || badSize(z.instances, 1, 5)) || badSize(samples, 1, 200)) {
    process.stderr.write(`scale: sizes must be 10..20000 services × 1..5 instances, samples 1..200\n${USAGE}\n`);
    return 2;
  }

  return runBench('scale', 30 * 60_000, async (ctx) => {
    const results: SizeResult[] = [];
    for (const size of sizes) {
      for (const acme of acmeModes) {
        ctx.check();
        results.push(await measureSize(size.services, size.instances, samples, acme, from, ctx.log, ctx.check));
      }
    }
    return {
      out,
      command: commandLine('scale', args),
      method: {
        firstApply: 'entries written to etcd before the controller starts; its own logged durationMs of the first apply (etcd read → HAProxy started)',
        startToRouted: 'spawn of `edgelb run` → first request answered by a sample backend',
        memory: 'VmRSS of the controller once serving and after the instance changes; VmRSS and Pss summed over the HAProxy master and workers, once serving',
        acme: 'on: KONTENA_LB_ACME_EMAIL/DIRECTORY/DIRECTORY_CA pointing at a local pebble; no service asks for a certificate (the per-change cost of ACME being on, not of an order)',
        controllerApply:
          "the controller's own logged durationMs of each runtime apply (0.1 ms): from taking the snapshot to the runtime commands sent, after the 25 ms quiet time",
        remove: 'etcd delete of an instance on backend B → first of 10 consecutive requests answered by A only',
        add: "etcd put of a new instance on B → the first request answered by B (it gets traffic once the controller's first probe of it passes); also → listed by HAProxy's runtime (show servers state)",
        checks:
          'KONTENA_LB_CHECK_INTERVAL=30s; instances other than the sample backends point at closed loopback ports; the changes start once the controller has logged nothing for 1 s (HAProxy reports those instances DOWN at the start) and has no first probe pending (/status)',
      },
      results: { sizes: results },
      markdown: (header) =>
        [
          '## Scale: services × instances',
          '',
          '| services | instances | ACME | first apply ms | start → routed ms | controller RSS MiB: serving / after changes | HAProxy RSS / PSS MiB | remove → traffic: median / p99 ms | add → traffic: median / p99 ms | add → listed: median / p99 ms | controller apply: median / p99 ms | reloads during changes |',
          '|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
          ...results.map(
            (r) =>
              `| ${r.services} | ${r.instances} | ${r.acme ? 'on' : 'off'} | ${r.firstApplyMs ?? '-'} | ${Math.round(r.startToRoutedMs)} | ${r.controllerRssMiB} / ${r.controllerRssAfterMiB} | ${r.haproxyRssMiB} / ${r.haproxyPssMiB ?? '-'} | ${r.removeMs.median} / ${r.removeMs.p99} | ${r.addMs.median} / ${r.addMs.p99} | ${r.addListedMs.median} / ${r.addListedMs.p99} | ${r.controllerApplyMs.median} / ${r.controllerApplyMs.p99} | ${r.reloadsDuringChanges} |`,
          ),
          '',
          ...footer(header),
          `- ${samples} samples of each instance change per size, one at a time`,
        ].join('\n'),
    };
  });
}

async function measureSize(
  size: number,
  perService: number,
  samples: number,
  acme: boolean,
  from: 'source' | 'dist',
  log: (line: string) => void,
  check: () => void,
): Promise<SizeResult> {
  const tempDir = await mkdtemp(path.join(os.tmpdir(), `edgelb-bench-scale-${size}-`));
  let controller: LocalController | undefined;
  let pebble: Pebble | undefined;
  const [a, b] = [await startSampleBackend('alpha'), await startSampleBackend('bravo')];
  let etcd: Awaited<ReturnType<typeof startEtcd>> | undefined;
  try {
    await mkdir(path.join(tempDir, 'etcd'), { mode: 0o700 });
    etcd = await startEtcd(path.join(tempDir, 'etcd'));
    const prefix = `/kontena/haproxy/scale-${size}-${process.pid}`;
    const closedPort = await freePort();
    const sampled = Math.min(samples, size);
    const entries: [string, string][] = [];
    for (let i = 0; i < size; i++) {
      entries.push([`services/s${i}/virtual_hosts`, `s${i}.scale.local`]);
      // The first `sampled` services serve from A and B; the rest point at a closed port.
      const ups =
        i < sampled
          ? [a.address, b.address, a.address].slice(0, Math.max(2, perService)) // one on A and one on B at least
          : Array.from({ length: perService }, (_, j) => `127.0.${j}.${(i % 250) + 1}:${closedPort}`);
      for (const [j, address] of ups.entries()) entries.push([`services/s${i}/upstreams/s${i}-${j}`, address]);
    }
    log(`scale ${size}: writing ${entries.length} keys to etcd`);
    for (let i = 0; i < entries.length; i += 128) {
      await etcd.client.kv.txn({
        success: entries.slice(i, i + 128).map(([key, value]) => ({ request_put: { key: Buffer.from(`${prefix}/${key}`), value: Buffer.from(value) } })),
      });
    }

    const applies: { revision: string; action: string; durationMs: number | undefined }[] = [];
    let lastLogAt = performance.now();
    let acmeLeads = false;
    const httpPort = await freePort(undefined);
    const otherPorts = { https: await freePort(undefined), stats: await freePort(undefined), admin: await freePort() };
    const stateDir = path.join(tempDir, 'state');
    const env: Record<string, string> = { KONTENA_LB_CHECK_INTERVAL: '30s' };
    if (acme) {
      pebble = await startPebble({ httpPort });
      const caFile = path.join(tempDir, 'pebble-ca.pem');
      await writeFile(caFile, pebble.caPem);
      Object.assign(env, { KONTENA_LB_ACME_EMAIL: 'bench@example.com', KONTENA_LB_ACME_DIRECTORY: pebble.directoryUrl, KONTENA_LB_ACME_DIRECTORY_CA: caFile });
    }
    const spawnedAt = performance.now();
    controller = withEnv(env, () =>
      startController({
        from,
        etcdEndpoint: etcd!.endpoint,
        etcdPath: prefix,
        httpPort,
        httpsPort: otherPorts.https,
        statsPort: otherPorts.stats,
        adminPort: otherPorts.admin,
        stateDir,
        logLevel: 'info',
        onLog: (entry: LogEntry) => {
          lastLogAt = performance.now();
          if (entry.msg === 'ACME leader: this replica orders certificates') acmeLeads = true;
          if (typeof entry.revision === 'string' && typeof entry.action === 'string') {
            applies.push({ revision: entry.revision, action: entry.action, durationMs: typeof entry.durationMs === 'number' ? entry.durationMs : undefined });
          }
          // HAProxy's own alerts ("no server available" for the services on closed ports) are expected here.
          if (typeof entry.level === 'number' && entry.level >= 50 && entry.haproxy === undefined)
            log(`  edgelb: ${String(entry.msg)} ${String(entry.err ?? '')}`);
        },
      }),
    );
    const lb = controller;
    const alive = () => {
      check();
      if (lb.process.exited) throw new Error(`the controller exited:\n${lb.process.tail()}`);
    };
    await waitFor(async () => (await request({ port: httpPort, path: '/', host: 's0.scale.local', timeoutMs: 2000 })).backend !== undefined, {
      timeoutMs: 120_000,
      intervalMs: 20,
      what: `s0.scale.local to be routed with ${size} services`,
      bail: alive,
    });
    const startToRoutedMs = performance.now() - spawnedAt;
    // The apply's log line may arrive just after HAProxy already answers.
    await waitFor(() => applies.length > 0, { timeoutMs: 10_000, what: 'the first apply log line', bail: alive });
    const firstApplyMs = applies[0]?.durationMs;
    if (applies[0]?.action !== 'started') log(`scale ${size}: the first apply was ${JSON.stringify(applies[0])}`);
    log(`scale ${size} (ACME ${acme ? 'on' : 'off'}): first apply ${firstApplyMs} ms, spawn → routed ${Math.round(startToRoutedMs)} ms`);
    if (acme) await waitFor(() => acmeLeads, { timeoutMs: 30_000, what: 'the ACME manager to lead', bail: alive });
    // HAProxy reports every instance on a closed port as DOWN (two lines each) through the
    // controller's log just after the start: a burst that is not part of any change.
    await waitFor(() => performance.now() - lastLogAt > 1000, { timeoutMs: 120_000, intervalMs: 100, what: 'the start-up log burst to end', bail: alive });
    // ...and the controller probes every server once at a start (those on closed ports fail).
    await waitFor(
      async () => {
        const status = (await (await fetch(`http://127.0.0.1:${otherPorts.admin}/status`)).json()) as { probes?: { pending: number } };
        return (status.probes?.pending ?? 0) === 0;
      },
      { timeoutMs: 120_000, intervalMs: 200, what: 'the first probes of the start to finish', bail: alive },
    );

    const haproxy = await haproxyProcesses(lb.process.pid);
    const pids = [haproxy.master, ...haproxy.workers].filter((p) => p !== undefined).map((p) => p.pid);
    const haproxyMemory = await totalMemory(pids);
    const controllerMemory = await memoryOf(lb.process.pid);

    const socket = path.join(stateDir, 'haproxy.sock');
    const removeMs: number[] = [];
    const addMs: number[] = [];
    const addListedMs: number[] = [];
    const applyMs: number[] = [];
    const reloadsBefore = applies.filter((x) => x.action === 'reloaded').length;
    for (let i = 0; i < sampled; i++) {
      alive();
      const host = `s${i}.scale.local`;
      // remove: the instance on B goes; the clock stops at the first of 10 answers in a row from A.
      let t0 = performance.now();
      const removed = await etcd.client.delete().key(`${prefix}/services/s${i}/upstreams/s${i}-1`);
      let streakStart = 0;
      let streak = 0;
      await waitFor(
        async () => {
          const sentAt = performance.now();
          const reply = await request({ port: httpPort, path: '/', host, timeoutMs: 2000 });
          if (reply.backend === 'alpha') {
            if (streak === 0) streakStart = sentAt;
            streak++;
          } else {
            streak = 0;
          }
          return streak >= 10;
        },
        { timeoutMs: 20_000, intervalMs: 1, what: `${host} to stop reaching bravo`, bail: alive },
      );
      removeMs.push(streakStart - t0);
      applyMs.push(await appliedDuration(applies, String(removed.header.revision), alive));

      // add: a new instance on B, until HAProxy lists it, and until a request reaches it (the
      // controller's first probe of it has passed).
      t0 = performance.now();
      const added = await etcd.client.put(`${prefix}/services/s${i}/upstreams/s${i}-new`).value(b.address);
      let listedAt: number | undefined;
      let reachedAt = 0;
      await waitFor(
        async () => {
          if (listedAt === undefined && (await sendCommand(socket, `show servers state http-s${i}`)).includes(` s${i}-new `)) listedAt = performance.now();
          const sentAt = performance.now();
          if ((await request({ port: httpPort, path: '/', host, timeoutMs: 2000 })).backend !== 'bravo') return false;
          reachedAt = sentAt;
          return true;
        },
        { timeoutMs: 20_000, intervalMs: 1, what: `${host} to reach s${i}-new on bravo`, bail: alive },
      );
      addListedMs.push((listedAt ?? reachedAt) - t0);
      addMs.push(reachedAt - t0);
      applyMs.push(await appliedDuration(applies, String(added.header.revision), alive));
      if ((i + 1) % 10 === 0) log(`scale ${size}: ${i + 1}/${sampled} samples`);
    }
    const controllerAfter = await memoryOf(lb.process.pid);
    const mib = (kib: number | undefined) => (kib === undefined ? undefined : Math.round(kib / 1024));
    return {
      acme,
      services: size,
      instances: entries.filter(([key]) => key.includes('/upstreams/')).length,
      entries: entries.length,
      firstApplyMs,
      startToRoutedMs,
      controllerRssMiB: mib(controllerMemory?.rssKiB) ?? 0,
      controllerRssAfterMiB: mib(controllerAfter?.rssKiB) ?? 0,
      haproxyRssMiB: mib(haproxyMemory.rssKiB) ?? 0,
      haproxyPssMiB: mib(haproxyMemory.pssKiB),
      haproxyProcesses: haproxyMemory.processes,
      removeMs: spread(removeMs),
      addMs: spread(addMs),
      addListedMs: spread(addListedMs),
      controllerApplyMs: spread(applyMs),
      reloadsDuringChanges: applies.filter((x) => x.action === 'reloaded').length - reloadsBefore,
      samples: { removeMs: removeMs.map(Math.round), addMs: addMs.map(Math.round), addListedMs: addListedMs.map(Math.round), controllerApplyMs: applyMs },
    };
  } finally {
    await controller?.stop(30_000).catch((error: Error) => log(`  controller: ${error.message}`));
    await Promise.all([a.close(), b.close()]);
    await pebble?.stop().catch((error: Error) => log(`  pebble: ${error.message}`));
    await etcd?.stop().catch((error: Error) => log(`  etcd: ${error.message}`));
    await rm(tempDir, { recursive: true, force: true });
  }
}

async function appliedDuration(
  applies: readonly { revision: string; action: string; durationMs: number | undefined }[],
  revision: string,
  alive: () => void,
): Promise<number> {
  const target = BigInt(revision);
  const record = await waitFor(() => applies.find((x) => BigInt(x.revision) >= target), {
    timeoutMs: 20_000,
    intervalMs: 2,
    what: `the apply of revision ${revision}`,
    bail: alive,
  });
  return record.durationMs ?? NaN;
}

/** startController reads its extra settings from the environment it inherits. */
function withEnv<T>(env: Readonly<Record<string, string>>, body: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return body();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
