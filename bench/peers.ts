/**
 * Peers (issue 15): two edgelb replicas on one etcd with KONTENA_LB_PEERS=etcd share one rate
 * limit. A client alternating between them, --rounds times (each round a fresh client address),
 * sends 3 × the limit: how many were let through, against the limit (target: the limit, not
 * twice it), in the steady state: once both workers finished their first resync. Then the sync lag: a request answered by replica A, and the time until replica B's
 * runtime API (`show table`) shows the client's counter, --samples times (B polled as fast as its
 * runtime API answers: the figure includes one poll's time). --tls 2 (the default) measures a plain
 * pair, then a pair with KONTENA_LB_PEERS_CERT (peer traffic over TLS, verified both ways), in one
 * run; 0 the plain pair only, 1 the TLS pair only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readPeerSessions } from '../src/admin/haproxy-peers.js';
import { sendCommand } from '../src/haproxy/master-cli.js';
import { httpBackendName } from '../src/render/view.js';
import { peersFlagsHave } from '../scripts/lib/show-peers.js';
import { freePort, waitFor } from '../scripts/lib/local-stack.js';
import { makeLeaf } from '../test/support/certs.js';
import { explain, type IntOption, parseOptions } from './lib/args.js';
import { type BenchContext, commandLine, footer, runBench, spread } from './lib/harness.js';
import { startStack, type Stack } from './lib/stack.js';

const NAME = 'peers';
const OPTIONS = {
  rounds: { flag: '--rounds', help: 'rounds, each a fresh client sending 3 × the limit, alternating replicas', default: 20, min: 1, max: 200 },
  limit: { flag: '--limit', help: 'the rate limit, requests per 60 s', default: 20, min: 2, max: 1000 },
  samples: { flag: '--samples', help: 'sync-lag samples (one fresh client each)', default: 200, min: 1, max: 2000 },
  tls: { flag: '--tls', help: 'peer traffic: 0 plain TCP, 1 TLS (KONTENA_LB_PEERS_CERT), 2 both, one pair after the other', default: 2, min: 0, max: 2 },
} satisfies Record<string, IntOption>;

const HOST = 'rated.bench.local';
const SERVICE = 'rated';
/** The service's backend in HAProxy, whose stick table holds the counters (templates/http-backend.hbs). */
const TABLE = httpBackendName(SERVICE);
const TOTAL_BUDGET_MS = 10 * 60_000;

/** A loopback client address per use: 127.0.<3..>.<1..250>; the limits count per address. */
function clientAddresses(): () => string {
  let n = 0;
  return () => {
    const i = n++;
    return `127.0.${3 + Math.floor(i / 250)}.${1 + (i % 250)}`;
  };
}

