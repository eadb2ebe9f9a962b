import { connect } from 'node:net';
import { HEALTHY_STATUS, HTTP_CHECK, type HealthCheck } from '../model/health-check.js';

/** A check the controller can run itself: everything but `haproxy-only`. */
export type ProbeCheck = Exclude<HealthCheck, { kind: 'haproxy-only' }>;

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}

export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type Probe = (target: ProbeTarget, check: ProbeCheck, timeoutMs: number) => Promise<ProbeResult>;

/** The status line is all the probe reads; a longer first line is not an HTTP answer. */
const MAX_STATUS_LINE = 1024;
const STATUS_LINE = /^HTTP\/\d\.\d (\d{3})(?: |$)/;

/**
 * The check HAProxy runs on a server, once: a TCP connect, or the HTTP check's request line
 * with the answer's status held against the same range. Never throws.
 */
export const probeServer: Probe = (target, check, timeoutMs) =>
  new Promise((resolve) => {
    const port = check.port ?? target.port;
    const socket = connect({ host: target.host, port });
    let buffered = '';
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.on('error', (error: NodeJS.ErrnoException) => finish({ ok: false, reason: error.code ?? error.message }));
    socket.on('connect', () => {
      if (check.kind === 'connect') {
        finish({ ok: true });
        return;
      }
      socket.write(`${HTTP_CHECK.method} ${check.path} ${HTTP_CHECK.version}\r\n\r\n`);
    });
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const end = buffered.indexOf('\r\n');
      if (end < 0 && buffered.length < MAX_STATUS_LINE) return;
      finish(statusOf(end < 0 ? buffered : buffered.slice(0, end)));
    });
    socket.on('end', () => finish(buffered === '' ? { ok: false, reason: 'closed without an answer' } : statusOf(buffered)));
  });

function statusOf(line: string): ProbeResult {
  const match = STATUS_LINE.exec(line);
  if (!match) return { ok: false, reason: 'not an HTTP answer' };
  const status = Number(match[1]);
  return status >= HEALTHY_STATUS.min && status <= HEALTHY_STATUS.max ? { ok: true } : { ok: false, reason: `HTTP ${status}` };
}
