/**
 * Policies: requests per second of one service with traffic policies on (a rate limit, an allow
 * list, request and response headers, CORS) against the same service with none, through the
 * same edgelb and HAProxy, in one run (issue 15: ratio ≥ 0.9).
 *
 * Two services on one edgelb stack share one nginx backend: `plain` and `policies`, told apart
 * by Host. wrk loads one at a time; --rounds rounds, each measuring both, the order alternating
 * so drift on the shared machine falls on both alike. The rate limit is set far above what wrk
 * reaches, so every request is counted against it and none is refused: the cost measured is the
 * check, not a 429. The ratio is per round (policies / plain), then the median of the rounds.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { locateExecutable } from '../src/config.js';
import { freePort } from '../scripts/lib/local-stack.js';
import { explain, type IntOption, parseOptions } from './lib/args.js';
import { commandLine, footer, runBench, spread } from './lib/harness.js';
import { quantile } from './report.js';
import { BACKEND_NAME, NGINX_BIN, startBackend, waitServed } from './lib/reference-proxies.js';
import { startStack } from './lib/stack.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

const NAME = 'policies';
const OPTIONS = {
  rounds: { flag: '--rounds', help: 'rounds, each measuring both services once', default: 6, min: 1, max: 30 },
  durationS: { flag: '--duration', help: 'seconds counted per service and round', default: 5, min: 1, max: 60 },
  warmupS: { flag: '--warmup', help: 'seconds of load before counting, per service and round', default: 1, min: 0, max: 30 },
  connections: { flag: '--connections', help: 'wrk keep-alive connections', default: 32, min: 1, max: 1024 },
  threads: { flag: '--threads', help: 'wrk threads', default: 2, min: 1, max: 16 },
} satisfies Record<string, IntOption>;

const PLAIN = 'plain.bench.local';
const POLICIES = 'policies.bench.local';
const TOTAL_BUDGET_MS = 20 * 60_000;

/** The policy keys of issue 15 the `policies` service carries (the rate limit far above wrk's rate). */
export const POLICY_ENTRIES: Readonly<Record<string, string>> = {
  rate_limit: '10000000/1s',
  ip_allow: '127.0.0.0/8, ::1',
  request_headers: 'set X-Bench policies\nadd X-Request-Tag bench\ndel X-Unwanted',
  response_headers: 'set X-Frame-Options DENY\nset X-Content-Type-Options nosniff',
  cors_origins: 'https://app.example.com',
};

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseOptions(NAME, args, OPTIONS);
  if (typeof parsed === 'string') return explain(NAME, parsed, OPTIONS);
  const o = parsed;

  return runBench(NAME, TOTAL_BUDGET_MS, async (ctx) => {
    const { log } = ctx;
    if (locateExecutable('wrk', process.env.PATH ?? '') === undefined || locateExecutable(NGINX_BIN, '') === undefined) {
      throw new Error('wrk and nginx are needed (bash scripts/setup.sh installs them)');
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-bench-policies-'));
    ctx.defer(() => rm(dir, { recursive: true, force: true }));
    log(`${NAME}: starting the nginx backend and an edgelb stack with two services`);
    const backend = await startBackend(path.join(dir, 'backend'), await freePort());
    ctx.defer(() => backend.stop());
    const stack = await startStack({ name: NAME, from: o.from, log, stdoutFile: path.join(dir, 'edgelb.stdout') });
    ctx.defer(() => stack.stop());
    const upstream = `127.0.0.1:${backend.port}`;
    const entries: Record<string, string> = {
      'services/plain/virtual_hosts': PLAIN,
      'services/plain/upstreams/nginx': upstream,
      'services/policies/virtual_hosts': POLICIES,
      'services/policies/upstreams/nginx': upstream,
    };
    for (const [key, value] of Object.entries(POLICY_ENTRIES)) entries[`services/policies/${key}`] = value;
    await stack.write(entries);
    const check = () => {
      ctx.check();
      stack.checkAlive();
    };
    for (const host of [PLAIN, POLICIES]) await waitServed(stack.httpPort, host, host, check);
    const refused = stack.controllerProblems.filter((p) => JSON.stringify(p).includes('services/policies/'));
    if (refused.length > 0) throw new Error(`a policy entry was refused: ${JSON.stringify(refused[0])}`);

    const measure = async (host: string): Promise<WrkResult> => {
      const load = { port: stack.httpPort, host, connections: o.connections, threads: o.threads };
      if (o.warmupS > 0) await runWrk({ ...load, durationS: o.warmupS });
      return runWrk({ ...load, durationS: o.durationS });
    };
    const rounds: { round: number; plain: WrkResult; policies: WrkResult; ratio: number }[] = [];
    for (let r = 1; r <= o.rounds; r++) {
      check();
      // Alternating order: of two services measured one after the other, each goes first as often.
      const first = r % 2 === 1 ? PLAIN : POLICIES;
      const a = await measure(first);
      const b = await measure(first === PLAIN ? POLICIES : PLAIN);
      const [plain, policies] = first === PLAIN ? [a, b] : [b, a];
      const ratio = Math.round((policies.requestsPerSecond / plain.requestsPerSecond) * 1000) / 1000;
      rounds.push({ round: r, plain, policies, ratio });
      log(`  round ${r}/${o.rounds}: plain ${plain.requestsPerSecond}/s, policies ${policies.requestsPerSecond}/s, ratio ${ratio}`);
    }
    check();
    const ratios = [...rounds.map((r) => r.ratio)].sort((a, b) => a - b);
    const results = {
      // Three decimals: spread() rounds to 0.1, too coarse for a ratio against 0.9.
      ratio: { median: Math.round(quantile(ratios, 0.5) * 1000) / 1000, min: ratios[0] ?? Number.NaN, max: ratios.at(-1) ?? Number.NaN },
      plainPerSecond: spread(rounds.map((r) => r.plain.requestsPerSecond)),
      policiesPerSecond: spread(rounds.map((r) => r.policies.requestsPerSecond)),
      plainP99Ms: spread(rounds.map((r) => r.plain.p99Ms)),
      policiesP99Ms: spread(rounds.map((r) => r.policies.p99Ms)),
      errors: { plain: rounds.reduce((s, r) => s + r.plain.errors, 0), policies: rounds.reduce((s, r) => s + r.policies.errors, 0) },
      rounds: rounds.map((r) => ({ round: r.round, plain: r.plain.requestsPerSecond, policies: r.policies.requestsPerSecond, ratio: r.ratio })),
    };
    return {
      out: o.out,
      command: commandLine(NAME, args),
      method: {
        services: `one edgelb stack (${o.from}), two HTTP services on one nginx backend (${BACKEND_NAME}): ${PLAIN} with no policy, ${POLICIES} with ${JSON.stringify(POLICY_ENTRIES)}`,
        load: `wrk: ${o.threads} threads, ${o.connections} keep-alive connections, GET /; per service and round ${o.warmupS} s warm-up then ${o.durationS} s counted`,
        rounds: `${o.rounds} rounds, the order alternating; ratio = policies / plain requests per second in the same round, then the median`,
      },
      results,
      markdown: (header) =>
        [
          '## Policies: a service with rate limit, allow list, headers and CORS vs the same service with none',
          '',
          '| measure | median | min | max |',
          '|---|---:|---:|---:|',
          `| requests/s, policies / plain (per round) | ${results.ratio.median} | ${results.ratio.min} | ${results.ratio.max} |`,
          `| plain requests/s | ${results.plainPerSecond.median} | ${results.plainPerSecond.min} | ${results.plainPerSecond.max} |`,
          `| policies requests/s | ${results.policiesPerSecond.median} | ${results.policiesPerSecond.min} | ${results.policiesPerSecond.max} |`,
          `| plain p99 ms | ${results.plainP99Ms.median} | ${results.plainP99Ms.min} | ${results.plainP99Ms.max} |`,
          `| policies p99 ms | ${results.policiesP99Ms.median} | ${results.policiesP99Ms.min} | ${results.policiesP99Ms.max} |`,
          '',
          `- errors (socket errors and non-2xx/3xx answers): plain ${results.errors.plain}, policies ${results.errors.policies}`,
          ...footer(header),
        ].join('\n'),
    };
  });
}
