/**
 * Overhead: requests per second through the load balancer against the same backend hit
 * directly, in one run.
 *
 * One node:http backend (its own worker thread) behind the real controller and HAProxy (one
 * service, one instance, host overhead.bench.local). --rounds rounds; each round measures both
 * sides, one after the other, the order alternating between rounds so slow drift in what else
 * the machine does falls on both alike. A side: --concurrency keep-alive clients in closed loops
 * (raw HTTP/1.1 over loopback, in worker threads), --warmup-ms not counted, then --duration
 * seconds counted. The figure is the median of the per-round ratios (LB / direct), plus latency
 * p50/p99 each side.
 *
 * The generator, the backend, HAProxy and the controller share the machine's CPUs; the
 * generator threads' event-loop utilisation and each party's CPU time per round are reported,
 * so it shows which one was the bottleneck.
 */
import { startBackends } from './lib/backends.js';
import { commandLine, footer, runBench, spread, type ReportHeader } from './lib/harness.js';
import { explain, parseOptions, type IntOption } from './lib/args.js';
import { startLoad, type LoadResult } from './lib/http-load.js';
import { cpuSeconds, haproxyProcesses } from './lib/processes.js';
import { startStack } from './lib/stack.js';
import { request, sleep, waitFor } from '../scripts/lib/local-stack.js';

const NAME = 'overhead';
const OPTIONS = {
  rounds: { flag: '--rounds', help: 'rounds, each measuring both sides', default: 5, min: 1, max: 50 },
  durationS: { flag: '--duration', help: 'seconds counted per side and round', default: 3, min: 1, max: 60 },
  concurrency: { flag: '--concurrency', help: 'keep-alive clients (closed loops)', default: 16, min: 1, max: 256 },
  threads: { flag: '--threads', help: 'load-generator worker threads (0: one per CPU)', default: 0, min: 0, max: 16 },
  warmupMs: { flag: '--warmup-ms', help: 'ms of load before counting starts, per side and round', default: 500, min: 0, max: 10_000 },
} satisfies Record<string, IntOption>;

const HOST = 'overhead.bench.local';
const TOTAL_BUDGET_MS = 20 * 60_000;

/** lb: default settings; lb-quiet: the same with `option dontlog-normal` (no access-log line for a clean request). */
type Side = 'lb' | 'lb-quiet' | 'direct';
const SIDES: readonly Side[] = ['lb', 'lb-quiet', 'direct'];

