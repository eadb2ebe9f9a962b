/**
 * Reload hygiene: hundreds of structural reloads under constant load; do old HAProxy workers
 * pile up, does memory grow, does a request fail?
 *
 * Against the real thing: etcd, the controller as a child process with its supervised HAProxy,
 * plain HTTP backends (one worker thread). One loaded service (two instances, host
 * load0.bench.local) under --keepalive + --new closed-loop clients. Each reload is one etcd
 * transaction that adds a service r<n> or removes the one added before (so the config does not
 * grow), written once the controller has logged the previous apply.
 *
 * Every --sample-every reloads (and before the first, after the last, and once the load has
 * stopped and old workers have had up to --settle-s seconds to exit): the master CLI's
 * `show proc` (current and old workers, the master's reload counter), the HAProxy processes
 * under the controller (from /proc), their VmRSS and Pss (smaps_rollup) summed, the master's
 * alone, and the controller's.
 */
import { startBackends } from './lib/backends.js';
import { commandLine, footer, runBench, spread, type ReportHeader } from './lib/harness.js';
import { explain, parseOptions, type IntOption } from './lib/args.js';
import { startLoad, type LoadResult } from './lib/http-load.js';
import { haproxyProcesses, memoryOf, showProc, totalMemory } from './lib/processes.js';
import { startStack, type ApplyRecord, type Stack } from './lib/stack.js';
import { request, sleep, waitFor } from '../scripts/lib/local-stack.js';

const NAME = 'reload-hygiene';
const OPTIONS = {
  reloads: { flag: '--reloads', help: 'structural reloads under load', default: 500, min: 1, max: 5000 },
  sampleEvery: { flag: '--sample-every', help: 'reloads between two samples', default: 50, min: 1, max: 5000 },
  keepalive: { flag: '--keepalive', help: 'keep-alive clients', default: 8, min: 0, max: 64 },
  fresh: { flag: '--new', help: 'new-connection clients', default: 8, min: 0, max: 64 },
  settleS: { flag: '--settle-s', help: 'seconds the old workers get to exit once the load stops', default: 30, min: 1, max: 600 },
} satisfies Record<string, IntOption>;

const HOST = 'load0.bench.local';
const WARMUP_MS = 1500;
const APPLY_TIMEOUT_MS = 30_000;
const TOTAL_BUDGET_MS = 40 * 60_000;

