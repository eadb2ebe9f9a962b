/**
 * No drops: constant HTTP load through the load balancer while the controller applies a long
 * series of changes, and every failed request counted.
 *
 * Against the real thing: etcd, the controller as a child process with its supervised HAProxy,
 * and plain HTTP backends (one worker thread). The load: --keepalive clients each reusing one
 * connection and --new clients opening a connection per request, closed loops with no pause,
 * over worker threads, cycling through the --services loaded services (host load<i>.bench.local).
 *
 * Every loaded service keeps one instance ("stable") that is never touched, so it always has a
 * healthy instance, and --slots more instances that churn. Each change is one etcd transaction,
 * written once the controller has logged the apply of the previous one:
 *
 *   instance (100 - --structural-percent %, runtime API)   pick a loaded service and a slot:
 *     empty slot -> add an instance; filled -> remove it, or move it to another address.
 *     Addresses are live backends of that service, and 1 in 8 a port where nothing listens
 *     (an instance that never passes its health checks must never get a request).
 *   structural (--structural-percent %, reload)  add a service (extra<n>.bench.local, not loaded),
 *     remove one, or add/remove an alias host on a loaded service.
 *
 * A request fails on a connection error, a connection closed before the whole response, a
 * timeout (10 s), a status other than 2xx, or an answer from another service's backend.
 */
import { startBackends, type Backends } from './lib/backends.js';
import { commandLine, footer, runBench, spread, type ReportHeader } from './lib/harness.js';
import { explain, parseOptions, type IntOption } from './lib/args.js';
import { startLoad, type Failure, type LoadResult } from './lib/http-load.js';
import { startStack, type ApplyRecord, type HaproxyLogSummary, type Stack } from './lib/stack.js';
import { freePort, request, sleep, waitFor } from '../scripts/lib/local-stack.js';

const NAME = 'no-drops';
const OPTIONS = {
  changes: { flag: '--changes', help: 'changes to apply under load', default: 500, min: 1, max: 5000 },
  services: { flag: '--services', help: 'loaded services (each: 1 stable instance + churn)', default: 3, min: 1, max: 20 },
  slots: { flag: '--slots', help: 'churned instance slots per loaded service', default: 3, min: 1, max: 10 },
  keepalive: { flag: '--keepalive', help: 'keep-alive clients', default: 8, min: 0, max: 64 },
  fresh: { flag: '--new', help: 'new-connection clients', default: 8, min: 0, max: 64 },
  structural: { flag: '--structural-percent', help: 'share of structural changes, %', default: 20, min: 0, max: 100 },
  checkMs: {
    flag: '--check-interval-ms',
    help: 'KONTENA_LB_CHECK_INTERVAL, ms: how soon a churned instance takes traffic',
    default: 200,
    min: 100,
    max: 10_000,
  },
  spacingMs: { flag: '--spacing-ms', help: 'extra pause after each change is applied, ms', default: 0, min: 0, max: 10_000 },
  seed: { flag: '--seed', help: 'random seed for the sequence of changes', default: 1, min: 0, max: 2 ** 31 - 1 },
} satisfies Record<string, IntOption>;

const POOL = 3;
const DEAD_ONE_IN = 8;
const MAX_EXTRA_SERVICES = 8;
const WARMUP_MS = 1500;
const TAIL_MS = 3000;
const LOG_SETTLE_MS = 1000;
const APPLY_TIMEOUT_MS = 30_000;
const TOTAL_BUDGET_MS = 30 * 60_000;

type ChangeKind = 'instance-add' | 'instance-remove' | 'instance-move' | 'service-add' | 'service-remove' | 'alias-add' | 'alias-remove';

