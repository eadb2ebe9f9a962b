/**
 * wrk (Debian's /usr/bin/wrk, a C load generator): fixed connections and threads, keep-alive
 * HTTP/1.1 GETs in closed loops for a fixed time; its summary (requests/s, latency percentiles
 * from `--latency`, socket errors, non-2xx answers) read into numbers.
 */
import { execa } from 'execa';

export interface WrkOptions {
  readonly port: number;
  readonly host: string;
  readonly path?: string;
  readonly connections: number;
  readonly threads: number;
  readonly durationS: number;
}

export interface WrkResult {
  readonly requestsPerSecond: number;
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Socket errors (connect, read, write, timeout) plus answers that were not 2xx or 3xx. */
  readonly errors: number;
  readonly non2xx: number;
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    '-t',
    String(o.threads),
    '-c',
    String(o.connections),
    '-d',
    `${o.durationS}s`,
    '--latency',
    '-H',
    `Host: ${o.host}`,
    `http://127.0.0.1:${o.port}${o.path ?? '/'}`,
  ];
  // execa stops it by its PID if it ever overruns; wrk ends by itself after -d.
  const result = await execa('wrk', args, { timeout: (o.durationS + 30) * 1000, reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) throw new Error(`wrk ${args.join(' ')} failed (${result.exitCode ?? result.signal}): ${result.stderr || result.stdout}`);
  return parseWrk(result.stdout);
}

const UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function durationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) throw new Error(`wrk: cannot read the duration ${JSON.stringify(text)}`);
  return Math.round(Number(m[1]) * UNITS_MS[m[2]!]! * 1000) / 1000;
}

/** The numbers of wrk's text summary (wrk 4.1). */
export function parseWrk(text: string): WrkResult {
  const need = (re: RegExp, what: string) => {
    const m = re.exec(text);
    if (!m) throw new Error(`wrk: no ${what} in its output:\n${text}`);
    return m;
  };
  const percentile = (p: number) => durationMs(need(new RegExp(`^\\s+${p}%\\s+(\\S+)$`, 'm'), `${p}% latency`)[1]!);
  const total = need(/^\s+(\d+) requests in ([\d.]+)(us|ms|s|m),/m, 'request count');
  const sockets = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  return {
    requestsPerSecond: Number(need(/^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')[1]),
    requests: Number(total[1]),
    seconds: durationMs(`${total[2]}${total[3]}`) / 1000,
    p50Ms: percentile(50),
    p90Ms: percentile(90),
    p99Ms: percentile(99),
    maxMs: durationMs(need(/^\s+Latency\s+\S+\s+\S+\s+(\S+)/m, 'max latency')[1]!),
    errors: (sockets ? sockets.slice(1).reduce((s, n) => s + Number(n), 0) : 0) + non2xx,
    non2xx,
  };
}
