/** The data-plane benchmark's figures: per-path medians, per-round ratios and their medians, the summary table. */
import { footer, spread, type ReportHeader, type Spread } from './lib/harness.js';
import { quantile } from './report.js';

export const SIDES = ['edgelb', 'haproxy', 'edgelb-off', 'haproxy-off', 'caddy', 'nginx', 'direct'] as const;
export type Side = (typeof SIDES)[number];

export interface SideRound {
  readonly side: Side;
  readonly round: number;
  readonly perSecond: number;
  readonly requests: number;
  /** wrk's socket errors plus non-2xx/3xx answers. */
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU seconds over the counted window. */
  readonly cpuS: { readonly proxy: number; readonly controller: number; readonly backend: number };
  /** Share of the machine's CPU time not idle over the window (0-1). */
  readonly machineBusy: number;
  readonly accessLogLines: number;
  readonly accessLogBytes: number;
}

/** The ratios reported: numerator / denominator, each per round. */
export const RATIOS = [
  ['edgelb', 'haproxy'],
  ['edgelb-off', 'haproxy-off'],
  ['edgelb', 'direct'],
  ['caddy', 'edgelb'],
  ['nginx', 'edgelb'],
  // What the access log costs each: edgelb's is HAProxy's own now, so these two should match.
  ['edgelb', 'edgelb-off'],
  ['haproxy', 'haproxy-off'],
] as const satisfies readonly (readonly [Side, Side])[];

/** edgelb / plain HAProxy with access logs on (issue 13). */
export const TARGET_RATIO = 0.95;

export interface PathSummary {
  readonly perSecond: Spread;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly errors: number;
  readonly cpuMsPerThousandRequests: { readonly proxy: number; readonly controller: number; readonly backend: number };
  readonly machineBusy: number;
  readonly accessLogLinesPerRequest: number;
  readonly accessLogBytesPerLine: number;
}

export function summarize(rounds: readonly SideRound[]) {
  const roundNumbers = [...new Set(rounds.map((r) => r.round))];
  const rate = (n: number, s: Side) => rounds.find((r) => r.round === n && r.side === s)!.perSecond;
  const ratios = Object.fromEntries(
    RATIOS.map(([a, b]) => {
      const perRound = roundNumbers.map((n) => round3(rate(n, a) / rate(n, b)));
      return [`${a}/${b}`, { median: round3(median(perRound)), perRound }];
    }),
  ) as Record<`${(typeof RATIOS)[number][0]}/${(typeof RATIOS)[number][1]}`, { median: number; perRound: number[] }>;
  const paths = Object.fromEntries(
    SIDES.map((side) => {
      const list = rounds.filter((r) => r.side === side);
      const requests = list.reduce((s, r) => s + r.requests, 0);
      const perK = (k: keyof SideRound['cpuS']) => round2((1e6 * list.reduce((s, r) => s + r.cpuS[k], 0)) / Math.max(1, requests));
      const lines = list.reduce((s, r) => s + r.accessLogLines, 0);
      const summary: PathSummary = {
        perSecond: spread(list.map((r) => r.perSecond)),
        p50Ms: round2(median(list.map((r) => r.p50Ms))),
        p99Ms: round2(median(list.map((r) => r.p99Ms))),
        requests,
        errors: list.reduce((s, r) => s + r.errors, 0),
        cpuMsPerThousandRequests: { proxy: perK('proxy'), controller: perK('controller'), backend: perK('backend') },
        machineBusy: round2(median(list.map((r) => r.machineBusy))),
        accessLogLinesPerRequest: round3(lines / Math.max(1, requests)),
        accessLogBytesPerLine: lines === 0 ? 0 : Math.round(list.reduce((s, r) => s + r.accessLogBytes, 0) / lines),
      };
      return [side, summary];
    }),
  ) as Record<Side, PathSummary>;
  const target = ratios['edgelb/haproxy'].median;
  // CPU per request varies less with the machine's other load than requests/s do.
  const cpu = (side: Side) => paths[side].cpuMsPerThousandRequests.proxy;
  const proxyCpu = {
    'edgelb/haproxy': round3(cpu('edgelb') / cpu('haproxy')),
    'edgelb-off/haproxy-off': round3(cpu('edgelb-off') / cpu('haproxy-off')),
    accessLogMsPerThousandRequests: { edgelb: round2(cpu('edgelb') - cpu('edgelb-off')), haproxy: round2(cpu('haproxy') - cpu('haproxy-off')) },
  };
  return { ratios, target: { ratio: 'edgelb/haproxy', want: TARGET_RATIO, measured: target, met: target >= TARGET_RATIO }, proxyCpu, paths, rounds };
}

