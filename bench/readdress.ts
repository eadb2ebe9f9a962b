/**
 * Re-address under load: a redeploy that keeps the instance's name. A Kontena container keeps
 * its name (`web-1`) and gets a new address when it is redeployed; a single-instance service
 * whose instance moves must not fail a request while both the old and the new address answer.
 *
 * The real stack (etcd, the controller as a child process with its HAProxy, default settings:
 * KONTENA_LB_CHECK_INTERVAL 2s) and two backends, alpha and bravo. One service, one instance
 * `move-1`; --moves times, one etcd put points it at the other backend. Constant load
 * (keep-alive and new-connection clients) runs throughout; every request that is not a 200
 * from alpha or bravo counts as failed. Per move, the clock runs from just before the etcd
 * write to the first answer from the new backend (a poll on a new connection every ~2 ms).
 */
import { startBackends } from './lib/backends.js';
import { commandLine, footer, runBench, spread, type ReportHeader, type Spread } from './lib/harness.js';
import { explain, parseOptions, type IntOption } from './lib/args.js';
import { startLoad, type LoadResult } from './lib/http-load.js';
import { startStack } from './lib/stack.js';
import { request, sleep, waitFor } from '../scripts/lib/local-stack.js';

const NAME = 'readdress';
const OPTIONS = {
  moves: { flag: '--moves', help: 'address changes of the single instance', default: 100, min: 1, max: 2000 },
  keepalive: { flag: '--keepalive', help: 'keep-alive clients', default: 4, min: 0, max: 64 },
  fresh: { flag: '--new', help: 'new-connection clients', default: 4, min: 0, max: 64 },
} satisfies Record<string, IntOption>;

const HOST = 'move.bench.local';
const POLL_INTERVAL_MS = 2;
const MOVE_TIMEOUT_MS = 20_000;
const WARMUP_MS = 1000;
const TOTAL_BUDGET_MS = 20 * 60_000;

export async function run(args: readonly string[]): Promise<number> {
  const parsed = parseOptions(NAME, args, OPTIONS);
  if (typeof parsed === 'string') return explain(NAME, parsed, OPTIONS);
  const o = parsed;
  if (o.keepalive + o.fresh === 0) return explain(NAME, 'at least one client (--keepalive or --new)', OPTIONS);

  return runBench(NAME, TOTAL_BUDGET_MS, async (ctx) => {
    const { log } = ctx;
    const backends = await startBackends(['alpha', 'bravo']);
    ctx.defer(() => backends.close());
    const stack = await startStack({ name: NAME, from: o.from, log, readHaproxyLines: false });
    ctx.defer(() => stack.stop());
    const check = () => {
      ctx.check();
      stack.checkAlive();
    };
    const [alpha, bravo] = backends.list as [(typeof backends.list)[0], (typeof backends.list)[0]];
    await stack.waitApplied(await stack.write({ 'services/move/virtual_hosts': HOST, 'services/move/upstreams/move-1': alpha.address }), 60_000);
    await waitFor(async () => (await request({ port: stack.httpPort, path: '/', host: HOST, timeoutMs: 2000 })).backend === alpha.name, {
      timeoutMs: 30_000,
      intervalMs: 20,
      what: `${HOST} to be served by alpha`,
      bail: check,
    });
    const actionsBefore = stack.actionCounts();

    log(`${NAME}: ${o.moves} moves under ${o.keepalive} keep-alive + ${o.fresh} new-connection clients`);
    const load = await startLoad({
      port: stack.httpPort,
      targets: [{ host: HOST, path: '/', servedBy: ['alpha', 'bravo'] }],
      keepAliveLoops: o.keepalive,
      newConnectionLoops: o.fresh,
      maxDurationMs: TOTAL_BUDGET_MS,
    });
    let loadResult: LoadResult | undefined;
    ctx.defer(async () => {
      if (!loadResult) await load.stop().catch(() => undefined);
    });
    await sleep(WARMUP_MS);

    const movedMs: number[] = [];
    for (let i = 0; i < o.moves; i++) {
      check();
      const to = i % 2 === 0 ? bravo : alpha;
      const t0 = performance.now();
      const revision = await stack.write({ 'services/move/upstreams/move-1': to.address });
      for (;;) {
        const sent = performance.now();
        const reply = await request({ port: stack.httpPort, path: '/', host: HOST, timeoutMs: 2000 }).catch(() => undefined);
        if (reply?.backend === to.name) break;
        if (sent - t0 > MOVE_TIMEOUT_MS) throw new Error(`move ${i}: ${HOST} not served by ${to.name} within ${MOVE_TIMEOUT_MS} ms`);
        const wait = POLL_INTERVAL_MS - (performance.now() - sent);
        if (wait > 0) await sleep(wait);
      }
      movedMs.push(performance.now() - t0);
      await stack.waitApplied(revision, 10_000);
      if ((i + 1) % 20 === 0) log(`  ${i + 1}/${o.moves}`);
    }
    loadResult = await load.stop();
    const actionsAfter = stack.actionCounts();
    const results = {
      moves: o.moves,
      requests: loadResult.requests,
      failed: loadResult.failed,
      failures: loadResult.failures.slice(0, 20),
      perSecond: loadResult.perSecond,
      movedMs: spread(movedMs),
      reloadsDuringMoves: actionsAfter.reloaded - actionsBefore.reloaded,
      runtimeApplies: actionsAfter.runtime - actionsBefore.runtime,
    };
    return {
      out: o.out,
      command: commandLine(NAME, args),
      method: {
        stack: 'etcd 3.4, the controller (child process) and its HAProxy 2.6, default settings (check interval 2s)',
        service: 'one HTTP service, one instance move-1, moved between two live backends (alpha, bravo) by one etcd put per move',
        load: `${o.keepalive} keep-alive + ${o.fresh} new-connection closed-loop clients; a failure is any answer but a 200 from alpha or bravo, or a connection error`,
        movedMs: 'from just before the etcd put to the first answer from the new backend, polled on a new connection every ~2 ms',
      },
      results,
      markdown: (header) => markdown(results, header),
    };
  });
}

function markdown(
  r: { moves: number; requests: number; failed: number; perSecond: number; movedMs: Spread; reloadsDuringMoves: number; runtimeApplies: number },
  header: ReportHeader,
): string {
  return [
    '## Re-address under load: a single instance moved between two live addresses',
    '',
    '| moves | requests | failed | requests/s | move → traffic median ms | p90 ms | p99 ms | max ms | reloads | runtime applies |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${r.moves} | ${r.requests} | ${r.failed} | ${r.perSecond} | ${r.movedMs.median} | ${r.movedMs.p90} | ${r.movedMs.p99} | ${r.movedMs.max} | ${r.reloadsDuringMoves} | ${r.runtimeApplies} |`,
    '',
    `- target: zero failed requests (${r.failed === 0 ? 'met' : 'MISSED'})`,
    ...footer(header),
  ].join('\n');
}