interface SideRound {
  readonly side: Side;
  readonly round: number;
  readonly perSecond: number;
  readonly requests: number;
  readonly failed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly generatorBusy: readonly number[];
  /** CPU seconds over the counted window. */
  readonly cpuS: { haproxy: number; controller: number; benchProcess: number };
}

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseOptions(NAME, args, OPTIONS);
  if (typeof parsed === 'string') return explain(NAME, parsed, OPTIONS);
  const o = parsed;

  return runBench(NAME, TOTAL_BUDGET_MS, async (ctx) => {
    const { log } = ctx;
    log(`${NAME}: starting a backend, etcd and the controller`);
    const backends = await startBackends(['target']);
    ctx.defer(() => backends.close());
    const backend = backends.byName('target');
    const stacks = {
      lb: await startStack({ name: NAME, from: o.from, log, readHaproxyLines: false }),
      'lb-quiet': await startStack({ name: `${NAME}-quiet`, from: o.from, log, readHaproxyLines: false, env: { KONTENA_LB_CUSTOM_SETTINGS: 'option dontlog-normal' } }),
    };
    ctx.defer(() => stacks.lb.stop());
    ctx.defer(() => stacks['lb-quiet'].stop());
    const check = () => {
      ctx.check();
      for (const stack of Object.values(stacks)) stack.checkAlive();
    };
    for (const stack of Object.values(stacks)) {
      await stack.waitApplied(await stack.write({
        'services/overhead/virtual_hosts': HOST,
        'services/overhead/upstreams/target': backend.address,
      }), 60_000);
      await waitFor(async () => (await request({ port: stack.httpPort, path: '/', host: HOST, timeoutMs: 2000 })).backend === 'target', {
        timeoutMs: 30_000, intervalMs: 50, what: `${HOST} to be served by the backend`, bail: check,
      });
    }

    const haproxyPids = async (controllerPid: number) => {
      const { master, workers } = await haproxyProcesses(controllerPid);
      return [...(master ? [master.pid] : []), ...workers.map((w) => w.pid)];
    };

    const measure = async (side: Side, round: number): Promise<SideRound> => {
      const stack = side === 'direct' ? undefined : stacks[side];
      const controllerPid = stack?.controller.process.pid;
      const load = await startLoad({
        port: stack ? stack.httpPort : backend.port,
        targets: [{ host: stack ? HOST : backend.address, path: '/', servedBy: ['target'] }],
        keepAliveLoops: o.concurrency,
        newConnectionLoops: 0,
        ...(o.threads > 0 ? { threads: o.threads } : {}),
        maxDurationMs: o.warmupMs + o.durationS * 1000 + 30_000,
      });
      let result: LoadResult;
      let cpu: SideRound['cpuS'];
      try {
        await sleep(o.warmupMs);
        const pids = controllerPid === undefined ? [] : await haproxyPids(controllerPid);
        const controllerPids = controllerPid === undefined ? [] : [controllerPid];
        const before = { haproxy: await cpuSeconds(pids), controller: await cpuSeconds(controllerPids), bench: await cpuSeconds([process.pid]) };
        await load.reset();
        await sleep(o.durationS * 1000);
        result = await load.stats();
        const after = { haproxy: await cpuSeconds(pids), controller: await cpuSeconds(controllerPids), bench: await cpuSeconds([process.pid]) };
        cpu = {
          haproxy: round2(after.haproxy - before.haproxy),
          controller: round2(after.controller - before.controller),
          benchProcess: round2(after.bench - before.bench),
        };
      } finally {
        await load.stop();
      }
      return {
        side, round,
        perSecond: result.perSecond,
        requests: result.requests,
        failed: result.failed,
        p50Ms: result.latency.p50Ms,
        p99Ms: result.latency.p99Ms,
        generatorBusy: result.generatorBusy,
        cpuS: cpu,
      };
    };

    const rounds: SideRound[] = [];
    for (let r = 1; r <= o.rounds; r++) {
      check();
      // The order rotates from round to round, so each side goes first, second and last alike.
      const order = SIDES.map((_, i) => SIDES[(i + r - 1) % SIDES.length]!);
      for (const side of order) rounds.push(await measure(side, r));
      const rate = (s: Side) => rounds.find((x) => x.round === r && x.side === s)!.perSecond;
      log(`  round ${r}/${o.rounds}: through the LB ${rate('lb')}/s, LB without access log ${rate('lb-quiet')}/s, direct ${rate('direct')}/s (ratio ${(rate('lb') / rate('direct')).toFixed(3)})`);
    }

    const results = summarize(rounds, o.durationS);
    return {
      out: o.out,
      command: commandLine(NAME, args),
      method: {
        stack: `etcd 3.4 and two controllers (${o.from === 'dist' ? 'node dist/src/main.js run' : 'node --import tsx src/main.ts run'}) as child processes, each with its HAProxy and one service with one instance (the same backend): "lb" with default settings (HAProxy's access log on, every line through the controller's stdout), "lb-quiet" with KONTENA_LB_CUSTOM_SETTINGS="option dontlog-normal" (clean requests not logged); both run throughout, only one is loaded at a time`,
        backend: 'one node:http server in a worker thread of the bench process: 200, 18-byte text body, keep-alive',
        load: `${o.concurrency} keep-alive clients in closed loops (no pause), raw HTTP/1.1 GET over loopback from ${o.threads || 'one per CPU'} worker threads (bench/lib/http-load.ts, a Node load generator); the same clients and target path for both sides, only the port (and Host) differ`,
        rounds: `${o.rounds} rounds; in each, the three paths one after the other (order rotating between rounds), each ${o.warmupMs} ms warm-up then ${o.durationS} s counted`,
        ratio: 'requests/s through the LB divided by requests/s direct, in the same round; the median of those',
        latency: 'p50/p99 of successful requests from a log-bucket histogram (1 % buckets), per side over all rounds and per round',
        cpu: 'utime+stime from /proc over each counted window: HAProxy (master and workers) and the controller of the loaded LB, and the bench process (generator threads + backend thread + main thread, which reads the controllers\' stdout without parsing HAProxy\'s lines)',
        generatorBusy: 'event-loop utilisation of each generator thread over the counted window; near 1 means the generator itself limits the rate',
      },
      results,
      markdown: (header) => markdown(results, header, o),
    };
  });
}

