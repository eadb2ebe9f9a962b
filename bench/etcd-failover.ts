/**
 * etcd failover: a member of a 3-member etcd cluster is SIGKILLed under constant HTTP load; how
 * long until a change written right after reaches traffic, and does any request fail?
 *
 * Against the real thing, per API (v3, then v2 on a cluster started with --enable-v2): a
 * 3-member etcd 3.4 cluster on loopback, the controller as a child process with every member in
 * ETCD_ENDPOINTS and its supervised HAProxy, plain HTTP backends (one worker thread), and
 * closed-loop clients on a steady service for the whole phase. Rounds, alternating:
 *
 *   baseline  no kill: the change is written, the clock runs from the write to served
 *   kill      in turn: a follower holding the controller's watch, the leader while the watch
 *             is on another member, the leader holding the watch (etcd's MoveLeader arranges the
 *             leadership first when needed). The member is SIGKILLed and the change written at
 *             once through the members still running, a new attempt every 25 ms until etcd
 *             acknowledges one (test/support/etcd-failover.ts); then served is polled, the member
 *             restarted, and the next round waits until it serves and the controller watches again
 *
 * The change moves a route: `services/moving/virtual_hosts` gets a new host each round (one key,
 * the same for both APIs; a seamless reload), and "served" is the first request for that host
 * answered by the service's backend, polled on a new connection every ~2 ms.
 *
 *   leader election  kill → etcd acknowledges the change (the time until a write through the
 *                    surviving members succeeds; a few ms when a follower was killed)
 *   after the kill   kill → served
 *   beyond election  acknowledged → served, to compare with the baseline's write → served
 *
 * Which member holds the watch is read from each member's /metrics (etcd 3.4's v3 and v2
 * watcher gauges; nothing else watches).
 */
import type { Etcd3 } from 'etcd3';
import { startBackends } from './lib/backends.js';
import { commandLine, footer, runBench, spread, type BenchContext, type ReportHeader, type Spread } from './lib/harness.js';
import { explain, parseOptions, type IntOption } from './lib/args.js';
import { startLoad, type LoadResult } from './lib/http-load.js';
import { freePort, REPO_ROOT, request, sleep, spawnChild, waitFor, type Child, type LogEntry } from '../scripts/lib/local-stack.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { EtcdApi, KvWatch } from '../src/etcd/store.js';
import { etcdClient } from '../test/support/etcd-connection.js';
import { startEtcdCluster, v2Admin, type EtcdCluster } from '../test/support/etcd.js';
import { moveLeader, watchingMembers, writeThroughSurvivors } from '../test/support/etcd-failover.js';
import { addInstance, linkService } from '../test/support/kontena-agent.js';

const NAME = 'etcd-failover';
const OPTIONS = {
  storeKills: { flag: '--store-kills', help: 'kills per API against the etcd layer alone (0: none)', default: 40, min: 0, max: 500 },
  rounds: { flag: '--rounds', help: 'kill rounds per API, the three kinds in turn (each with a baseline round before it)', default: 24, min: 1, max: 99 },
  keepalive: { flag: '--keepalive', help: 'keep-alive clients', default: 2, min: 0, max: 32 },
  fresh: { flag: '--new', help: 'new-connection clients', default: 2, min: 0, max: 32 },
} satisfies Record<string, IntOption>;

const APIS: readonly EtcdApi[] = ['v3', 'v2'];
const STEADY_HOST = 'steady.failover.test';
const POLL_INTERVAL_MS = 2;
const SERVED_TIMEOUT_MS = 30_000;
const TOTAL_BUDGET_MS = 20 * 60_000;

/** Which member a kill round kills: a follower holding the watch, the leader (watch elsewhere), the leader holding the watch. */
type Target = 'watch-follower' | 'leader' | 'leader-watch';
const TARGETS: readonly Target[] = ['watch-follower', 'leader', 'leader-watch'];

interface Round {
  readonly api: EtcdApi;
  readonly kind: 'baseline' | 'kill';
  readonly target?: Target;
  readonly victim?: number;
  readonly victimWasLeader?: boolean;
  readonly victimHeldWatch?: boolean;
  /** Kill (or, for a baseline, first write attempt) → etcd acknowledged the change. */
  readonly ackMs: number;
  readonly writeAttempts: number;
  /** Kill (or first write attempt) → the change served. */
  readonly servedMs: number;
  /** Acknowledged → served. */
  readonly afterAckMs: number;
  readonly polls: number;
  /** Failed polls (connection errors, answers other than 200/503). */
  readonly disruptions: number;
  /** From the controller's log, ms after the kill: the watch lost, and resumed. */
  readonly watchLostMs?: number;
  readonly watchResumedMs?: number;
  /** Restart → the member serves a linearizable read again. */
  readonly restartMs?: number;
}