interface Change {
  readonly i: number;
  readonly kind: ChangeKind;
  readonly what: string;
  readonly revision: string;
  readonly writtenAt: number;
  /** How the controller applied it, as logged; 'unconfirmed' when no apply line came within the timeout. */
  readonly action: ApplyRecord['action'] | 'unconfirmed';
  /** The revision was applied together with later writes (should not happen: one write at a time). */
  readonly coalesced: boolean;
  readonly appliedAt: number | undefined;
  readonly applyMs: number | undefined;
}

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseOptions(NAME, args, OPTIONS);
  if (typeof parsed === 'string') return explain(NAME, parsed, OPTIONS);
  const o = parsed;
  if (o.keepalive + o.fresh === 0) return explain(NAME, 'at least one client (--keepalive or --new)', OPTIONS);

  return runBench(NAME, TOTAL_BUDGET_MS, async (ctx) => {
    const { log } = ctx;
    const random = mulberry32(o.seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;

    const loaded = Array.from({ length: o.services }, (_, i) => `load${i}`);
    const backendNames = [...loaded.flatMap((s) => [`${s}-stable`, ...Array.from({ length: POOL }, (_, j) => `${s}-pool${j}`)]), 'extra-0', 'extra-1'];
    log(`${NAME}: starting ${backendNames.length} backends, etcd and the controller`);
    const backends: Backends = await startBackends(backendNames);
    ctx.defer(() => backends.close());
    const dead = new Map(await Promise.all(loaded.map(async (s) => [s, `127.0.0.1:${await freePort()}`] as const)));
    const stack: Stack = await startStack({
      name: NAME,
      from: o.from,
      log,
      env: { KONTENA_LB_CHECK_INTERVAL: `${o.checkMs}ms` },
    });
    ctx.defer(() => stack.stop());
    const check = () => {
      ctx.check();
      stack.checkAlive();
    };

    // Every loaded service with its stable instance and every slot filled.
    const slots = new Map(
      loaded.map((s) => [s, Array.from({ length: o.slots }, (_, j) => backends.byName(`${s}-pool${j % POOL}`).address as string | undefined)]),
    );
    const initial: Record<string, string> = {};
    for (const s of loaded) {
      initial[`services/${s}/virtual_hosts`] = `${s}.bench.local`;
      initial[`services/${s}/upstreams/stable`] = backends.byName(`${s}-stable`).address;
      for (const [j, address] of slots.get(s)!.entries()) initial[`services/${s}/upstreams/c${j}`] = address!;
    }
    await stack.waitApplied(await stack.write(initial), 60_000);
    for (const s of loaded) {
      await waitFor(async () => (await request({ port: stack.httpPort, path: '/', host: `${s}.bench.local`, timeoutMs: 2000 })).status === 200, {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: `${s}.bench.local to answer 200`,
        bail: check,
      });
    }

    const extras: string[] = [];
    let nextExtra = 0;
    const aliases = new Map(loaded.map((s) => [s, [] as string[]]));
    let nextAlias = 0;
    /** A live backend of `service` other than `not`, or 1 in DEAD_ONE_IN its dead address. */
    const addressFor = (service: string, not?: string) => {
      const deadAddress = dead.get(service)!;
      if (random() < 1 / DEAD_ONE_IN && deadAddress !== not) return deadAddress;
      return pick(Array.from({ length: POOL }, (_, j) => backends.byName(`${service}-pool${j}`).address).filter((a) => a !== not));
    };

    /** The next change: its kind, a description, and the etcd writes. */
    const nextChange = (): { kind: ChangeKind; what: string; writes: Record<string, string | null> } => {
      if (random() * 100 < o.structural) {
        const options: ChangeKind[] = [];
        if (extras.length < MAX_EXTRA_SERVICES) options.push('service-add');
        if (extras.length > 0) options.push('service-remove');
        options.push(...(loaded.some((s) => aliases.get(s)!.length > 0) ? (['alias-add', 'alias-remove'] as const) : (['alias-add'] as const)));
        const kind = extras.length === 0 ? 'service-add' : pick(options);
        if (kind === 'service-add') {
          const name = `extra${nextExtra++}`;
          extras.push(name);
          return {
            kind,
            what: name,
            writes: {
              [`services/${name}/virtual_hosts`]: `${name}.bench.local`,
              [`services/${name}/upstreams/e1`]: backends.byName(`extra-${nextExtra % 2}`).address,
            },
          };
        }
        if (kind === 'service-remove') {
          const name = extras.splice(Math.floor(random() * extras.length), 1)[0]!;
          return { kind, what: name, writes: { [`services/${name}/virtual_hosts`]: null, [`services/${name}/upstreams/e1`]: null } };
        }
        const service = kind === 'alias-remove' ? pick(loaded.filter((s) => aliases.get(s)!.length > 0)) : pick(loaded);
        const list = aliases.get(service)!;
        if (kind === 'alias-add') list.push(`alias${nextAlias++}.bench.local`);
        else list.splice(Math.floor(random() * list.length), 1);
        return {
          kind,
          what: `${service}: ${[`${service}.bench.local`, ...list].join(',')}`,
          writes: { [`services/${service}/virtual_hosts`]: [`${service}.bench.local`, ...list].join(',') },
        };
      }
      const service = pick(loaded);
      const serviceSlots = slots.get(service)!;
      const j = Math.floor(random() * serviceSlots.length);
      const key = `services/${service}/upstreams/c${j}`;
      const current = serviceSlots[j];
      if (current === undefined) {
        const address = addressFor(service);
        serviceSlots[j] = address;
        return { kind: 'instance-add', what: `${service}/c${j} = ${address}`, writes: { [key]: address } };
      }
      if (random() < 0.5) {
        serviceSlots[j] = undefined;
        return { kind: 'instance-remove', what: `${service}/c${j} (${current})`, writes: { [key]: null } };
      }
      const address = addressFor(service, current);
      serviceSlots[j] = address;
      return { kind: 'instance-move', what: `${service}/c${j} ${current} -> ${address}`, writes: { [key]: address } };
    };

    log(`${NAME}: load on ${loaded.length} services: ${o.keepalive} keep-alive + ${o.fresh} new-connection clients`);
    const countsBefore = await backends.counts();
    const load = await startLoad({
      port: stack.httpPort,
      targets: loaded.map((s) => ({ host: `${s}.bench.local`, path: '/', servedBy: [`${s}-`] })),
      keepAliveLoops: o.keepalive,
      newConnectionLoops: o.fresh,
      maxDurationMs: TOTAL_BUDGET_MS,
    });
    let loadResult: LoadResult | undefined;
    ctx.defer(async () => {
      if (!loadResult) await load.stop().catch(() => undefined);
    });
    const loadStartedAt = Date.now();
    await sleep(WARMUP_MS);
    const warm = await load.stats();
    log(`  warm-up: ${warm.requests} requests (${warm.perSecond}/s), ${warm.failed} failed`);

    const changes: Change[] = [];
    const changesStartedAt = Date.now();
    for (let i = 0; i < o.changes; i++) {
      check();
      const { kind, what, writes } = nextChange();
      const writtenAt = Date.now();
      const revision = await stack.write(writes);
      let applied: ApplyRecord | undefined;
      try {
        applied = await stack.waitApplied(revision, APPLY_TIMEOUT_MS);
      } catch (error) {
        stack.checkAlive();
        log(`  change ${i}: ${(error as Error).message}`);
      }
      changes.push({
        i,
        kind,
        what,
        revision,
        writtenAt,
        action: applied?.action ?? 'unconfirmed',
        coalesced: applied !== undefined && applied.revision !== revision,
        appliedAt: applied?.seenAt,
        applyMs: applied?.durationMs,
      });
      if (o.spacingMs > 0) await sleep(o.spacingMs);
      if ((i + 1) % 50 === 0 || i + 1 === o.changes) {
        const s = await load.stats();
        log(`  ${i + 1}/${o.changes} changes; ${s.requests} requests, ${s.failed} failed`);
      }
    }
    const changesEndedAt = Date.now();
    await sleep(TAIL_MS);
    loadResult = await load.stop();
    const loadEndedAt = Date.now();
    const countsAfter = await backends.counts();
    // HAProxy's last access-log lines may still be in the controller's stdout pipe.
    await sleep(LOG_SETTLE_MS);
    const info = await stack.showInfo();
    const actions = stack.actionCounts();
    const haproxyLog = { ...stack.haproxyLog(), droppedLogsCurrentWorker: info.DroppedLogs === undefined ? undefined : Number(info.DroppedLogs) };
    log(`${NAME}: ${loadResult.requests} requests, ${loadResult.failed} failed`);

    const served = Object.fromEntries(backendNames.map((n) => [n, (countsAfter[n] ?? 0) - (countsBefore[n] ?? 0)]));
    const servedBy = {
      stable: sum(
        Object.entries(served)
          .filter(([n]) => n.endsWith('-stable'))
          .map(([, v]) => v),
      ),
      churned: sum(
        Object.entries(served)
          .filter(([n]) => n.includes('-pool'))
          .map(([, v]) => v),
      ),
    };
    const results = summarize({
      changes,
      load: loadResult,
      actions,
      haproxyLog,
      served,
      servedBy,
      stack,
      loadStartedAt,
      changesStartedAt,
      changesEndedAt,
      loadEndedAt,
      options: o,
    });
    return {
      out: o.out,
      command: commandLine(NAME, args),
      method: {
        stack: `etcd 3.4 and the controller (${o.from === 'dist' ? 'node dist/src/main.js run' : 'node --import tsx src/main.ts run'}) as child processes, HAProxy supervised by the controller; backends: node:http servers in one worker thread (keep-alive timeout 120 s, longer than HAProxy keeps idle server connections)`,
        load: `${o.keepalive} keep-alive clients (one connection reused until the server closes it) + ${o.fresh} new-connection clients (Connection: close), closed loops with no pause, raw HTTP/1.1 over loopback from ${loadResult.threads} worker threads (bench/lib/http-load.ts); each client cycles through the ${o.services} loaded services' hosts; request timeout 10 s`,
        failure:
          "a connection error (refused, reset), a connection closed before the complete response (on a reused keep-alive connection too), a timeout, a status other than 2xx, or an x-served-by from another service's backend",
        services: `${o.services} loaded services, each with a stable instance never touched and ${o.slots} churned slots (all filled at the start) over ${POOL} live backends of its own plus one dead address (nothing listens; chosen 1 in ${DEAD_ONE_IN})`,
        changes: `${o.changes} changes, one etcd transaction each; ~${100 - o.structural}% instance (add to an empty slot; remove or move a filled one, 50/50), ~${o.structural}% structural (add a service extra<n> (not loaded, at most ${MAX_EXTRA_SERVICES}), remove one, add or remove an alias virtual host of a loaded service); seed ${o.seed}`,
        pacing: `the next change is written once the controller has logged the apply of the previous one's revision (timeout ${APPLY_TIMEOUT_MS / 1000} s)${o.spacingMs > 0 ? `, then ${o.spacingMs} ms more` : ', no extra pause'}`,
        phases: `load for ${WARMUP_MS} ms before the first change and ${TAIL_MS} ms after the last`,
        settings: { KONTENA_LB_CHECK_INTERVAL: `${o.checkMs}ms`, others: 'defaults' },
        percentiles: 'request latency from a log-bucket histogram (1 % buckets); apply times interpolated between closest ranks',
        actions: 'from the controller\'s apply log lines: "applied through the runtime API (no reload)", action "reloaded", "apply failed"',
      },
      results,
      markdown: (header) => markdown(results, header, o),
    };
  });
}

