/**
 * Peers (issue 15): two edgelb replicas on one etcd with KONTENA_LB_PEERS=etcd share one rate
 * limit. A client alternating between them, --rounds times (each round a fresh client address),
 * sends 3 × the limit: how many were let through, against the limit (target: the limit, not
 * twice it), in the steady state: once both workers finished their first resync. Then the sync lag: a request answered by replica A, and the time until replica B's
 * runtime API (`show table`) shows the client's counter, --samples times (B polled as fast as its
 * runtime API answers: the figure includes one poll's time).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readPeerSessions } from '../src/admin/haproxy-peers.js';
import { sendCommand } from '../src/haproxy/master-cli.js';
import { httpBackendName } from '../src/render/view.js';
import { freePort, waitFor } from '../scripts/lib/local-stack.js';
import { peersFlagsHave } from '../scripts/lib/show-peers.js';
import { explain, type IntOption, parseOptions } from './lib/args.js';
import { commandLine, footer, runBench, spread } from './lib/harness.js';
import { startStack, type Stack } from './lib/stack.js';

const NAME = 'peers';
const OPTIONS = {
  rounds: { flag: '--rounds', help: 'rounds, each a fresh client sending 3 × the limit, alternating replicas', default: 20, min: 1, max: 200 },
  limit: { flag: '--limit', help: 'the rate limit, requests per 60 s', default: 20, min: 2, max: 1000 },
  samples: { flag: '--samples', help: 'sync-lag samples (one fresh client each)', default: 200, min: 1, max: 2000 },
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
    const { log } = ctx;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-bench-peers-'));
    ctx.defer(() => rm(dir, { recursive: true, force: true }));
    const backend = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    ctx.defer(() => new Promise((resolve) => backend.close(resolve)));
    const peerEnv = async (name: string) => ({
      KONTENA_LB_PEERS: 'etcd',
      KONTENA_LB_PEERS_ADDRESS: `127.0.0.1:${await freePort()}`,
      KONTENA_LB_PEER_NAME: name,
    });
    log(`${NAME}: starting replica A (with etcd) and replica B on A's etcd and prefix`);
    const a = await startStack({ name: `${NAME}-a`, from: o.from, log, env: await peerEnv('bench-a'), readHaproxyLines: false });
    ctx.defer(() => a.stop());
    // B's own etcd stays unused: ETCD_ENDPOINTS and ETCD_PATH point it at A's.
    const b = await startStack({
      name: `${NAME}-b`,
      from: o.from,
      log,
      env: { ...(await peerEnv('bench-b')), ETCD_ENDPOINTS: a.etcd.endpoint, ETCD_PATH: a.prefix },
      readHaproxyLines: false,
    });
    ctx.defer(() => b.stop());
    const revision = await a.write({
      [`services/${SERVICE}/virtual_hosts`]: HOST,
      [`services/${SERVICE}/rate_limit`]: `${o.limit}/60s`,
      [`services/${SERVICE}/upstreams/one`]: `127.0.0.1:${(backend.address() as AddressInfo).port}`,
    });
    await Promise.all([a.waitApplied(revision, 30_000), b.waitApplied(revision, 30_000)]);
    const next = clientAddresses();
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
    log(`  both workers resynced ${resyncMs} ms after connecting`);
    const reloadsBefore = { a: a.actionCounts().reloaded, b: b.actionCounts().reloaded };
    const allowed: number[] = [];
    for (let r = 1; r <= o.rounds; r++) {
      ctx.check();
      const client = next();
      let ok = 0;
      for (let i = 0; i < 3 * o.limit; i++) if ((await getFrom(i % 2 === 0 ? a.httpPort : b.httpPort, client)) === 200) ok++;
      allowed.push(ok);
      if (r % 5 === 0 || r === o.rounds) log(`  round ${r}/${o.rounds}: ${ok} allowed of ${3 * o.limit} (limit ${o.limit})`);
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
    return {
      out: o.out,
      command: commandLine(NAME, args),
      method: {
        replicas: `two edgelb stacks (${o.from}) on one etcd and prefix, KONTENA_LB_PEERS=etcd, each with its own HAProxy; one service with rate_limit ${o.limit}/60s on a Node backend`,
        steadyState: 'measured once both workers have finished their first resync (show peers flags 0x3), resyncAfterConnectMs after the peers connected',
        allowed: `${o.rounds} rounds, each a fresh client address sending ${3 * o.limit} sequential requests alternating A, B, A, …; allowed = answers 200`,
        syncLag: `${o.samples} samples: one request from a fresh client to A; from its answer until B's \`show table ${TABLE} key\` shows a count ≥ 1, B polled back to back over its runtime API`,
      },
      results,
      markdown: (header) =>
        [
          '## Peers: two replicas sharing one rate limit (KONTENA_LB_PEERS=etcd)',
          '',
          '| measure | median | p90 | p99 | min | max |',
          '|---|---:|---:|---:|---:|---:|',
          `| requests allowed per client (limit ${o.limit}, ${3 * o.limit} sent alternating) | ${results.allowed.median} | ${results.allowed.p90} | ${results.allowed.p99} | ${results.allowed.min} | ${results.allowed.max} |`,
          `| sync lag A → B, ms | ${results.syncLagMs.median} | ${results.syncLagMs.p90} | ${results.syncLagMs.p99} | ${results.syncLagMs.min} | ${results.syncLagMs.max} |`,
          '',
          `- measured once both workers had finished their first resync, ${results.resyncAfterConnectMs} ms after they connected`,
          `- rounds over the limit: ${results.overLimit} of ${o.rounds}; reloads during the rounds: A ${results.reloadsDuringRounds.a}, B ${results.reloadsDuringRounds.b}; runtime API polls per lag sample: ${results.pollsPerSample}`,
          ...footer(header),
        ].join('\n'),
    };
  });
}