interface Controller {
  readonly process: Child;
  readonly httpPort: number;
  readonly prefix: string;
  /** Watch events from the log, with the time they were read. */
  readonly watchEvents: { readonly at: number; readonly event: 'lost' | 'resumed' | 'restart' | 'watching' }[];
  readonly problems: LogEntry[];
  stop(): Promise<void>;
}

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseOptions(NAME, args, OPTIONS);
  if (typeof parsed === 'string') return explain(NAME, parsed, OPTIONS);
  const o = parsed;
  if (o.keepalive + o.fresh === 0) return explain(NAME, 'at least one client (--keepalive or --new)', OPTIONS);

  return runBench(NAME, TOTAL_BUDGET_MS, async (ctx) => {
    const backends = await startBackends(['steady', 'moving']);
    ctx.defer(() => backends.close());
    const phases = [];
    const store = [];
    for (const api of APIS) {
      if (o.storeKills > 0) store.push(summarizeStore(api, await runStorePhase(ctx, api, o.storeKills)));
      phases.push(await runPhase(ctx, api, o, backends.byName('steady').address, backends.byName('moving').address));
    }
    const results = { store, phases: phases.map((p) => summarize(p.api, p.rounds, p.load, p.problems)) };
    return {
      out: o.out,
      command: commandLine(NAME, args),
      method: {
        cluster: '3 etcd 3.4 members on loopback (etcd defaults: 100 ms heartbeat, 1000 ms election timeout); v2 phase with --enable-v2',
        controller: `${o.from === 'dist' ? 'node dist/src/main.js run' : 'node --import tsx src/main.ts run'} (child process), ETCD_ENDPOINTS = every member, ETCD_API = the phase's API`,
        load: `${o.keepalive} keep-alive + ${o.fresh} new-connection closed-loop clients on ${STEADY_HOST} for the whole phase; a failure is a connection error, a timeout, a non-2xx answer or another backend`,
        change:
          'services/moving/virtual_hosts set to a new host (one key; a seamless reload); served = first answer for that host from the service backend, a new connection every ~2 ms',
        rounds: `per API: ${o.rounds} kill rounds, each after a baseline round (no kill); in turn a follower holding the controller's watch (from etcd /metrics), the leader while the watch is elsewhere, the leader holding the watch (leadership arranged with etcd's MoveLeader)`,
        write: 'through the running members only, a fresh client, a new attempt every 25 ms until one is acknowledged (a member without a leader holds writes)',
        leaderElection: 'kill → the change acknowledged; "beyond election" = acknowledged → served',
        store: `before each API's rounds, ${o.storeKills} kills against the etcd layer alone: edgelb's store (src/etcd) over every member watching a prefix; each time the follower holding the watch (leadership moved away first) is killed, the change written through the survivors at once, the member restarted, and the next kill follows at once (a fast rolling restart); clock: kill → the change delivered to the watch`,
      },
      results,
      markdown: (header) => markdown(results.phases, results.store, header, o),
    };
  });
}

