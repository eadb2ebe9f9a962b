/**
 * One load-generator thread (started by http-load.ts): closed-loop HTTP/1.1 clients over raw
 * sockets, each sending one GET after another with no pause. Raw sockets rather than node:http
 * because its client costs several times more CPU per request, and on a small machine the
 * generator would otherwise measure itself.
 *
 *   keepalive  one connection, reused for request after request; a new one only when the server
 *              closed it (Connection: close, or closed while idle) or after a failure
 *   new        a new connection per request (Connection: close); the server closes first, so
 *              TIME_WAIT stays on its side and the client never runs out of ports
 *
 * Every request counts as ok or failed. Failed: a connection error, the connection closed
 * before a complete response, a timeout, a status other than 2xx, or an answer from a backend
 * the target does not allow (x-served-by).
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { Histogram } from './histogram.js';
import type { Failure, KindStats, LoadWorkerConfig, ToWorker, WorkerStats } from './http-load.js';

type Kind = 'keepalive' | 'new';

interface Response {
  readonly status: number;
  readonly servedBy: string | undefined;
  readonly keepAlive: boolean;
  readonly bodyStart: string;
}

class RequestFailed extends Error {}

const config = workerData as LoadWorkerConfig;
const HEADER_END = Buffer.from('\r\n\r\n');

/** One client connection with a minimal HTTP/1.1 response parser (Content-Length, chunked, or until close). */
class Connection {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private received = 0;
  private pending: { resolve: (r: Response) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private ended = false;
  readonly closed: Promise<void>;
  requests = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.received += chunk.length;
      this.parse(false);
    });
    socket.on('end', () => {
      this.ended = true;
      this.parse(true);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(error.code ?? error.message));
    socket.on('close', () => {
      this.ended = true;
      this.parse(true);
    });
  }

  static open(port: number, timeoutMs: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RequestFailed('connect timeout'));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Connection(socket));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new RequestFailed(`connect ${error.code ?? error.message}`));
      });
    });
  }

  get usable(): boolean {
    return !this.ended && !this.socket.destroyed;
  }

  send(request: Buffer, timeoutMs: number): Promise<Response> {
    this.requests++;
    this.chunks = [];
    this.buffered = 0;
    this.received = 0;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail('timeout'), timeoutMs);
      this.pending = { resolve, reject, timer };
      this.socket.write(request);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private fail(reason: string): void {
    const pending = this.pending;
    this.socket.destroy();
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    const what = reason === 'closed' ? (this.received === 0 ? 'closed before any response byte' : 'closed mid-response') : reason;
    pending.reject(new RequestFailed(`${what}${this.requests > 1 ? ' (reused connection)' : ''}`));
  }

  private succeed(response: Response): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve(response);
  }

  private parse(atEnd: boolean): void {
    if (!this.pending) return;
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [buf];
    const headEnd = buf.indexOf(HEADER_END);
    if (headEnd < 0) {
      if (atEnd) this.fail('closed');
      return;
    }
    const head = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
    const statusLine = /^HTTP\/1\.([01]) (\d{3})/.exec(head[0] ?? '');
    if (!statusLine) {
      this.fail(`bad status line ${JSON.stringify((head[0] ?? '').slice(0, 40))}`);
      return;
    }
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const bodyStart = headEnd + 4;
    let bodyEnd: number | undefined;
    let body: Buffer | undefined;
    const length = headers.get('content-length');
    if (length !== undefined) {
      const n = Number(length);
      if (buf.length - bodyStart >= n) {
        bodyEnd = bodyStart + n;
        body = buf.subarray(bodyStart, bodyEnd);
      }
    } else if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
      const parts: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at);
        if (lineEnd < 0) break;
        const size = parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
        if (Number.isNaN(size)) {
          this.fail('bad chunk size');
          return;
        }
        if (size === 0) {
          const trailerEnd = buf.indexOf(HEADER_END, lineEnd);
          const end = buf.subarray(lineEnd, lineEnd + 4).equals(HEADER_END) ? lineEnd + 4 : trailerEnd >= 0 ? trailerEnd + 4 : -1;
          if (end >= 0) {
            bodyEnd = end;
            body = Buffer.concat(parts);
          }
          break;
        }
        if (buf.length < lineEnd + 2 + size + 2) break;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    } else if (atEnd) {
      bodyEnd = buf.length;
      body = buf.subarray(bodyStart);
    }
    if (bodyEnd === undefined || body === undefined) {
      if (atEnd) this.fail('closed');
      return;
    }
    const connection = (headers.get('connection') ?? '').toLowerCase();
    // A body that ran until the close cannot be followed by another response.
    const framed = length !== undefined || headers.has('transfer-encoding');
    const keepAlive = framed && (statusLine[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive'));
    this.succeed({
      status: Number(statusLine[2]),
      servedBy: headers.get('x-served-by'),
      keepAlive: keepAlive && !this.ended,
      bodyStart: body.subarray(0, 120).toString('utf8').replace(/\s+/g, ' '),
    });
  }
}

