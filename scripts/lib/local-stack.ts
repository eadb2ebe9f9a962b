/**
 * A throw-away local edgelb stack for the demo and the benchmarks: a real etcd on random
 * loopback ports with a temp data dir, small HTTP backends, and the real controller as a
 * child process (which runs its own HAProxy). Every child gets its own process group, so a
 * Ctrl-C in the terminal reaches only the parent, which stops them in order, by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';

/** The repository root (this file is scripts/lib/local-stack.ts, or dist/scripts/lib/local-stack.js). */
export const REPO_ROOT = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.resolve(here, '..', '..');
  return path.basename(up) === 'dist' ? path.dirname(up) : up;
})();

export { freePort, sleep, waitFor } from './poll.js';
import { freePort, waitFor } from './poll.js';

/** Whether a listener could bind this port right now (on every interface, as HAProxy's `bind *:port`). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port }, () => server.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------- child processes

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly exited: boolean;
  /** Resolves when the process has exited. */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines it wrote to stderr (and stdout when not handled elsewhere). */
  tail(): string;
  /**
   * Sends `signal` to the process, waits up to `timeoutMs`, then SIGKILLs its whole process
   * group (the child and anything it started, e.g. HAProxy). Resolves once it has exited.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

const liveGroups = new Set<number>();
let exitHookInstalled = false;

/** Last resort when the parent exits without stopping its children: kill their groups, by PID. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: the group is gone
  }
}

export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface SpawnOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Called with each stdout line; when absent stdout goes into the tail with stderr. */
  readonly onStdoutLine?: (line: string) => void;
  /** An open file descriptor (a file, /dev/null) the child writes its stdout to instead of a pipe to this process. */
  readonly stdoutFd?: number;
  readonly onStderrLine?: (line: string) => void;
}

export function spawnChild(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Child {
  installExitHook();
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', options.stdoutFd ?? 'pipe', 'pipe'],
    detached: true, // own process group: terminal signals go to the parent only
  });
  if (child.pid === undefined) {
    // A spawn failure (ENOENT) is also emitted as 'error' later; nothing else listens for it.
    child.on('error', () => undefined);
    throw new Error(`cannot start ${name} (${command}): is it installed and on PATH?`);
  }
  const pid = child.pid;
  liveGroups.add(pid);
  const tailLines: string[] = [];
  const remember = (line: string) => {
    tailLines.push(line);
    if (tailLines.length > 40) tailLines.shift();
  };
  let exited = false;
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (error) => {
      remember(`spawn error: ${error.message}`);
      exited = true;
      liveGroups.delete(pid);
      resolve({ code: null, signal: null });
    });
    child.on('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });
  forwardLines(child.stdout, options.onStdoutLine ?? remember);
  forwardLines(child.stderr, (line) => {
    remember(line);
    options.onStderrLine?.(line);
  });

  return {
    name,
    pid,
    get exited() {
      return exited;
    },
    done,
    tail: () => tailLines.join('\n'),
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (!exited) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
        const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), timeoutMs);
        await done;
        clearTimeout(timer);
      }
      // Anything left in its group (an orphaned HAProxy worker, say) goes too.
      if (groupAlive(pid)) {
        killGroup(pid, 'SIGKILL');
        await waitFor(() => !groupAlive(pid), { timeoutMs: 5000, intervalMs: 20, what: `${name} process group to exit` }).catch(() => undefined);
      }
      liveGroups.delete(pid);
    },
  };
}

function forwardLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let buffer = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line.trim() !== '') onLine(line);
    }
  });
  stream.on('end', () => {
    if (buffer.trim() !== '') onLine(buffer);
    buffer = '';
  });
}

// ---------------------------------------------------------------- etcd

export interface LocalEtcd {
  readonly endpoint: string;
  readonly client: Etcd3;
  readonly process: Child;
  stop(): Promise<void>;
}

/**
 * Debian's etcd on two free loopback ports, data in `dataDir`; resolves once /health answers.
 * `enableV2`: also serve the v2 API (`/v2/keys`), which a Kontena grid's agents write with.
 */
export async function startEtcd(dataDir: string, { timeoutMs = 20_000, enableV2 = false } = {}): Promise<LocalEtcd> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const proc = spawnChild('etcd', 'etcd', [
    '--name',
    'edgelb-local',
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    endpoint,
    '--advertise-client-urls',
    endpoint,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `edgelb-local=${peer}`,
    '--log-level',
    'error',
    '--logger',
    'zap',
    ...(enableV2 ? ['--enable-v2'] : []),
  ]);
  try {
    await waitFor(
      async () => {
        const reply = await request({ port: clientPort, path: '/health', host: '127.0.0.1', timeoutMs: 1000 });
        return reply.status === 200 && reply.body.includes('true');
      },
      {
        timeoutMs,
        intervalMs: 50,
        what: 'etcd to answer /health',
        bail: () => {
          if (proc.exited) throw new Error(`etcd exited: ${proc.tail() || 'no output'}`);
        },
      },
    );
  } catch (error) {
    await proc.stop('SIGKILL');
    throw error;
  }
  const client = new Etcd3({ hosts: endpoint, dialTimeout: 3000 });
  return {
    endpoint,
    client,
    process: proc,
    async stop() {
      client.close();
      await proc.stop('SIGTERM', 10_000);
    },
  };
}

// ---------------------------------------------------------------- backends