interface Sample {
  readonly label: string;
  readonly reloads: number;
  readonly atS: number;
  /** From the master CLI's `show proc`; undefined if it did not answer. */
  readonly showProc: { currentWorkers: number; oldWorkers: number; masterReloads: number } | undefined;
  /** HAProxy processes under the controller, from /proc: the master and every worker, old ones included. */
  readonly haproxyProcesses: number;
  readonly haproxyRssKiB: number;
  readonly haproxyPssKiB: number | undefined;
  readonly masterRssKiB: number | undefined;
  readonly controllerRssKiB: number | undefined;
  readonly requests: number;
  readonly failed: number;
}

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseOptions(NAME, args, OPTIONS);
  if (typeof parsed === 'string') return explain(NAME, parsed, OPTIONS);
  const o = parsed;
  if (o.keepalive + o.fresh === 0) return explain(NAME, 'at least one client (--keepalive or --new)', OPTIONS);

  return runBench(NAME, TOTAL_BUDGET_MS, async (ctx) => {
    const { log } = ctx;
    log(`${NAME}: starting backends, etcd and the controller`);
    const backends = await startBackends(['load0-a', 'load0-b', 'extra']);
    ctx.defer(() => backends.close());
    const stack: Stack = await startStack({ name: NAME, from: o.from, log });
    ctx.defer(() => stack.stop());
    const check = () => {
      ctx.check();
      stack.checkAlive();
    };
    await stack.waitApplied(
      await stack.write({
        'services/load0/virtual_hosts': HOST,
        'services/load0/upstreams/a': backends.byName('load0-a').address,
        'services/load0/upstreams/b': backends.byName('load0-b').address,
      }),
      60_000,
    );
    await waitFor(async () => (await request({ port: stack.httpPort, path: '/', host: HOST, timeoutMs: 2000 })).status === 200, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: `${HOST} to answer 200`,
      bail: check,
    });

    const controllerPid = stack.controller.process.pid;
    const t0 = Date.now();
    let latest = { requests: 0, failed: 0 };
    const sample = async (label: string, reloads: number): Promise<Sample> => {
      const proc = await showProc(stack.masterSocket).catch(() => undefined);
      const { master, workers } = await haproxyProcesses(controllerPid);
      const pids = [...(master ? [master.pid] : []), ...workers.map((w) => w.pid)];
      const memory = await totalMemory(pids);
      return {
        label,
        reloads,
        atS: Math.round((Date.now() - t0) / 100) / 10,
        showProc: proc && { currentWorkers: proc.currentWorkers, oldWorkers: proc.oldWorkers, masterReloads: proc.reloads },
        haproxyProcesses: pids.length,
        haproxyRssKiB: memory.rssKiB,
        haproxyPssKiB: memory.pssKiB,
        masterRssKiB: master ? (await memoryOf(master.pid))?.rssKiB : undefined,
        controllerRssKiB: (await memoryOf(controllerPid))?.rssKiB,
        ...latest,
      };
    };

    log(`${NAME}: load: ${o.keepalive} keep-alive + ${o.fresh} new-connection clients on ${HOST}`);
    const load = await startLoad({
      port: stack.httpPort,
      targets: [{ host: HOST, path: '/', servedBy: ['load0-'] }],
      keepAliveLoops: o.keepalive,
      newConnectionLoops: o.fresh,
      maxDurationMs: TOTAL_BUDGET_MS,
    });
    let loadResult: LoadResult | undefined;
    ctx.defer(async () => {
      if (!loadResult) await load.stop().catch(() => undefined);
    });
    await sleep(WARMUP_MS);
    const samples: Sample[] = [await sample('start', 0)];
    const applied: (ApplyRecord | undefined)[] = [];
    let added: string | undefined;
    let next = 0;
    /** HAProxy processes counted right after each reload was applied (cheap: /proc only). */
    const processesAfterReload: number[] = [];
    for (let i = 1; i <= o.reloads; i++) {
      check();
      let writes: Record<string, string | null>;
      if (added === undefined) {
        added = `r${next++}`;
        writes = { [`services/${added}/virtual_hosts`]: `${added}.bench.local`, [`services/${added}/upstreams/x`]: backends.byName('extra').address };
      } else {
        writes = { [`services/${added}/virtual_hosts`]: null, [`services/${added}/upstreams/x`]: null };
        added = undefined;
      }
      const revision = await stack.write(writes);
      try {
        applied.push(await stack.waitApplied(revision, APPLY_TIMEOUT_MS));
      } catch (error) {
        stack.checkAlive();
        applied.push(undefined);
        log(`  reload ${i}: ${(error as Error).message}`);
      }
      const { master, workers } = await haproxyProcesses(controllerPid);
      processesAfterReload.push((master ? 1 : 0) + workers.length);
      if (i % o.sampleEvery === 0 || i === o.reloads) {
        const s = await load.stats();
        latest = { requests: s.requests, failed: s.failed };
        const taken = await sample(i === o.reloads ? 'end' : `after ${i}`, i);
        samples.push(taken);
        log(
          `  ${i}/${o.reloads} reloads: ${taken.haproxyProcesses} HAProxy processes (old workers ${taken.showProc?.oldWorkers ?? '?'}), HAProxy RSS ${mib(taken.haproxyRssKiB)} MiB, controller RSS ${mib(taken.controllerRssKiB)} MiB; ${s.requests} requests, ${s.failed} failed`,
        );
      }
    }
    loadResult = await load.stop();
    latest = { requests: loadResult.requests, failed: loadResult.failed };

    // Old workers end once their last connection has (and hard-stop-after is 1 h): give them --settle-s.
    const settleStarted = Date.now();
    let settled: Sample | undefined;
    try {
      await waitFor(
        async () => {
          const s = await sample('settled', o.reloads);
          settled = s;
          return s.haproxyProcesses === 2 && (s.showProc === undefined || s.showProc.oldWorkers === 0);
        },
        { timeoutMs: o.settleS * 1000, intervalMs: 200, what: 'old HAProxy workers to exit', bail: check },
      );
    } catch (error) {
      stack.checkAlive();
      log(`  ${(error as Error).message}`);
    }
    const settleMs = Date.now() - settleStarted;
    if (settled) samples.push({ ...settled, label: settled.haproxyProcesses === 2 ? 'settled' : `not settled after ${o.settleS} s` });
    // HAProxy's last access-log lines may still be in the controller's stdout pipe.
    await sleep(1000);
    const info = await stack.showInfo();
    const results = summarize({
      samples,
      applied,
      processesAfterReload,
      load: loadResult,
      stack,
      settleMs,
      settledOk: settled?.haproxyProcesses === 2,
      info,
      sampleEvery: o.sampleEvery,
    });
    log(`${NAME}: ${loadResult.requests} requests, ${loadResult.failed} failed`);
    return {
      out: o.out,
      command: commandLine(NAME, args),
      method: {
        stack: `etcd 3.4 and the controller (${o.from === 'dist' ? 'node dist/src/main.js run' : 'node --import tsx src/main.ts run'}) as child processes with default settings (KONTENA_LB_HARD_STOP_AFTER 1h), HAProxy supervised by the controller in master-worker mode; backends: node:http servers in one worker thread`,
        load: `${o.keepalive} keep-alive clients + ${o.fresh} new-connection clients, closed loops with no pause, raw HTTP/1.1 over loopback from worker threads (bench/lib/http-load.ts), all to one service with two instances; a request fails on a connection error, a connection closed before the complete response, a 10 s timeout, a status other than 2xx`,
        reloads: `${o.reloads} structural changes, one etcd transaction each: add a service r<n> (virtual host + one upstream), then remove it, and so on; the next written once the controller has logged the previous apply (timeout ${APPLY_TIMEOUT_MS / 1000} s)`,
        processCount: 'right after every reload was applied: processes named haproxy below the controller in /proc',
        samples: `every ${o.sampleEvery} reloads, and before the first, after the last, and after the load stopped (polled every 200 ms for up to ${o.settleS} s until only the master and one worker are left): master CLI "show proc" (current/old workers, the master's reload counter); HAProxy processes = processes named haproxy below the controller in /proc (master + all workers); memory = VmRSS (/proc/<pid>/status) and Pss (/proc/<pid>/smaps_rollup) summed over them; the master's VmRSS alone; the controller's VmRSS`,
        percentiles: 'apply times interpolated between closest ranks; request latency from a log-bucket histogram (1 % buckets)',
      },
      results,
      markdown: (header) => markdown(results, header, o),
    };
  });
}

