/**
 * Data plane: requests per second and latency through edgelb (the real controller and its
 * HAProxy) against a plain HAProxy with an equivalent hand-written config, the backend directly,
 * Caddy and nginx as reverse proxies, in one run; and edgelb with its access log off against the
 * plain HAProxy without one.
 *
 * One nginx backend answers a small static `ok`. wrk (C, keep-alive, fixed connections and
 * threads) loads one path at a time. --rounds rounds; in each, every path once, the order
 * rotated from round to round so drift in what else the shared machine does falls on all alike;
 * per path: --warmup seconds of load not counted, then --duration seconds counted. The figures
 * are per-round ratios and their medians, and the median of each path's requests/s.
 *
 * Access logs are on for every proxy (except the two "off" paths), each written by the proxy
 * itself to a file: edgelb's to the file its stdout is (HAProxy inherits it), the plain
 * HAProxy's to the file its stdout is, nginx's and Caddy's to their access_log / log files.
 * The lines written per request are counted, so a proxy that did not log shows.
 */
import { open, readFile, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { locateExecutable } from '../src/config.js';
import { commandLine, runBench } from './lib/harness.js';
import { explain, parseOptions, type IntOption } from './lib/args.js';
import { cpuSeconds, descendants, haproxyProcesses } from './lib/processes.js';
import {
  startBackend,
  startCaddy,
  startNginxProxy,
  startPlainHaproxy,
  waitServed,
  BACKEND_NAME,
  CADDY_BIN,
  NGINX_BIN,
  type Running,
} from './lib/reference-proxies.js';
import { startStack, type Stack } from './lib/stack.js';
import { runWrk } from './lib/wrk.js';
import { freePort } from '../scripts/lib/local-stack.js';
import { markdown, summarize, SIDES, type Side, type SideRound } from './data-plane-report.js';

const NAME = 'data-plane';
const OPTIONS = {
  rounds: { flag: '--rounds', help: 'rounds, each measuring every path once', default: 5, min: 1, max: 30 },
  durationS: { flag: '--duration', help: 'seconds counted per path and round', default: 5, min: 1, max: 60 },
  warmupS: { flag: '--warmup', help: 'seconds of load before counting, per path and round', default: 1, min: 0, max: 30 },
  connections: { flag: '--connections', help: 'wrk keep-alive connections', default: 32, min: 1, max: 1024 },
  threads: { flag: '--threads', help: 'wrk threads', default: 2, min: 1, max: 16 },
} satisfies Record<string, IntOption>;

const HOST = 'dataplane.bench.local';
const TOTAL_BUDGET_MS = 40 * 60_000;

interface Path {
  readonly port: number;
  /** Where its access-log lines go; undefined: none. */
  readonly accessLog: string | undefined;
  /** The proxy's processes (for CPU), and the controller's for edgelb. */
  proxyPids(): Promise<number[]>;
  controllerPids(): number[];
}

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseOptions(NAME, args, OPTIONS);
  if (typeof parsed === 'string') return explain(NAME, parsed, OPTIONS);
  const o = parsed;

  return runBench(NAME, TOTAL_BUDGET_MS, async (ctx) => {
    const { log } = ctx;
    const haproxyBin = locateExecutable('haproxy', process.env.PATH ?? '');
    for (const [tool, bin] of [
      ['haproxy', haproxyBin],
      ['wrk', locateExecutable('wrk', process.env.PATH ?? '')],
      ['nginx', NGINX_BIN],
      ['caddy', CADDY_BIN],
    ] as const) {
      if (bin === undefined || locateExecutable(bin, '') === undefined) throw new Error(`${tool} is not installed (bash scripts/setup.sh installs it)`);
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-bench-data-plane-'));
    ctx.defer(() => rm(dir, { recursive: true, force: true }));
    const started: Running[] = [];
    const stacks = {} as Record<'edgelb' | 'edgelb-off', Stack>;
    const stopLater = (r: Running) => {
      started.push(r);
      ctx.defer(() => r.stop());
      return r;
    };
    const check = () => {
      ctx.check();
      for (const r of started) if (r.child.exited) throw new Error(`${r.name} exited:\n${r.child.tail()}`);
      for (const s of Object.values(stacks)) s.checkAlive();
    };

    log(`${NAME}: starting the nginx backend, two edgelb stacks, two plain HAProxys, Caddy and nginx`);
    const backend = stopLater(await startBackend(path.join(dir, 'backend'), await freePort()));
    for (const side of ['edgelb', 'edgelb-off'] as const) {
      stacks[side] = await startStack({
        name: `${NAME}-${side}`,
        from: o.from,
        log,
        stdoutFile: path.join(dir, `${side}.stdout`),
        env: { KONTENA_LB_ACCESS_LOG: side === 'edgelb' ? 'text' : 'off' },
      });
      ctx.defer(() => stacks[side].stop());
      await stacks[side].write({ 'services/web/virtual_hosts': HOST, 'services/web/upstreams/nginx': `127.0.0.1:${backend.port}` });
    }
    const plain = stopLater(await startPlainHaproxy(path.join(dir, 'haproxy'), await freePort(), backend.port, haproxyBin!, true, HOST));
    const plainOff = stopLater(await startPlainHaproxy(path.join(dir, 'haproxy-off'), await freePort(), backend.port, haproxyBin!, false, HOST));
    const caddy = stopLater(await startCaddy(path.join(dir, 'caddy'), await freePort(), backend.port));
    const nginx = stopLater(await startNginxProxy(path.join(dir, 'nginx'), await freePort(), backend.port));
    for (const side of ['edgelb', 'edgelb-off'] as const) await waitServed(stacks[side].httpPort, HOST, side, check);
    for (const r of [plain, plainOff, caddy, nginx]) await waitServed(r.port, HOST, r.name, check);

    const treePids = async (root: number) => [root, ...(await descendants(root)).map((p) => p.pid)];
    const edgelbPath = (stack: Stack, accessLog: string | undefined): Path => ({
      port: stack.httpPort,
      accessLog,
      proxyPids: async () => {
        const { master, workers } = await haproxyProcesses(stack.controller.process.pid);
        return [...(master ? [master.pid] : []), ...workers.map((w) => w.pid)];
      },
      controllerPids: () => [stack.controller.process.pid],
    });
    const processPath = (r: Running): Path => ({ port: r.port, accessLog: r.accessLog, proxyPids: () => treePids(r.child.pid), controllerPids: () => [] });
    const paths: Record<Side, Path> = {
      edgelb: edgelbPath(stacks.edgelb, path.join(dir, 'edgelb.stdout')),
      haproxy: processPath(plain),
      'edgelb-off': edgelbPath(stacks['edgelb-off'], undefined),
      'haproxy-off': processPath(plainOff),
      caddy: processPath(caddy),
      nginx: processPath(nginx),
      direct: { port: backend.port, accessLog: undefined, proxyPids: async () => [], controllerPids: () => [] },
    };
    const measure = async (side: Side, round: number): Promise<SideRound> => {
      const p = paths[side];
      const load = { port: p.port, host: HOST, connections: o.connections, threads: o.threads };
      if (o.warmupS > 0) await runWrk({ ...load, durationS: o.warmupS });
      // Only what is written during the counted window is counted. The files are never truncated:
      // HAProxy sets its stdout's flags to O_NONBLOCK alone, dropping O_APPEND, so it would go on
      // writing at its old offset past a hole.
      const logFrom = p.accessLog ? (await stat(p.accessLog)).size : 0;
      const proxyPids = await p.proxyPids();
      const backendPids = await treePids(backend.child.pid);
      const before = {
        proxy: await cpuSeconds(proxyPids),
        controller: await cpuSeconds(p.controllerPids()),
        backend: await cpuSeconds(backendPids),
        machine: await machineCpu(),
      };
      const result = await runWrk({ ...load, durationS: o.durationS });
      const after = {
        proxy: await cpuSeconds(proxyPids),
        controller: await cpuSeconds(p.controllerPids()),
        backend: await cpuSeconds(backendPids),
        machine: await machineCpu(),
      };
      const logged = p.accessLog ? await accessLines(p.accessLog, logFrom, side === 'edgelb') : { lines: 0, bytes: 0 };
      return {
        side,
        round,
        perSecond: round1(result.requestsPerSecond),
        requests: result.requests,
        errors: result.errors,
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        cpuS: {
          proxy: round2(after.proxy - before.proxy),
          controller: round2(after.controller - before.controller),
          backend: round2(after.backend - before.backend),
        },
        machineBusy: round2((after.machine.busy - before.machine.busy) / Math.max(1, after.machine.total - before.machine.total)),
        accessLogLines: logged.lines,
        accessLogBytes: logged.bytes,
      };
    };

    const rounds: SideRound[] = [];
    for (let r = 1; r <= o.rounds; r++) {
      // The order rotates from round to round, so each path goes first, in the middle and last alike,
      // and runs backwards every other round, so of two paths measured one after the other (edgelb
      // and the plain HAProxy), each goes first as often: the first of a pair measured lower in trials.
      const rotated = SIDES.map((_, i) => SIDES[(i + r - 1) % SIDES.length]!);
      const order = r % 2 === 0 ? rotated.reverse() : rotated;
      for (const side of order) {
        check();
        rounds.push(await measure(side, r));
      }
      const rate = (s: Side) => rounds.find((x) => x.round === r && x.side === s)!.perSecond;
      log(`  round ${r}/${o.rounds}: ${SIDES.map((s) => `${s} ${rate(s)}/s`).join(', ')}; edgelb/haproxy ${(rate('edgelb') / rate('haproxy')).toFixed(3)}`);
    }
    check();

    const results = summarize(rounds);
    return {
      out: o.out,
      command: commandLine(NAME, args),
      method: {
        paths: {
          edgelb: `the real controller (${o.from === 'dist' ? 'node dist/src/main.js run' : 'node --import tsx src/main.ts run'}) with etcd 3.4 and its HAProxy (bench/lib/stack.ts), one service (Host ${HOST}) with the backend as its one instance; KONTENA_LB_ACCESS_LOG=text: HAProxy writes httplog lines to the controller's stdout, which is a file`,
          haproxy:
            "the same HAProxy binary, master-worker, with a hand-written config (bench/lib/reference-proxies.ts): edgelb's timeouts, option forwardfor, retries 2 and redispatch, one server with a 2 s health check, option httplog to its stdout (len 4096, as edgelb), a file",
          'edgelb-off': 'a second edgelb stack with KONTENA_LB_ACCESS_LOG=off',
          'haproxy-off': 'the plain HAProxy without log line or httplog',
          caddy:
            'caddy run with a Caddyfile: reverse_proxy to the backend (keep-alive, X-Forwarded-For by default), JSON access log to a file, admin and automatic HTTPS off',
          nginx: 'nginx (worker_processes auto) proxy_pass to an upstream with keepalive 64, X-Forwarded-For, the combined log format plus timings to a file',
          direct: 'wrk straight to the backend',
        },
        backend: `nginx (${NGINX_BIN}), one worker, \`return 200 "ok\\n"\` with an x-served-by header, no access log; every proxied path was checked to reach it before the run`,
        load: `wrk (/usr/bin/wrk): ${o.threads} threads, ${o.connections} keep-alive connections, GET / with Host ${HOST}, --latency; one path at a time`,
        rounds: `${o.rounds} rounds; in each, every path once, the order rotating between rounds and reversed every other round; per path ${o.warmupS} s warm-up (not counted) then ${o.durationS} s counted`,
        ratios: "per round, requests/s of one path divided by another's in the same round; the median of those",
        latency: "wrk's p50/p99 per path and round; the median over rounds",
        cpu: "utime+stime from /proc over each counted window: the proxy's processes (HAProxy master and workers, nginx master and workers, caddy), edgelb's controller, the backend; machine busy = 1 - idle share of /proc/stat over the window (wrk, proxy, backend and the rest of the machine together)",
        accessLog:
          "lines and bytes each proxy wrote to its access-log file during the counted window (edgelb: lines of its stdout file that are not the controller's JSON)",
        backendNotTheBottleneck:
          "the direct path serves several times the requests/s of any proxied path with the same wrk, and the backend's CPU per request is reported beside the proxies'",
        machineSharedWith: 'other work on the machine (see loadAverage)',
        backendName: BACKEND_NAME,
      },
      results,
      markdown: (header) => markdown(results, header, o),
    };
  });
}

/** Access-log lines and bytes in `file` from byte `from` on; for edgelb's stdout, the controller's own JSON lines are left out. */
async function accessLines(file: string, from: number, skipControllerLines: boolean): Promise<{ lines: number; bytes: number }> {
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    const buffer = Buffer.alloc(Math.max(0, size - from));
    await handle.read(buffer, 0, buffer.length, from);
    const lines = buffer
      .toString('utf8')
      .split('\n')
      .filter((l) => l !== '' && !(skipControllerLines && l.startsWith('{')));
    return { lines: lines.length, bytes: lines.reduce((s, l) => s + Buffer.byteLength(l) + 1, 0) };
  } finally {
    await handle.close();
  }
}

async function machineCpu(): Promise<{ busy: number; total: number }> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((s, n) => s + n, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