export interface SampleBackend {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

export const BACKEND_HEADER = 'x-served-by';

/**
 * A small HTTP server naming itself and the request it received: HTML for browsers,
 * plain text otherwise, and always an `x-served-by: <name>` header.
 */
export async function startSampleBackend(name: string, colour = '#2d6cdf'): Promise<SampleBackend> {
  const server = http.createServer((req, res) => {
    const host = req.headers.host ?? '';
    const forwardedFor = String(req.headers['x-forwarded-for'] ?? '');
    const wantsHtml = String(req.headers.accept ?? '').includes('text/html');
    const body = wantsHtml
      ? `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(name)}</title></head>` +
        `<body style="font-family:system-ui,sans-serif;margin:3rem"><h1 style="color:${colour}">Hello from ${escapeHtml(name)}</h1>` +
        `<p>I received <code>${escapeHtml(`${req.method ?? ''} ${req.url ?? ''}`)}</code> for host <code>${escapeHtml(host)}</code>` +
        `${forwardedFor ? `, forwarded for <code>${escapeHtml(forwardedFor)}</code>` : ''}.</p></body></html>\n`
      : `Hello from ${name}\n  path: ${req.url ?? ''}\n  host: ${host}\n${forwardedFor ? `  forwarded for: ${forwardedFor}\n` : ''}`;
    res.writeHead(200, {
      'content-type': wantsHtml ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      [BACKEND_HEADER]: name,
      'x-received-path': req.url ?? '',
    });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// ---------------------------------------------------------------- HTTP client

export interface Reply {
  readonly status: number;
  readonly body: string;
  /** Which sample backend answered (its x-served-by header), if one did. */
  readonly backend: string | undefined;
  /** The path the backend received. */
  readonly backendPath: string | undefined;
}

/** One GET on a fresh connection (no keep-alive: after a reload only new connections see the new config). */
export function request(options: { port: number; path: string; host: string; timeoutMs?: number }): Promise<Reply> {
  const { port, path: urlPath, host, timeoutMs = 5000 } = options;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: 'GET', headers: { host, connection: 'close' }, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const backend = res.headers[BACKEND_HEADER];
          const received = res.headers['x-received-path'];
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            backend: typeof backend === 'string' ? backend : undefined,
            backendPath: typeof received === 'string' ? received : undefined,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------- the controller

export type LogEntry = Record<string, unknown>;

export interface ControllerSettings {
  readonly etcdEndpoint: string;
  readonly etcdPath: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly statsPort: number;
  /** KONTENA_LB_ADMIN_PORT (/healthz, /status, /metrics); edgelb's default 8404 when absent. */
  readonly adminPort?: number;
  readonly stateDir: string;
  readonly logLevel?: string;
  /** How to run it: `dist` = node dist/src/main.js (built), `source` = node --import tsx src/main.ts. */
  readonly from: 'dist' | 'source';
  readonly onLog?: (entry: LogEntry, raw: string) => void;
}

export interface LocalController {
  readonly process: Child;
  /** Every JSON log line so far, parsed. */
  readonly logs: LogEntry[];
  stop(timeoutMs?: number): Promise<void>;
}

/** The real `edgelb run` as a child process, configured through its environment. */
export function startController(settings: ControllerSettings): LocalController {
  const logs: LogEntry[] = [];
  const args =
    settings.from === 'dist' ? [path.join(REPO_ROOT, 'dist', 'src', 'main.js'), 'run'] : ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'main.ts'), 'run'];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ETCD_ENDPOINTS: settings.etcdEndpoint,
    ETCD_PATH: settings.etcdPath,
    KONTENA_LB_HTTP_PORT: String(settings.httpPort),
    KONTENA_LB_HTTPS_PORT: String(settings.httpsPort),
    KONTENA_LB_STATS_PORT: String(settings.statsPort),
    ...(settings.adminPort === undefined ? {} : { KONTENA_LB_ADMIN_PORT: String(settings.adminPort) }),
    KONTENA_LB_STATE_DIR: settings.stateDir,
    LOG_LEVEL: settings.logLevel ?? 'info',
    PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin`,
  };
  const proc = spawnChild('edgelb', process.execPath, args, {
    env,
    onStdoutLine: (line) => {
      let entry: LogEntry;
      try {
        const parsed: unknown = JSON.parse(line);
        entry = parsed && typeof parsed === 'object' ? (parsed as LogEntry) : { msg: line };
      } catch {
        // HAProxy writes its access log to the controller's stdout itself, as plain lines.
        entry = { msg: line, component: 'haproxy' };
      }
      logs.push(entry);
      if (logs.length > 5000) logs.splice(0, 1000);
      settings.onLog?.(entry, line);
    },
    onStderrLine: (line) => settings.onLog?.({ level: 50, msg: line, stream: 'stderr' }, line),
  });
  return {
    process: proc,
    logs,
    // SIGTERM: the controller stops HAProxy gracefully (in-flight requests finish), then exits.
    stop: (timeoutMs = 40_000) => proc.stop('SIGTERM', timeoutMs),
  };
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** One pino JSON line as `12:00:01.123 info  [controller] message key=value ...`. */
export function formatLogEntry(entry: LogEntry): string {
  const { time, level, msg, component, ...rest } = entry;
  const clock = typeof time === 'string' ? time.slice(11, 23) : new Date().toISOString().slice(11, 23);
  const levelName = typeof level === 'number' ? (LEVELS[level] ?? String(level)) : String(level ?? 'info');
  const fields = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`)
    .join(' ');
  const where = typeof component === 'string' ? `[${component}] ` : '';
  return `${clock} ${levelName.padEnd(5)} ${where}${String(msg ?? '')}${fields ? ` ${fields}` : ''}`;
}
