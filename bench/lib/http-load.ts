/**
 * Constant HTTP load for the benchmarks: closed-loop clients (keep-alive and new-connection)
 * spread over worker threads (http-load-worker.ts), so the generator does not share one event
 * loop with the benchmark's own bookkeeping and can use every core. Counts every request,
 * keeps the first failures with their time, and a latency histogram per client kind.
 */
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { Histogram, type HistogramData, type LatencySummary } from './histogram.js';
import { nextMessage, startTsWorker } from './ts-worker.js';

export interface LoadTarget {
  readonly host: string;
  readonly path: string;
  /** Allowed x-served-by prefixes; an answer from any other backend is a failure. */
  readonly servedBy?: readonly string[];
}

export interface LoadOptions {
  readonly port: number;
  /** Each client sends to these in turn. */
  readonly targets: readonly LoadTarget[];
  readonly keepAliveLoops: number;
  readonly newConnectionLoops: number;
  /** Worker threads; default min(CPUs, loops). */
  readonly threads?: number;
  /** Per request (connect included); default 10 s. */
  readonly timeoutMs?: number;
  /** Safety bound: the clients stop by themselves after this long. */
  readonly maxDurationMs: number;
  /** Failures kept with their details, per thread; default 500. */
  readonly failuresKept?: number;
}

export interface LoadWorkerConfig {
  readonly port: number;
  readonly targets: readonly LoadTarget[];
  readonly keepAliveLoops: number;
  readonly newConnectionLoops: number;
  readonly loopOffset: number;
  readonly timeoutMs: number;
  readonly maxDurationMs: number;
  readonly failuresKept: number;
}

export type ToWorker = { readonly type: 'start' | 'stats' | 'stop' | 'reset' };

export interface Failure {
  /** Epoch ms when it was seen to fail, and when the request started. */
  readonly at: number;
  readonly startedAt: number;
  readonly kind: 'keepalive' | 'new';
  readonly host: string;
  readonly reason: string;
  readonly detail?: string;
}

export interface KindStats {
  requests: number;
  ok: number;
  failed: number;
  /** Connections opened. */
  connections: number;
  /** Requests sent on a connection that had already carried one. */
  reusedRequests: number;
  reasons: Record<string, number>;
  readonly latency: HistogramData;
}

export interface WorkerStats {
  readonly keepalive: KindStats;
  readonly new: KindStats;
  readonly failures: readonly Failure[];
  /** Share of the time the thread's event loop was busy (0..1): near 1, the generator is the bottleneck. */
  readonly busy: number;
}

export interface KindResult {
  readonly loops: number;
  readonly requests: number;
  readonly ok: number;
  readonly failed: number;
  readonly connections: number;
  readonly reusedRequests: number;
  readonly reasons: Record<string, number>;
  /** Successful requests only. */
  readonly latency: LatencySummary;
}

export interface LoadResult {
  readonly threads: number;
  readonly durationS: number;
  readonly requests: number;
  readonly ok: number;
  readonly failed: number;
  readonly perSecond: number;
  readonly keepalive: KindResult;
  readonly new: KindResult;
  readonly reasons: Record<string, number>;
  readonly latency: LatencySummary;
  /** Kept failures (up to failuresKept per thread), oldest first. */
  readonly failures: readonly Failure[];
  /** Event-loop utilisation of each generator thread (0..1). */
  readonly generatorBusy: readonly number[];
}

export interface RunningLoad {
  readonly threads: number;
  /** Totals so far (since the start or the last reset); the load keeps going. */
  stats(): Promise<LoadResult>;
  /** Starts counting afresh (after a warm-up, say). */
  reset(): Promise<void>;
  /** Stops every client after its current request; the totals. */
  stop(): Promise<LoadResult>;
}

const isType =
  <T extends string>(type: T) =>
  (m: unknown): m is { type: T; stats: WorkerStats } =>
    typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;