function getFrom(port: number, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', localAddress: from, headers: { host: HOST }, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The client's request counter in `stack`'s table, 0 when it has no entry. */
async function counterAt(stack: Stack, client: string): Promise<number> {
  const answer = await sendCommand(stack.adminSocket, `show table ${TABLE} key ::ffff:${client}`, 2000);
  return Number(/http_req_rate\(\d+\)=(\d+)/.exec(answer)?.[1] ?? 0);
}

/**
 * Whether `stack`'s worker has finished its first resync (`show peers` flags 0x3: from the old
 * worker and from the remote peers, or gave up after 5 s). Before that HAProxy may drop and
 * re-establish a peer session, and updates wait meanwhile: the start-up window the README names.
 */
async function resynced(stack: Stack): Promise<boolean> {
  return peersFlagsHave(await sendCommand(stack.adminSocket, 'show peers', 2000).catch(() => ''));
}

/** The remote peers `stack`'s worker has a session with. */
async function connectedPeers(stack: Stack): Promise<string[]> {
  const peers = await readPeerSessions(stack.adminSocket).catch(() => []);
  return peers.filter((p) => !p.local && p.established).map((p) => p.name);
}

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseOptions(NAME, args, OPTIONS);
  if (typeof parsed === 'string') return explain(NAME, parsed, OPTIONS);
  const o = parsed;

  return runBench(NAME, TOTAL_BUDGET_MS, async (ctx) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-bench-peers-'));
    ctx.defer(() => rm(dir, { recursive: true, force: true }));
    const backend = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    ctx.defer(() => new Promise((resolve) => backend.close(resolve)));
    const backendPort = (backend.address() as AddressInfo).port;
    const next = clientAddresses();
    const modes: Mode[] = o.tls === 0 ? ['plain'] : o.tls === 1 ? ['tls'] : ['plain', 'tls'];
    const results: Partial<Record<Mode, PairResults>> = {};
    for (const mode of modes) {
      // One self-signed bundle both replicas hold, as the README's openssl line makes it.
      const peersCert = mode === 'tls' ? (await makeLeaf({ names: ['edgelb-peers'] })).bundlePem : undefined;
      results[mode] = await measurePair(ctx, o, { mode, peersCert, backendPort, next });
    }
    const rows = modes.flatMap((mode) => {
      const r = results[mode]!;
      return [
        `| ${mode}: requests allowed per client (limit ${o.limit}, ${3 * o.limit} sent alternating) | ${r.allowed.median} | ${r.allowed.p90} | ${r.allowed.p99} | ${r.allowed.min} | ${r.allowed.max} |`,
        `| ${mode}: sync lag A → B, ms | ${r.syncLagMs.median} | ${r.syncLagMs.p90} | ${r.syncLagMs.p99} | ${r.syncLagMs.min} | ${r.syncLagMs.max} |`,
      ];
    });
    return {
      out: o.out,
      command: commandLine(NAME, args),
      method: {
        replicas: `two edgelb stacks (${o.from}) on one etcd and prefix, KONTENA_LB_PEERS=etcd, each with its own HAProxy; one service with rate_limit ${o.limit}/60s on a Node backend; per mode a fresh pair (plain: no KONTENA_LB_PEERS_CERT; tls: one self-signed EC P-256 bundle on both)`,
        steadyState: 'measured once both workers have finished their first resync (show peers flags 0x3), resyncAfterConnectMs after the peers connected',
        allowed: `${o.rounds} rounds, each a fresh client address sending ${3 * o.limit} sequential requests alternating A, B, A, …; allowed = answers 200`,
        syncLag: `${o.samples} samples: one request from a fresh client to A; from its answer until B's \`show table ${TABLE} key\` shows a count ≥ 1, B polled back to back over its runtime API`,
      },
      results,
      markdown: (header) =>
        [
          '## Peers: two replicas sharing one rate limit (KONTENA_LB_PEERS=etcd), plain and over TLS',
          '',
          '| measure | median | p90 | p99 | min | max |',
          '|---|---:|---:|---:|---:|---:|',
          ...rows,
          '',
          ...modes.map((mode) => {
            const r = results[mode]!;
            return `- ${mode}: measured ${r.resyncAfterConnectMs} ms after the peers connected (first resync); rounds over the limit: ${r.overLimit} of ${o.rounds}; reloads during the rounds: A ${r.reloadsDuringRounds.a}, B ${r.reloadsDuringRounds.b}; runtime API polls per lag sample: ${r.pollsPerSample}`;
          }),
          ...footer(header),
        ].join('\n'),
    };
  });
}

type Mode = 'plain' | 'tls';
type PairResults = Awaited<ReturnType<typeof measurePair>>;