interface SummaryInput {
  readonly samples: readonly Sample[];
  readonly applied: readonly (ApplyRecord | undefined)[];
  readonly processesAfterReload: readonly number[];
  readonly load: LoadResult;
  readonly stack: Stack;
  readonly settleMs: number;
  readonly settledOk: boolean;
  readonly info: Record<string, string>;
  readonly sampleEvery: number;
}

function summarize(input: SummaryInput) {
  const { samples, applied, load } = input;
  const start = samples[0]!;
  const end = samples.find((s) => s.label === 'end') ?? samples[samples.length - 1]!;
  const last = samples[samples.length - 1]!;
  const max = (pick: (s: Sample) => number | undefined) => Math.max(...samples.map((s) => pick(s) ?? -Infinity));
  const actions: Record<string, number> = {};
  for (const a of applied) actions[a?.action ?? 'unconfirmed'] = (actions[a?.action ?? 'unconfirmed'] ?? 0) + 1;
  const durations = applied.map((a) => a?.durationMs).filter((d): d is number => d !== undefined);
  const windows = [];
  for (let i = 0; i < durations.length; i += input.sampleEvery) windows.push(spread(durations.slice(i, i + input.sampleEvery)).median);
  const connectionErrors = Object.entries(load.reasons)
    .filter(([r]) => !r.startsWith('status ') && r !== 'wrong backend')
    .reduce((s, [, n]) => s + n, 0);
  return {
    reloads: applied.length,
    appliedAs: actions,
    masterReloadCounter: { start: start.showProc?.masterReloads, end: last.showProc?.masterReloads },
    reloadApplyMs: spread(durations),
    reloadApplyMedianMsPerWindow: windows,
    requests: load.requests,
    failed: load.failed,
    connectionErrors,
    load: { ...load, failures: load.failures.slice(0, 100) },
    processes: {
      start: start.haproxyProcesses,
      end: end.haproxyProcesses,
      max: max((s) => s.haproxyProcesses),
      maxOldWorkers: max((s) => s.showProc?.oldWorkers),
      /** Counted right after every reload: how often 2 (master + 1 worker), 3, ... processes were seen. */
      afterEachReload: countBy(input.processesAfterReload),
      maxAfterAnyReload: Math.max(...input.processesAfterReload),
      afterLoad: last.haproxyProcesses,
      settled: input.settledOk,
      settleMs: input.settleMs,
    },
    memoryKiB: {
      haproxyRss: { start: start.haproxyRssKiB, end: end.haproxyRssKiB, max: max((s) => s.haproxyRssKiB), afterLoad: last.haproxyRssKiB },
      haproxyPss: { start: start.haproxyPssKiB, end: end.haproxyPssKiB, max: max((s) => s.haproxyPssKiB), afterLoad: last.haproxyPssKiB },
      masterRss: { start: start.masterRssKiB, end: end.masterRssKiB, max: max((s) => s.masterRssKiB), afterLoad: last.masterRssKiB },
      controllerRss: { start: start.controllerRssKiB, end: end.controllerRssKiB, max: max((s) => s.controllerRssKiB), afterLoad: last.controllerRssKiB },
    },
    haproxyLog: input.stack.haproxyLog(),
    droppedLogsCurrentWorker: input.info.DroppedLogs === undefined ? undefined : Number(input.info.DroppedLogs),
    controllerProblems: input.stack.controllerProblems.slice(0, 50),
    samples,
  };
}