interface SummaryInput {
  readonly changes: readonly Change[];
  readonly load: LoadResult;
  readonly actions: Record<string, number>;
  readonly haproxyLog: HaproxyLogSummary & { droppedLogsCurrentWorker: number | undefined };
  readonly served: Record<string, number>;
  readonly servedBy: { stable: number; churned: number };
  readonly stack: Stack;
  readonly loadStartedAt: number;
  readonly changesStartedAt: number;
  readonly changesEndedAt: number;
  readonly loadEndedAt: number;
  readonly options: { readonly changes: number };
}

function summarize(input: SummaryInput) {
  const { changes, load } = input;
  const byKind = count(changes.map((c) => c.kind));
  const byAction = count(changes.map((c) => c.action));
  const applyMs = (action: string) => spread(changes.filter((c) => c.action === action && c.applyMs !== undefined).map((c) => c.applyMs!));
  const visibleMs = (action: string) => spread(changes.filter((c) => c.action === action && c.appliedAt !== undefined).map((c) => c.appliedAt! - c.writtenAt));
  const connectionErrors = sum(
    Object.entries(load.reasons)
      .filter(([r]) => !r.startsWith('status ') && r !== 'wrong backend')
      .map(([, n]) => n),
  );
  const bad = sum(
    Object.entries(load.reasons)
      .filter(([r]) => r.startsWith('status ') || r === 'wrong backend')
      .map(([, n]) => n),
  );
  const attributed = load.failures.map((f) => attribute(f, changes, input.loadStartedAt));
  return {
    durationS: round1((input.loadEndedAt - input.loadStartedAt) / 1000),
    changesDurationS: round1((input.changesEndedAt - input.changesStartedAt) / 1000),
    requests: load.requests,
    failed: load.failed,
    connectionErrors,
    badAnswers: bad,
    perSecond: load.perSecond,
    load: { ...load, failures: undefined },
    changes: {
      total: changes.length,
      byKind,
      byAction,
      coalesced: changes.filter((c) => c.coalesced).length,
      applyMs: { runtime: applyMs('runtime'), reloaded: applyMs('reloaded') },
      writeToAppliedLogMs: { runtime: visibleMs('runtime'), reloaded: visibleMs('reloaded') },
    },
    controllerApplies: input.actions,
    /** Instance changes the runtime API could not apply, so the controller reloaded instead (its warning, by reason). */
    runtimeFallbacks: count(
      input.stack.controllerProblems
        .filter((p) => String(p.msg ?? '').startsWith('runtime update not possible'))
        .map((p) => String(p.err ?? '').replace(/http-\S+\/\S+/g, '<server>')),
    ),
    servedBy: input.servedBy,
    servedByBackend: input.served,
    haproxyLog: input.haproxyLog,
    controllerProblems: input.stack.controllerProblems.slice(0, 50),
    failuresByChangeKind: count(attributed.map((f) => f.lastChange?.kind ?? 'before any change')),
    failures: attributed.slice(0, 200),
    changeLog: changes.map((c) => ({
      ...c,
      writtenAt: c.writtenAt - input.loadStartedAt,
      appliedAt: c.appliedAt === undefined ? undefined : c.appliedAt - input.loadStartedAt,
    })),
  };
}