/** One pair of replicas (plain, or with KONTENA_LB_PEERS_CERT): the rounds, then the sync-lag samples; the pair is stopped after. */
async function measurePair(
  ctx: BenchContext,
  o: { readonly from: 'source' | 'dist'; readonly rounds: number; readonly limit: number; readonly samples: number },
  pair: { readonly mode: Mode; readonly peersCert: string | undefined; readonly backendPort: number; readonly next: () => string },
) {
  const { log } = ctx;
  const { mode, peersCert, next } = pair;
  const peerEnv = async (name: string) => ({
    KONTENA_LB_PEERS: 'etcd',
    KONTENA_LB_PEERS_ADDRESS: `127.0.0.1:${await freePort()}`,
    KONTENA_LB_PEER_NAME: name,
    ...(peersCert ? { KONTENA_LB_PEERS_CERT: peersCert } : {}),
  });
  log(`${NAME} (${mode}): starting replica A (with etcd) and replica B on A's etcd and prefix`);
  const a = await startStack({ name: `${NAME}-${mode}-a`, from: o.from, log, env: await peerEnv('bench-a'), readHaproxyLines: false });
  ctx.defer(() => a.stop());
  // B's own etcd stays unused: ETCD_ENDPOINTS and ETCD_PATH point it at A's.
  const b = await startStack({
    name: `${NAME}-${mode}-b`,
    from: o.from,
    log,
    env: { ...(await peerEnv('bench-b')), ETCD_ENDPOINTS: a.etcd.endpoint, ETCD_PATH: a.prefix },
    readHaproxyLines: false,
  });
  ctx.defer(() => b.stop());
  const revision = await a.write({
    [`services/${SERVICE}/virtual_hosts`]: HOST,
    [`services/${SERVICE}/rate_limit`]: `${o.limit}/60s`,
    [`services/${SERVICE}/upstreams/one`]: `127.0.0.1:${pair.backendPort}`,
  });
  await Promise.all([a.waitApplied(revision, 30_000), b.waitApplied(revision, 30_000)]);
  await waitFor(async () => (await getFrom(a.httpPort, next()).catch(() => 0)) === 200 && (await getFrom(b.httpPort, next()).catch(() => 0)) === 200, {
    timeoutMs: 30_000,
    what: 'both replicas to serve the service',
  });
  await waitFor(async () => (await connectedPeers(a)).includes('bench-b') && (await connectedPeers(b)).includes('bench-a'), {
    timeoutMs: 30_000,
    what: 'the replicas to connect as peers',
  });

  const connectedAt = performance.now();
  await waitFor(async () => (await resynced(a)) && (await resynced(b)), {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: 'both workers to finish their first resync',
  });
  const resyncMs = Math.round(performance.now() - connectedAt);
  log(`  ${mode}: both workers resynced ${resyncMs} ms after connecting`);
  const reloadsBefore = { a: a.actionCounts().reloaded, b: b.actionCounts().reloaded };
  const allowed: number[] = [];
  for (let r = 1; r <= o.rounds; r++) {
    ctx.check();
    const client = next();
    let ok = 0;
    for (let i = 0; i < 3 * o.limit; i++) if ((await getFrom(i % 2 === 0 ? a.httpPort : b.httpPort, client)) === 200) ok++;
    allowed.push(ok);
    if (r % 5 === 0 || r === o.rounds) log(`  ${mode} round ${r}/${o.rounds}: ${ok} allowed of ${3 * o.limit} (limit ${o.limit})`);
  }

  const lags: number[] = [];
  let polls = 0;
  for (let s = 0; s < o.samples; s++) {
    ctx.check();
    const client = next();
    await getFrom(a.httpPort, client);
    const answered = performance.now();
    for (;;) {
      polls++;
      if ((await counterAt(b, client)) >= 1) break;
      if (performance.now() - answered > 5000) throw new Error(`replica B never saw the counter of ${client}`);
    }
    lags.push(performance.now() - answered);
  }
  a.checkAlive();
  b.checkAlive();
  const results = {
    limit: o.limit,
    resyncAfterConnectMs: resyncMs,
    requestsPerRound: 3 * o.limit,
    allowed: spread(allowed),
    overLimit: allowed.filter((n) => n > o.limit).length,
    syncLagMs: spread(lags),
    pollsPerSample: Math.round((polls / o.samples) * 10) / 10,
    // A reload during the rounds (a registration lost and renewed) would explain a round over the limit.
    reloadsDuringRounds: { a: a.actionCounts().reloaded - reloadsBefore.a, b: b.actionCounts().reloaded - reloadsBefore.b },
  };
  // The next pair is measured alone on the machine (stop is idempotent: the deferred stops do nothing then).
  await Promise.all([b.stop(), a.stop()]);
  return results;
}