export async function startLoad(options: LoadOptions): Promise<RunningLoad> {
  const totalLoops = options.keepAliveLoops + options.newConnectionLoops;
  if (totalLoops < 1 || options.targets.length === 0) throw new Error('startLoad: no clients or no targets');
  const threads = Math.max(1, Math.min(options.threads ?? os.availableParallelism(), totalLoops));
  const share = (n: number, t: number) => Math.floor(n / threads) + (t < n % threads ? 1 : 0);
  const workers: Worker[] = [];
  try {
    for (let t = 0; t < threads; t++) {
      const config: LoadWorkerConfig = {
        port: options.port,
        targets: options.targets,
        keepAliveLoops: share(options.keepAliveLoops, t),
        newConnectionLoops: share(options.newConnectionLoops, t),
        loopOffset: t,
        timeoutMs: options.timeoutMs ?? 10_000,
        maxDurationMs: options.maxDurationMs,
        failuresKept: options.failuresKept ?? 500,
      };
      workers.push(startTsWorker(new URL('./http-load-worker.ts', import.meta.url), config));
    }
    await Promise.all(workers.map((w) => nextMessage(w, isType('ready'))));
  } catch (error) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw error;
  }
  let since = performance.now();
  for (const w of workers) w.postMessage({ type: 'start' } satisfies ToWorker);
  const ask = async (type: 'stats' | 'stop', answer: 'stats' | 'stopped') => {
    const replies = workers.map((w) => nextMessage(w, isType(answer), options.maxDurationMs + 30_000));
    for (const w of workers) w.postMessage({ type } satisfies ToWorker);
    return combine(
      (await Promise.all(replies)).map((r) => r.stats),
      (performance.now() - since) / 1000,
      threads,
      options,
    );
  };
  let stopped = false;
  return {
    threads,
    stats: () => ask('stats', 'stats'),
    async reset() {
      const replies = workers.map((w) => nextMessage(w, isType('reset')));
      for (const w of workers) w.postMessage({ type: 'reset' } satisfies ToWorker);
      await Promise.all(replies);
      since = performance.now();
    },
    async stop() {
      if (stopped) throw new Error('load already stopped');
      stopped = true;
      try {
        return await ask('stop', 'stopped');
      } finally {
        await Promise.all(workers.map((w) => w.terminate()));
      }
    },
  };
}

function combine(all: readonly WorkerStats[], durationS: number, threads: number, options: LoadOptions): LoadResult {
  const kind = (k: 'keepalive' | 'new', loops: number): KindResult & { histogram: Histogram } => {
    const histogram = new Histogram();
    const reasons: Record<string, number> = {};
    let requests = 0,
      ok = 0,
      failed = 0,
      connections = 0,
      reusedRequests = 0;
    for (const s of all) {
      const c = s[k];
      requests += c.requests;
      ok += c.ok;
      failed += c.failed;
      connections += c.connections;
      reusedRequests += c.reusedRequests;
      for (const [reason, n] of Object.entries(c.reasons)) reasons[reason] = (reasons[reason] ?? 0) + n;
      histogram.merge(c.latency);
    }
    return { loops, requests, ok, failed, connections, reusedRequests, reasons, latency: histogram.summary(), histogram };
  };
  const { histogram: ka, ...keepalive } = kind('keepalive', options.keepAliveLoops);
  const { histogram: nc, ...fresh } = kind('new', options.newConnectionLoops);
  const latency = new Histogram();
  latency.merge(ka.data());
  latency.merge(nc.data());
  const reasons: Record<string, number> = { ...keepalive.reasons };
  for (const [reason, n] of Object.entries(fresh.reasons)) reasons[reason] = (reasons[reason] ?? 0) + n;
  const requests = keepalive.requests + fresh.requests;
  return {
    threads,
    durationS: Math.round(durationS * 100) / 100,
    requests,
    ok: keepalive.ok + fresh.ok,
    failed: keepalive.failed + fresh.failed,
    perSecond: Math.round(requests / durationS),
    keepalive,
    new: fresh,
    reasons,
    latency: latency.summary(),
    failures: all.flatMap((s) => s.failures).sort((a, b) => a.at - b.at),
    generatorBusy: all.map((s) => Math.round(s.busy * 100) / 100),
  };
}