async function runPhase(
  ctx: BenchContext,
  api: EtcdApi,
  o: { rounds: number; keepalive: number; fresh: number; from: 'source' | 'dist' },
  steady: string,
  moving: string,
) {
  const { log } = ctx;
  log(`${NAME}: ${api}: starting a 3-member etcd cluster and the controller`);
  const cluster = await startEtcdCluster(3, { enableV2: api === 'v2' });
  let clusterStopped = false;
  const stopCluster = async () => {
    if (clusterStopped) return;
    clusterStopped = true;
    await cluster.stop();
  };
  ctx.defer(stopCluster);
  const controller = await startController(api, cluster, o.from, log);
  ctx.defer(() => controller.stop());
  const check = () => {
    ctx.check();
    if (controller.process.exited) throw new Error(`the controller exited:\n${controller.process.tail()}`);
  };
  const key = (k: string) => `${controller.prefix}/${k}`;
  let round = 0;
  const hostOf = (n: number) => `r${n}.failover.test`;

  // The services, written as the platform would with this API.
  if (api === 'v3') {
    const client: Etcd3 = cluster.client;
    await client.put(key('services/steady/virtual_hosts')).value(STEADY_HOST);
    await client.put(key('services/steady/upstreams/one')).value(steady);
    await client.put(key('services/moving/virtual_hosts')).value(hostOf(round));
    await client.put(key('services/moving/upstreams/one')).value(moving);
  } else {
    const target = v2Admin(cluster, 0);
    await linkService(target, controller.prefix, 'steady', { virtualHosts: STEADY_HOST });
    await addInstance(target, controller.prefix, 'steady', 'steady-1', steady);
    await linkService(target, controller.prefix, 'moving', { virtualHosts: hostOf(round) });
    await addInstance(target, controller.prefix, 'moving', 'moving-1', moving);
  }
  for (const [host, backend] of [
    [STEADY_HOST, 'steady'],
    [hostOf(round), 'moving'],
  ] as const) {
    await waitFor(async () => (await request({ port: controller.httpPort, path: '/', host, timeoutMs: 2000 })).backend === backend, {
      timeoutMs: 60_000,
      intervalMs: 25,
      what: `the controller to route ${host} to ${backend}`,
      bail: check,
    });
  }

  const load = await startLoad({
    port: controller.httpPort,
    targets: [{ host: STEADY_HOST, path: '/', servedBy: ['steady'] }],
    keepAliveLoops: o.keepalive,
    newConnectionLoops: o.fresh,
    maxDurationMs: TOTAL_BUDGET_MS,
  });
  let loadResult: LoadResult | undefined;
  ctx.defer(async () => {
    if (!loadResult) await load.stop().catch(() => undefined);
  });

  /** Writes the next host and polls until it is served; times from `t0` (the kill, or the first write attempt). */
  const change = async (t0: number | undefined) => {
    round++;
    const host = hostOf(round);
    const written = await writeThroughSurvivors(cluster, api, key('services/moving/virtual_hosts'), host);
    const start = t0 ?? written.sentAt;
    const polled = await pollServed(controller.httpPort, host, 'moving', check);
    return {
      ackMs: written.ackedAt - start,
      writeAttempts: written.attempts,
      servedMs: polled.at - start,
      afterAckMs: polled.at - written.ackedAt,
      polls: polled.polls,
      disruptions: polled.disruptions,
    };
  };

  const rounds: Round[] = [];
  for (let r = 0; r < o.rounds; r++) {
    check();
    rounds.push({ api, kind: 'baseline', ...(await change(undefined)) });

    const target = TARGETS[r % TARGETS.length]!;
    const watching = await waitFor(
      async () => {
        const found = await watchingMembers(cluster, api);
        return found.length > 0 && found;
      },
      { timeoutMs: 10_000, what: `a member to hold the controller's ${api} watch`, bail: check },
    );
    const watchMember = watching[0]!;
    const elsewhere = [0, 1, 2].filter((i) => i !== watchMember)[Math.floor(r / TARGETS.length) % 2]!;
    if (target === 'leader-watch') await moveLeader(cluster, watchMember);
    else if ((await cluster.leaderIndex()) === watchMember) await moveLeader(cluster, elsewhere);
    const leader = await cluster.leaderIndex();
    const victim = target === 'leader' ? leader : watchMember;
    const eventsBefore = controller.watchEvents.length;
    const killedAt = Date.now();
    await cluster.kill(victim);
    const measured = await change(killedAt);
    const events = controller.watchEvents.slice(eventsBefore);
    const lost = events.find((e) => e.event === 'lost' || e.event === 'restart');
    const resumed = events.find((e) => e.event === 'resumed' || e.event === 'watching');
    const restartedAt = Date.now();
    await cluster.restart(victim);
    const restartMs = Date.now() - restartedAt;
    // The next round starts with the controller watching again (it may have moved to another member).
    await waitFor(async () => (await watchingMembers(cluster, api)).length > 0, { timeoutMs: 20_000, what: `the controller's ${api} watch`, bail: check });
    const entry: Round = {
      api,
      kind: 'kill',
      target,
      victim,
      victimWasLeader: victim === leader,
      victimHeldWatch: watching.includes(victim),
      ...measured,
      ...(lost ? { watchLostMs: lost.at - killedAt } : {}),
      ...(resumed ? { watchResumedMs: resumed.at - killedAt } : {}),
      restartMs,
    };
    rounds.push(entry);
    log(
      `  ${api} ${r + 1}/${o.rounds}: killed member ${victim} (${entry.victimWasLeader ? 'leader' : 'follower'}${entry.victimHeldWatch ? ', held the watch' : ''}): acknowledged after ${entry.ackMs} ms, served after ${entry.servedMs} ms (${entry.afterAckMs} ms after the acknowledgement); baseline ${rounds.at(-2)!.afterAckMs} ms`,
    );
  }
  loadResult = await load.stop();
  const problems = controller.problems.slice(0, 50);
  await controller.stop();
  await stopCluster();
  return { api, rounds, load: loadResult, problems };
}