function markdown(r: ReturnType<typeof summarize>, header: ReportHeader, o: { keepalive: number; fresh: number; settleS: number }): string {
  const m = (kib: number | undefined) => mib(kib);
  const mem = (name: string, v: { start: number | undefined; end: number | undefined; max: number; afterLoad: number | undefined }) =>
    `| ${name} | ${m(v.start)} | ${m(v.end)} | ${m(v.max)} | ${m(v.afterLoad)} |`;
  const reasons =
    Object.entries(r.load.reasons)
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ') || 'none';
  return [
    '## Reload hygiene: structural reloads under load',
    '',
    '| measure | start | after the last reload | max | after the load stopped |',
    '|---|---:|---:|---:|---:|',
    `| HAProxy processes (master + workers) | ${r.processes.start} | ${r.processes.end} | ${r.processes.max} | ${r.processes.afterLoad}${r.processes.settled ? ` (within ${(r.processes.settleMs / 1000).toFixed(1)} s)` : ` (**not** back to 2 within ${o.settleS} s)`} |`,
    `| old workers (show proc), max | | | ${r.processes.maxOldWorkers} | |`,
    `| HAProxy processes right after each reload, max | | | ${r.processes.maxAfterAnyReload} | |`,
    mem('HAProxy RSS, all processes, MiB', r.memoryKiB.haproxyRss),
    mem('HAProxy Pss, all processes, MiB', r.memoryKiB.haproxyPss),
    mem('HAProxy master RSS, MiB', r.memoryKiB.masterRss),
    mem('controller RSS, MiB', r.memoryKiB.controllerRss),
    '',
    `- HAProxy processes counted right after each reload: ${Object.entries(r.processes.afterEachReload)
      .map(([n, c]) => `${n} processes ${c}×`)
      .join(', ')}`,
    `- reloads: ${r.reloads} (${Object.entries(r.appliedAs)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )}); master reload counter ${r.masterReloadCounter.start ?? '?'} → ${r.masterReloadCounter.end ?? '?'}; controller apply per reload median ${r.reloadApplyMs.median} ms, p99 ${r.reloadApplyMs.p99} ms; median per ${r.reloadApplyMedianMsPerWindow.length > 1 ? 'window' : 'run'}: ${r.reloadApplyMedianMsPerWindow.join(', ')} ms`,
    `- requests: ${r.requests} (keep-alive ${r.load.keepalive.requests}, new connection ${r.load.new.requests}), **failed ${r.failed}** (connection errors ${r.connectionErrors}): ${reasons}; latency p50 / p99 / max ${r.load.latency.p50Ms} / ${r.load.latency.p99Ms} / ${r.load.latency.maxMs} ms`,
    `- HAProxy access log: ${r.haproxyLog.accessLines} lines (${Object.entries(r.haproxyLog.byStatusClass)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}); abnormal terminations ${
      Object.entries(r.haproxyLog.abnormalTermination)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ') || 'none'
    }; alerts ${r.haproxyLog.alerts}`,
    `- ${o.keepalive} keep-alive + ${o.fresh} new-connection clients, closed loops; each reload adds or removes a service, written once the previous apply was logged; memory: VmRSS counts pages shared between the master and its workers once per process, Pss shares them out`,
    ...footer(header),
  ].join('\n');
}

function countBy(values: readonly number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[String(v)] = (counts[String(v)] ?? 0) + 1;
  return counts;
}

function mib(kib: number | undefined): string {
  return kib === undefined || !Number.isFinite(kib) ? '-' : (kib / 1024).toFixed(1);
}