function summarize(rounds: readonly SideRound[], durationS: number) {
  const roundNumbers = [...new Set(rounds.map((r) => r.round))];
  const rate = (n: number, s: Side) => rounds.find((r) => r.round === n && r.side === s)!.perSecond;
  const ratiosOf = (s: Side) => roundNumbers.map((n) => rate(n, s) / rate(n, 'direct'));
  const perSide = (s: Side) => {
    const list = rounds.filter((r) => r.side === s);
    const requests = list.reduce((sum, r) => sum + r.requests, 0);
    const cpu = (k: keyof SideRound['cpuS']) => round2(list.reduce((sum, r) => sum + r.cpuS[k], 0));
    return {
      perSecond: spread(list.map((r) => r.perSecond)),
      p50Ms: spread(list.map((r) => r.p50Ms)),
      p99Ms: spread(list.map((r) => r.p99Ms)),
      requests,
      failed: list.reduce((sum, r) => sum + r.failed, 0),
      generatorBusy: spread(list.flatMap((r) => r.generatorBusy)),
      cpuS: { haproxy: cpu('haproxy'), controller: cpu('controller'), benchProcess: cpu('benchProcess') },
      cpuMsPerThousandRequests: {
        haproxy: round2((1e6 * cpu('haproxy')) / requests),
        controller: round2((1e6 * cpu('controller')) / requests),
        benchProcess: round2((1e6 * cpu('benchProcess')) / requests),
      },
      countedS: list.length * durationS,
    };
  };
  const ratio = (s: Side) => Math.round(spread(ratiosOf(s)).median * 1000) / 1000;
  return {
    ratio: ratio('lb'),
    ratios: ratiosOf('lb').map((r) => Math.round(r * 1000) / 1000),
    ratioWithoutAccessLog: ratio('lb-quiet'),
    ratiosWithoutAccessLog: ratiosOf('lb-quiet').map((r) => Math.round(r * 1000) / 1000),
    lb: perSide('lb'),
    lbWithoutAccessLog: perSide('lb-quiet'),
    direct: perSide('direct'),
    rounds,
  };
}

function markdown(r: ReturnType<typeof summarize>, header: ReportHeader, o: { rounds: number; durationS: number; concurrency: number }): string {
  const row = (name: string, s: ReturnType<typeof summarize>['lb']) =>
    `| ${name} | ${s.perSecond.median} (${s.perSecond.min}–${s.perSecond.max}) | ${s.p50Ms.median} | ${s.p99Ms.median} | ${s.failed} | ${s.cpuMsPerThousandRequests.haproxy} | ${s.cpuMsPerThousandRequests.controller} | ${s.cpuMsPerThousandRequests.benchProcess} | ${s.generatorBusy.median} (max ${s.generatorBusy.max}) |`;
  return [
    '## Overhead: through the load balancer vs the backend directly',
    '',
    '| path | requests/s, median of rounds (min–max) | p50 ms | p99 ms | failed | HAProxy CPU ms / 1k req | controller CPU ms / 1k req | bench process CPU ms / 1k req | generator event-loop busy |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    row('through edgelb (default settings)', r.lb),
    row('through edgelb, `option dontlog-normal`', r.lbWithoutAccessLog),
    row('direct to the backend', r.direct),
    '',
    `**Ratio LB / direct: ${r.ratio.toFixed(3)}** (median of per-round ratios ${r.ratios.map((x) => x.toFixed(3)).join(', ')}); without the access log of clean requests: ${r.ratioWithoutAccessLog.toFixed(3)} (${r.ratiosWithoutAccessLog.map((x) => x.toFixed(3)).join(', ')})`,
    '',
    `- ${o.rounds} rounds × ${o.durationS} s per path, the three paths in rotating order within each round; ${o.concurrency} keep-alive clients (Node load generator, raw HTTP/1.1, worker threads); latency columns are the median over rounds of each round's p50/p99`,
    '- one node:http backend in the bench process; generator, backend, HAProxy and the controller share the CPUs. With default settings every request\'s HAProxy access-log line goes through the controller (stdout → pino JSON), the controller CPU column; the second row sets `KONTENA_LB_CUSTOM_SETTINGS="option dontlog-normal"`',
    ...footer(header),
  ].join('\n');
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