// ---------------------------------------------------------------- counting

function emptyKind(): { stats: Omit<KindStats, 'latency'>; latency: Histogram } {
  return { stats: { requests: 0, ok: 0, failed: 0, connections: 0, reusedRequests: 0, reasons: {} }, latency: new Histogram() };
}

let counters = { keepalive: emptyKind(), new: emptyKind() };
let failures: Failure[] = [];
let busySince = performance.eventLoopUtilization();

function snapshot(): WorkerStats {
  const kind = (k: Kind): KindStats => ({ ...counters[k].stats, reasons: { ...counters[k].stats.reasons }, latency: counters[k].latency.data() });
  return { keepalive: kind('keepalive'), new: kind('new'), failures: [...failures], busy: performance.eventLoopUtilization(busySince).utilization };
}

function recordFailure(kind: Kind, host: string, reason: string, startedAt: number, detail?: string): void {
  const c = counters[kind].stats;
  c.requests++;
  c.failed++;
  c.reasons[reason] = (c.reasons[reason] ?? 0) + 1;
  if (failures.length < config.failuresKept) failures.push({ at: Date.now(), startedAt, kind, host, reason, ...(detail ? { detail } : {}) });
}

// ---------------------------------------------------------------- the loops

let running = false;
const requests = {
  keepalive: config.targets.map((t) => Buffer.from(`GET ${t.path} HTTP/1.1\r\nHost: ${t.host}\r\nUser-Agent: edgelb-bench\r\n\r\n`, 'latin1')),
  new: config.targets.map((t) => Buffer.from(`GET ${t.path} HTTP/1.1\r\nHost: ${t.host}\r\nUser-Agent: edgelb-bench\r\nConnection: close\r\n\r\n`, 'latin1')),
};

/** Checks one answer; undefined when it is good, else the failure's reason and detail. */
function judge(response: Response, target: LoadWorkerConfig['targets'][number]): [string, string] | undefined {
  if (response.status < 200 || response.status > 299) {
    return [`status ${response.status}`, `served by ${response.servedBy ?? '-'}: ${response.bodyStart}`];
  }
  if (target.servedBy && !target.servedBy.some((prefix) => response.servedBy?.startsWith(prefix))) {
    return ['wrong backend', `served by ${response.servedBy ?? '-'}, expected ${target.servedBy.join('|')}*`];
  }
  return undefined;
}

async function loop(kind: Kind, index: number): Promise<void> {
  let connection: Connection | undefined;
  let next = index % config.targets.length;
  while (running) {
    const t = next;
    next = (next + 1) % config.targets.length;
    const target = config.targets[t]!;
    const startedAt = Date.now();
    const started = performance.now();
    try {
      if (!connection?.usable) {
        connection?.destroy();
        connection = await Connection.open(config.port, config.timeoutMs);
        counters[kind].stats.connections++;
      }
      const reused = connection.requests > 0;
      const response = await connection.send(requests[kind][t]!, config.timeoutMs);
      const elapsed = performance.now() - started;
      const bad = judge(response, target);
      if (bad) {
        recordFailure(kind, target.host, bad[0], startedAt, bad[1]);
      } else {
        const c = counters[kind];
        c.stats.requests++;
        c.stats.ok++;
        if (reused) c.stats.reusedRequests++;
        c.latency.record(elapsed);
      }
      if (kind === 'new' || !response.keepAlive) {
        // Let the server close first (its FIN is on the way), then drop ours.
        const done = connection;
        connection = undefined;
        await Promise.race([done.closed, new Promise((resolve) => setTimeout(resolve, 1000))]);
        done.destroy();
      }
    } catch (error) {
      if (!(error instanceof RequestFailed)) throw error;
      connection?.destroy();
      connection = undefined;
      recordFailure(kind, target.host, error.message, startedAt);
    }
  }
  connection?.destroy();
}

let loops: Promise<void>[] = [];
const stopTimer = setTimeout(() => {
  running = false;
}, config.maxDurationMs);
stopTimer.unref();

parentPort!.on('message', (message: ToWorker) => {
  if (message.type === 'start') {
    running = true;
    busySince = performance.eventLoopUtilization();
    loops = [
      ...Array.from({ length: config.keepAliveLoops }, (_, i) => loop('keepalive', config.loopOffset + i)),
      ...Array.from({ length: config.newConnectionLoops }, (_, i) => loop('new', config.loopOffset + i)),
    ];
  } else if (message.type === 'reset') {
    counters = { keepalive: emptyKind(), new: emptyKind() };
    failures = [];
    busySince = performance.eventLoopUtilization();
    parentPort!.postMessage({ type: 'reset' });
  } else if (message.type === 'stats') {
    parentPort!.postMessage({ type: 'stats', stats: snapshot() });
  } else if (message.type === 'stop') {
    running = false;
    void Promise.all(loops).then(() => {
      clearTimeout(stopTimer);
      parentPort!.postMessage({ type: 'stopped', stats: snapshot() });
    });
  }
});
parentPort!.postMessage({ type: 'ready' });