async function pollServed(port: number, host: string, backend: string, check: () => void) {
  const started = Date.now();
  let polls = 0;
  let disruptions = 0;
  for (;;) {
    const sent = performance.now();
    polls++;
    try {
      const reply = await request({ port, path: '/', host, timeoutMs: 2000 });
      if (reply.backend === backend) return { at: Date.now(), polls, disruptions };
      if (reply.status !== 200 && reply.status !== 503) disruptions++;
    } catch {
      disruptions++;
    }
    if (Date.now() - started > SERVED_TIMEOUT_MS) throw new Error(`${host} was not served by ${backend} within ${SERVED_TIMEOUT_MS} ms`);
    if (polls % 50 === 0) check();
    const wait = POLL_INTERVAL_MS - (performance.now() - sent);
    if (wait > 0) await sleep(wait);
  }
}

async function startController(api: EtcdApi, cluster: EtcdCluster, from: 'source' | 'dist', log: (line: string) => void): Promise<Controller> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), `edgelb-bench-${NAME}-`));
  const httpPort = await freePort(undefined);
  const prefix = `/kontena/haproxy/bench-${NAME}-${api}-${process.pid}`;
  const watchEvents: Controller['watchEvents'][number][] = [];
  const problems: LogEntry[] = [];
  const onLog = (entry: LogEntry) => {
    const msg = String(entry.msg ?? '');
    const at = Date.now();
    if (msg.startsWith('etcd watch lost')) watchEvents.push({ at, event: 'lost' });
    else if (msg === 'etcd watch resumed') watchEvents.push({ at, event: 'resumed' });
    else if (msg === 'watching etcd') watchEvents.push({ at, event: 'watching' });
    else if (msg.startsWith('cannot read from etcd')) watchEvents.push({ at, event: 'restart' });
    const level = typeof entry.level === 'number' ? entry.level : 30;
    if (level >= 40 && problems.length < 200) problems.push(entry);
    if (level >= 50) log(`  edgelb: ${msg}`);
  };
  const args = from === 'dist' ? [path.join(REPO_ROOT, 'dist', 'src', 'main.js'), 'run'] : ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'main.ts'), 'run'];
  let proc: Child;
  try {
    proc = spawnChild('edgelb', process.execPath, args, {
      env: {
        ...process.env,
        ETCD_ENDPOINTS: cluster.endpoints.join(','),
        ETCD_API: api,
        ETCD_PATH: prefix,
        KONTENA_LB_HTTP_PORT: String(httpPort),
        KONTENA_LB_HTTPS_PORT: String(await freePort(undefined)),
        KONTENA_LB_STATS_PORT: String(await freePort(undefined)),
        KONTENA_LB_ADMIN_PORT: String(await freePort()),
        KONTENA_LB_STATE_DIR: stateDir,
        LOG_LEVEL: 'info',
        PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin`,
      },
      onStdoutLine: (line) => {
        // HAProxy's access log (a line per request under load) is not needed: skip the JSON parse.
        if (line.includes('"component":"haproxy"')) return;
        try {
          onLog(JSON.parse(line) as LogEntry);
        } catch {
          onLog({ msg: line });
        }
      },
      onStderrLine: (line) => onLog({ level: 50, msg: line, stream: 'stderr' }),
    });
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  let stopped = false;
  return {
    process: proc,
    httpPort,
    prefix,
    watchEvents,
    problems,
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc.stop('SIGTERM', 40_000).catch((error: Error) => log(`  controller: ${error.message}`));
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

function summarize(api: EtcdApi, rounds: readonly Round[], load: LoadResult, problems: readonly LogEntry[]) {
  const kills = rounds.filter((r) => r.kind === 'kill');
  const baseline = rounds.filter((r) => r.kind === 'baseline');
  const of = (list: readonly Round[], pick: (r: Round) => number | undefined): Spread | undefined => {
    const values = list.map(pick).filter((v): v is number => v !== undefined);
    return values.length > 0 ? spread(values) : undefined;
  };
  const group = (list: readonly Round[]) => ({
    n: list.length,
    leaderElectionMs: of(list, (r) => r.ackMs),
    servedAfterKillMs: of(list, (r) => r.servedMs),
    beyondElectionMs: of(list, (r) => r.afterAckMs),
    watchLostMs: of(list, (r) => r.watchLostMs),
    watchResumedMs: of(list, (r) => r.watchResumedMs),
  });
  const connectionErrors = Object.entries(load.reasons)
    .filter(([r]) => !r.startsWith('status ') && r !== 'wrong backend')
    .reduce((s, [, n]) => s + n, 0);
  return {
    api,
    requests: load.requests,
    failed: load.failed,
    connectionErrors,
    badAnswers: load.failed - connectionErrors,
    kills: group(kills),
    watchFollowerKills: group(kills.filter((r) => !r.victimWasLeader && r.victimHeldWatch)),
    leaderKills: group(kills.filter((r) => r.victimWasLeader && !r.victimHeldWatch)),
    leaderWatchKills: group(kills.filter((r) => r.victimWasLeader && r.victimHeldWatch)),
    watchMemberKills: group(kills.filter((r) => r.victimHeldWatch)),
    baselineWriteToServedMs: of(baseline, (r) => r.afterAckMs),
    baselineWriteAckMs: of(baseline, (r) => r.ackMs),
    pollDisruptions: rounds.reduce((s, r) => s + r.disruptions, 0),
    restartMs: of(kills, (r) => r.restartMs),
    load: { ...load, failures: load.failures.slice(0, 50) },
    controllerProblems: problems,
    rounds,
  };
}

type PhaseSummary = ReturnType<typeof summarize>;

function markdown(
  phases: readonly PhaseSummary[],
  store: readonly StoreSummary[],
  header: ReportHeader,
  o: { rounds: number; keepalive: number; fresh: number },
): string {
  const s = (v: Spread | undefined) => (v === undefined ? '-' : `${v.median} / ${v.p90} / ${v.max}`);
  const s4 = (v: Spread | undefined) => (v === undefined ? '-' : `${v.median} / ${v.p90} / ${v.p99} / ${v.max}`);
  const row = (api: string, label: string, g: PhaseSummary['kills']) =>
    `| ${api} | ${label} | ${g.n} | ${s(g.leaderElectionMs)} | ${s(g.servedAfterKillMs)} | ${s(g.beyondElectionMs)} |`;
  return [
    '## etcd failover: a cluster member killed under load',
    '',
    '| API | member killed | kills | leader election ms | change served after the kill ms | beyond leader election ms |',
    '|---|---|---:|---:|---:|---:|',
    ...phases.flatMap((p) => [
      row(p.api, 'a follower holding the watch', p.watchFollowerKills),
      row(p.api, 'the leader, watch elsewhere', p.leaderKills),
      row(p.api, 'the leader holding the watch', p.leaderWatchKills),
      row(p.api, 'any', p.kills),
      `| ${p.api} | none (baseline) | ${p.baselineWriteToServedMs?.n ?? 0} | ${s(p.baselineWriteAckMs)} (write) | | ${s(p.baselineWriteToServedMs)} (write → served) |`,
    ]),
    '',
    'median / p90 / max. Leader election: kill → a write through the surviving members acknowledged; beyond: acknowledged → served.',
    '',
    '| API | requests | failed | connection errors | non-2xx or wrong backend | failed polls |',
    '|---|---:|---:|---:|---:|---:|',
    ...phases.map((p) => `| ${p.api} | ${p.requests} | **${p.failed}** | ${p.connectionErrors} | ${p.badAnswers} | ${p.pollDisruptions} |`),
    '',
    ...(store.length === 0
      ? []
      : [
          '### The etcd layer alone: a follower holding the watch killed, the change written at once',
          '',
          '| API | kills | change acknowledged ms | watch resumed ms | change delivered to the watch, after the kill ms | after the acknowledgement ms |',
          '|---|---:|---:|---:|---:|---:|',
          ...store.map((p) => `| ${p.api} | ${p.kills} | ${s4(p.ackMs)} | ${s4(p.resumedMs)} | ${s4(p.deliveredMs)} | ${s4(p.beyondMs)} |`),
          '',
          'median / p90 / p99 / max; no HAProxy, kills in quick succession (each member restarted, then the next kill at once). v2 fails over inside one request: no resume to time.',
          '',
        ]),
    ...phases.map(
      (p) =>
        `- ${p.api}: controller watch lost ${s(p.watchMemberKills.watchLostMs)} ms and resumed ${s(p.watchMemberKills.watchResumedMs)} ms after its member was killed; member restart → serving ${s(p.restartMs)} ms`,
    ),
    `- ${o.rounds} kill rounds per API, each after a baseline round; ${o.keepalive} keep-alive + ${o.fresh} new-connection clients`,
    ...footer(header),
  ].join('\n');
}

interface StoreKill {
  readonly victim: number;
  /** Kill → the change acknowledged by etcd. */
  readonly ackMs: number;
  /** Kill → the watch established again (v3; v2 fails over inside one request). */
  readonly resumedMs: number | undefined;
  /** Kill → the change delivered to the watch, and acknowledged → delivered. */
  readonly deliveredMs: number;
  readonly beyondMs: number;
}

/**
 * The etcd layer alone, without HAProxy: edgelb's store over every member, watching a prefix.
 * Each time, the follower holding the watch is killed (leadership moved away first, so no
 * election hides the watch's failover), the change is written at once through the survivors,
 * the member is restarted, and the next kill follows at once.
 */
async function runStorePhase(ctx: BenchContext, api: EtcdApi, kills: number): Promise<StoreKill[]> {
  ctx.log(`${NAME}: ${api}: ${kills} kills against the etcd layer alone`);
  const cluster = await startEtcdCluster(3, { enableV2: api === 'v2' });
  const client = etcdClient(cluster.endpoints, { api });
  const store = client.store(api);
  const prefix = `/bench-${NAME}-store-${api}-${process.pid}`;
  let latest = { value: '', at: 0 };
  let resumedAt: number | undefined;
  let lost: Error | undefined;
  let watch: KvWatch | undefined;
  const results: StoreKill[] = [];
  try {
    await writeThroughSurvivors(cluster, api, `${prefix}/k`, 'v0');
    watch = await store.watch(prefix, (await store.list(prefix)).revision, {
      onChanges: (changes) => {
        for (const change of changes) if (change.type === 'put') latest = { value: change.value, at: Date.now() };
      },
      onLost: (failure) => {
        lost = failure;
      },
      onConnected: () => {
        resumedAt ??= Date.now();
      },
    });
    for (let i = 1; i <= kills; i++) {
      ctx.check();
      const watching = await waitFor(
        async () => {
          const found = await watchingMembers(cluster, api);
          return found.length > 0 && found;
        },
        { timeoutMs: 10_000, what: `a member to hold the ${api} watch` },
      );
      const victim = watching[0]!;
      if ((await cluster.leaderIndex()) === victim) await moveLeader(cluster, [0, 1, 2].find((m) => m !== victim)!);
      resumedAt = undefined;
      const killedAt = Date.now();
      await cluster.kill(victim);
      const written = await writeThroughSurvivors(cluster, api, `${prefix}/k`, `v${i}`);
      await waitFor(
        () => {
          if (lost) throw new Error(`the ${api} watch was lost: ${lost.message}`);
          return latest.value === `v${i}`;
        },
        { timeoutMs: 20_000, intervalMs: 1, what: `v${i} to reach the ${api} watch` },
      );
      results.push({
        victim,
        ackMs: written.ackedAt - killedAt,
        resumedMs: resumedAt === undefined ? undefined : resumedAt - killedAt,
        deliveredMs: latest.at - killedAt,
        beyondMs: latest.at - written.ackedAt,
      });
      await cluster.restart(victim);
      if (i % 10 === 0 || i === kills) ctx.log(`  ${api} etcd layer: ${i}/${kills}`);
    }
  } finally {
    await watch?.cancel();
    client.close();
    await cluster.stop();
  }
  return results;
}

function summarizeStore(api: EtcdApi, kills: readonly StoreKill[]) {
  const of = (pick: (k: StoreKill) => number | undefined): Spread | undefined => {
    const values = kills.map(pick).filter((v): v is number => v !== undefined);
    return values.length > 0 ? spread(values) : undefined;
  };
  return {
    api,
    kills: kills.length,
    ackMs: of((k) => k.ackMs),
    resumedMs: of((k) => k.resumedMs),
    deliveredMs: of((k) => k.deliveredMs),
    beyondMs: of((k) => k.beyondMs),
    each: kills,
  };
}

type StoreSummary = ReturnType<typeof summarizeStore>;