export type DataPlaneResults = ReturnType<typeof summarize>;

const LABELS: Record<Side, string> = {
  edgelb: 'edgelb (access log `text`)',
  haproxy: 'plain HAProxy, httplog',
  'edgelb-off': 'edgelb, access log `off`',
  'haproxy-off': 'plain HAProxy, no log',
  caddy: 'Caddy, JSON access log',
  nginx: 'nginx, access log',
  direct: 'direct to the backend',
};

export function markdown(
  r: DataPlaneResults,
  header: ReportHeader,
  o: { rounds: number; durationS: number; warmupS: number; connections: number; threads: number },
): string {
  const row = (side: Side) => {
    const p = r.paths[side];
    return `| ${LABELS[side]} | ${p.perSecond.median} (${p.perSecond.min}–${p.perSecond.max}) | ${p.p50Ms} | ${p.p99Ms} | ${p.errors} | ${p.cpuMsPerThousandRequests.proxy} | ${p.cpuMsPerThousandRequests.controller} | ${p.cpuMsPerThousandRequests.backend} | ${p.accessLogLinesPerRequest}${p.accessLogBytesPerLine ? ` × ${p.accessLogBytesPerLine} B` : ''} |`;
  };
  const ratio = (key: keyof DataPlaneResults['ratios']) =>
    `${r.ratios[key].median.toFixed(3)} (rounds: ${r.ratios[key].perRound.map((x) => x.toFixed(3)).join(', ')})`;
  return [
    '## Data plane: edgelb vs plain HAProxy, Caddy, nginx and the backend directly',
    '',
    '| path | requests/s, median of rounds (min–max) | p50 ms | p99 ms | errors | proxy CPU ms / 1k req | controller CPU ms / 1k req | backend CPU ms / 1k req | access-log lines per request × bytes |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...(['edgelb', 'haproxy', 'edgelb-off', 'haproxy-off', 'caddy', 'nginx', 'direct'] as const).map(row),
    '',
    `- **edgelb / plain HAProxy, access logs on: ${ratio('edgelb/haproxy')}**; target ≥ ${TARGET_RATIO}: ${r.target.met ? 'met' : 'not met'}`,
    `- edgelb / plain HAProxy, access logs off: ${ratio('edgelb-off/haproxy-off')}`,
    `- edgelb / direct: ${ratio('edgelb/direct')}`,
    `- Caddy / edgelb: ${ratio('caddy/edgelb')}; nginx / edgelb: ${ratio('nginx/edgelb')}`,
    `- access log on / off: edgelb ${ratio('edgelb/edgelb-off')}; plain HAProxy ${ratio('haproxy/haproxy-off')}`,
    `- HAProxy CPU per request, edgelb / plain: ${r.proxyCpu['edgelb/haproxy'].toFixed(3)} with access logs, ${r.proxyCpu['edgelb-off/haproxy-off'].toFixed(3)} without; the access log costs HAProxy ${r.proxyCpu.accessLogMsPerThousandRequests.edgelb} ms per 1k requests in edgelb, ${r.proxyCpu.accessLogMsPerThousandRequests.haproxy} in the plain HAProxy`,
    `- ${o.rounds} rounds, every path once per round (order rotating, reversed every other round), ${o.warmupS} s warm-up + ${o.durationS} s counted each; wrk ${o.threads} threads, ${o.connections} keep-alive connections; latency columns are the median over rounds of wrk's p50/p99`,
    '- wrk, the proxy and the backend share the CPUs: every path is CPU-bound, so a ratio compares CPU cost per request as much as anything',
    ...footer(header),
  ].join('\n');
}

/** spread() rounds to 0.1, too coarse for ratios near 1 and sub-millisecond latencies. */
function median(values: readonly number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