/** A failure with the change that was last written before the request started (times in ms from the start of the load). */
function attribute(f: Failure, changes: readonly Change[], t0: number) {
  let last: Change | undefined;
  for (const c of changes) {
    if (c.writtenAt <= f.at) last = c;
    else break;
  }
  return {
    atMs: f.at - t0,
    startedAtMs: f.startedAt - t0,
    kind: f.kind,
    host: f.host,
    reason: f.reason,
    ...(f.detail ? { detail: f.detail } : {}),
    lastChange: last && {
      i: last.i,
      kind: last.kind,
      what: last.what,
      action: last.action,
      msSinceWrite: f.at - last.writtenAt,
      msSinceApplied: last.appliedAt === undefined ? undefined : f.at - last.appliedAt,
    },
  };
}

function markdown(
  r: ReturnType<typeof summarize>,
  header: ReportHeader,
  o: { keepalive: number; fresh: number; services: number; slots: number; checkMs: number },
): string {
  const ms = (s: { median: number; p99: number; n: number }) => (s.n === 0 ? '-' : `${s.median} / ${s.p99}`);
  const reasons =
    Object.entries(r.load.reasons)
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ') || 'none';
  const kinds = r.changes.byKind;
  const instance = (kinds['instance-add'] ?? 0) + (kinds['instance-remove'] ?? 0) + (kinds['instance-move'] ?? 0);
  const structural = r.changes.total - instance;
  return [
    '## No drops: constant load while the controller applies changes',
    '',
    '| measure | value |',
    '|---|---|',
    `| requests | ${r.requests} in ${r.durationS} s (${r.perSecond}/s): keep-alive ${r.load.keepalive.requests}, new connection ${r.load.new.requests} |`,
    `| **failed requests** | **${r.failed}** (keep-alive ${r.load.keepalive.failed}, new connection ${r.load.new.failed}): ${reasons} |`,
    `| **connection errors** | **${r.connectionErrors}** |`,
    `| non-2xx or wrong backend | ${r.badAnswers} |`,
    `| changes applied | ${r.changes.total} in ${r.changesDurationS} s: instance ${instance} (add ${kinds['instance-add'] ?? 0}, remove ${kinds['instance-remove'] ?? 0}, move ${kinds['instance-move'] ?? 0}), structural ${structural} (service add ${kinds['service-add'] ?? 0}, remove ${kinds['service-remove'] ?? 0}, alias host add ${kinds['alias-add'] ?? 0}, remove ${kinds['alias-remove'] ?? 0}) |`,
    `| applied as (controller log) | runtime API ${r.changes.byAction.runtime ?? 0}, reload ${r.changes.byAction.reloaded ?? 0}, failed ${r.changes.byAction.failed ?? 0}, no apply logged ${r.changes.byAction.unconfirmed ?? 0}; coalesced ${r.changes.coalesced} |`,
    `| instance changes reloaded instead (controller: "runtime update not possible") | ${
      Object.entries(r.runtimeFallbacks)
        .map(([k, v]) => `${v}× ${k}`)
        .join('; ') || 'none'
    } |`,
    `| controller apply time, median / p99 ms | runtime ${ms(r.changes.applyMs.runtime)}; reload ${ms(r.changes.applyMs.reloaded)} |`,
    `| etcd write → apply logged, median / p99 ms | runtime ${ms(r.changes.writeToAppliedLogMs.runtime)}; reload ${ms(r.changes.writeToAppliedLogMs.reloaded)} |`,
    `| request latency p50 / p99 / max ms | keep-alive ${r.load.keepalive.latency.p50Ms} / ${r.load.keepalive.latency.p99Ms} / ${r.load.keepalive.latency.maxMs}; new connection ${r.load.new.latency.p50Ms} / ${r.load.new.latency.p99Ms} / ${r.load.new.latency.maxMs} |`,
    `| served by churned instances | ${r.servedBy.churned} of ${r.servedBy.stable + r.servedBy.churned} (${pct(r.servedBy.churned, r.servedBy.stable + r.servedBy.churned)}) |`,
    `| HAProxy access log | ${r.haproxyLog.accessLines} lines: ${Object.entries(r.haproxyLog.byStatusClass)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )}; retried ${r.haproxyLog.retried} (redispatched ${r.haproxyLog.redispatched}; a request sent to an instance that is not listening would be retried); abnormal terminations ${
      Object.entries(r.haproxyLog.abnormalTermination)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ') || 'none'
    }; log lines HAProxy dropped (current worker) ${r.haproxyLog.droppedLogsCurrentWorker ?? '-'}; HAProxy warnings ${r.haproxyLog.warnings}, alerts ${r.haproxyLog.alerts} |`,
    '',
    `- ${o.services} loaded services, each with a stable instance plus ${o.slots} churned slots; ${o.keepalive} keep-alive + ${o.fresh} new-connection clients, closed loops; KONTENA_LB_CHECK_INTERVAL=${o.checkMs}ms; each change written once the previous one's apply was logged`,
    ...(r.failed > 0
      ? [
          `- failures by the change last written before them: ${Object.entries(r.failuresByChangeKind)
            .map(([k, v]) => `${k} ×${v}`)
            .join(', ')} (details in the JSON)`,
        ]
      : []),
    ...footer(header),
  ].join('\n');
}

function count(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

function sum(values: readonly number[]): number {
  return values.reduce((s, v) => s + v, 0);
}

function pct(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)} %`;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

/** A small seeded PRNG (mulberry32), so a run's sequence of changes can be repeated. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
