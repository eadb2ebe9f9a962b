/**
 * The stack the load benchmarks run against: a real etcd and the real controller (`edgelb run`
 * as a child process, with its supervised HAProxy) on free loopback ports in a temp dir. Tracks
 * every apply the controller logs (revision, how: runtime API / reload / start / failure, and
 * duration), reads HAProxy's own log lines into counts, and keeps the unusual ones as evidence:
 * the access log HAProxy writes itself to the controller's stdout (the text format, as plain
 * lines), its warnings and alerts come as the controller's JSON lines (component haproxy).
 */
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sendCommand } from '../../src/haproxy/master-cli.js';
import { freePort, REPO_ROOT, spawnChild, startEtcd, type Child, type LocalEtcd, type LogEntry } from '../../scripts/lib/local-stack.js';

export type ApplyAction = 'runtime' | 'reloaded' | 'started' | 'failed';

export interface ApplyRecord {
  readonly revision: string;
  readonly action: ApplyAction;
  readonly durationMs: number | undefined;
  /** Epoch ms when the bench read the log line. */
  readonly seenAt: number;
  readonly error?: string;
}

export interface StackOptions {
  readonly name: string;
  readonly from: 'source' | 'dist';
  /** Extra settings for the controller, e.g. KONTENA_LB_CHECK_INTERVAL. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Read HAProxy's log lines (access log included) into haproxyLog(); default true. Off, they
   * are only counted, which spares the bench process a JSON parse per request.
   */
  readonly readHaproxyLines?: boolean;
  /**
   * The controller's stdout (its JSON log and HAProxy's access log) goes to this file (e.g.
   * /dev/null) instead of a pipe the bench reads, so reading it costs nothing: then the bench
   * sees no apply (waitApplied rejects) and no HAProxy line; stderr is still read.
   */
  readonly stdoutFile?: string;
  readonly log: (line: string) => void;
}

/** An HAProxy log line the bench keeps: an access-log line that was not a clean 2xx, or a notice/warning/alert. */
export interface HaproxyLine {
  readonly seenAt: number;
  readonly line: string;
}

export interface HaproxyLogSummary {
  readonly accessLines: number;
  readonly byStatusClass: Record<string, number>;
  /** Termination states other than `----` (HAProxy's "session state at disconnection"), by state. */
  readonly abnormalTermination: Record<string, number>;
  /** Requests HAProxy had to retry (a connection to a server failed), and those redispatched to another server. */
  readonly retried: number;
  readonly redispatched: number;
  /** Access lines with a server of `<NOSRV>` (no server was usable). */
  readonly noServer: number;
  readonly otherLines: number;
  readonly warnings: number;
  readonly alerts: number;
  /** Unusual access lines (not 2xx, abnormal termination, retried) and every warning/alert, first 300. */
  readonly notable: readonly HaproxyLine[];
}

export interface Stack {
  readonly tempDir: string;
  readonly stateDir: string;
  readonly prefix: string;
  readonly httpPort: number;
  readonly masterSocket: string;
  /** The current worker's runtime API (stats socket). */
  readonly adminSocket: string;
  readonly etcd: LocalEtcd;
  readonly controller: { readonly process: Child };
  readonly applies: readonly ApplyRecord[];
  /** Applies by action since the start. */
  actionCounts(): Record<ApplyAction, number>;
  /** One etcd transaction: a string puts the key (relative to the prefix), null deletes it. Returns the revision. */
  write(changes: Readonly<Record<string, string | null>>): Promise<string>;
  /** Resolves with the apply of `revision` (or of a later one that includes it); rejects after the timeout. */
  waitApplied(revision: string, timeoutMs: number): Promise<ApplyRecord>;
  haproxyLog(): HaproxyLogSummary;
  /** Fields of the current worker's `show info` (DroppedLogs, CumReq, ...); empty if the socket does not answer. */
  showInfo(): Promise<Record<string, string>>;
  /** Controller warnings and errors (not HAProxy's lines), first 200. */
  readonly controllerProblems: readonly LogEntry[];
  /** Throws if the controller has exited. */
  checkAlive(): void;
  stop(): Promise<void>;
}

// HAProxy 2.6 `option httplog`: ... frontend backend/server TR/Tw/Tc/Tr/Ta status bytes cookie cookie termination ac/fc/bc/sc/rc ...
const ACCESS = /^\S+ \[[^\]]+\] \S+ (\S+)\/(\S+) -?\d+\/-?\d+\/-?\d+\/-?\d+\/-?\d+ (-?\d+) \S+ \S+ \S+ (\S{4}) \d+\/\d+\/\d+\/\d+\/(\+?)(\d+) /;
const NOTABLE_KEPT = 300;

export async function startStack(options: StackOptions): Promise<Stack> {
  const tempDir = await mkdtemp(path.join(os.tmpdir(), `edgelb-bench-${options.name}-`));
  let etcd: LocalEtcd | undefined;
  try {
    await mkdir(path.join(tempDir, 'etcd'), { mode: 0o700 });
    etcd = await startEtcd(path.join(tempDir, 'etcd'));
  } catch (error) {
    await rm(tempDir, { recursive: true, force: true });
    throw error;
  }
  const stateDir = path.join(tempDir, 'state');
  const prefix = `/kontena/haproxy/bench-${options.name}-${process.pid}`;
  const httpPort = await freePort(undefined);

  const applies: ApplyRecord[] = [];
  const waiters: { target: bigint; resolve: (r: ApplyRecord) => void }[] = [];
  const controllerProblems: LogEntry[] = [];
  const haproxy = {
    accessLines: 0,
    byStatusClass: {} as Record<string, number>,
    abnormalTermination: {} as Record<string, number>,
    retried: 0,
    redispatched: 0,
    noServer: 0,
    otherLines: 0,
    warnings: 0,
    alerts: 0,
    notable: [] as HaproxyLine[],
  };
  const keep = (line: string) => {
    if (haproxy.notable.length < NOTABLE_KEPT) haproxy.notable.push({ seenAt: Date.now(), line });
  };

  const onHaproxyLine = (line: string) => {
    const m = ACCESS.exec(line);
    if (!m) {
      haproxy.otherLines++;
      if (/\[WARNING\]/.test(line)) haproxy.warnings++;
      if (/\[(ALERT|EMERG)\]/.test(line)) haproxy.alerts++;
      if (/\[(WARNING|ALERT|EMERG)\]/.test(line)) keep(line);
      return;
    }
    const [, , server, status, termination, plus, retries] = m as unknown as [string, string, string, string, string, string, string];
    haproxy.accessLines++;
    const statusClass = `${status.slice(0, 1)}xx`;
    haproxy.byStatusClass[statusClass] = (haproxy.byStatusClass[statusClass] ?? 0) + 1;
    let notable = statusClass !== '2xx';
    if (termination !== '----') {
      haproxy.abnormalTermination[termination] = (haproxy.abnormalTermination[termination] ?? 0) + 1;
      notable = true;
    }
    if (Number(retries) > 0) {
      haproxy.retried++;
      notable = true;
    }
    if (plus === '+') haproxy.redispatched++;
    if (server === '<NOSRV>') haproxy.noServer++;
    if (notable) keep(line);
  };

  const onApply = (record: ApplyRecord) => {
    applies.push(record);
    const revision = BigInt(record.revision);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (revision >= waiters[i]!.target) waiters.splice(i, 1)[0]!.resolve(record);
    }
  };

  const onLog = (entry: LogEntry) => {
    if (entry.component === 'haproxy' && typeof entry.haproxy === 'string') {
      onHaproxyLine(entry.haproxy);
      return;
    }
    const msg = String(entry.msg ?? '');
    if (typeof entry.revision === 'string') {
      const durationMs = typeof entry.durationMs === 'number' ? entry.durationMs : undefined;
      const seenAt = Date.now();
      if (entry.action === 'reloaded' || entry.action === 'started') {
        onApply({ revision: entry.revision, action: entry.action, durationMs, seenAt });
      } else if (entry.action === 'runtime' || msg.startsWith('applied through the runtime API')) {
        onApply({ revision: entry.revision, action: 'runtime', durationMs, seenAt });
      } else if (msg.startsWith('apply failed')) {
        onApply({ revision: entry.revision, action: 'failed', durationMs, seenAt, error: String(entry.err ?? '') });
      }
    }
    const level = typeof entry.level === 'number' ? entry.level : 30;
    if (level >= 40 && controllerProblems.length < 200) controllerProblems.push(entry);
    if (level >= 50) options.log(`  edgelb: ${msg} ${JSON.stringify({ ...entry, msg: undefined, time: undefined })}`);
  };

  let controller: { process: Child };
  let stdoutFd: number | undefined;
  try {
    if (options.stdoutFile !== undefined) stdoutFd = openSync(options.stdoutFile, 'a');
    const ports = { https: await freePort(undefined), stats: await freePort(undefined), admin: await freePort() };
    const args =
      options.from === 'dist' ? [path.join(REPO_ROOT, 'dist', 'src', 'main.js'), 'run'] : ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'main.ts'), 'run'];
    const readHaproxyLines = options.readHaproxyLines ?? true;
    // The same as scripts/lib/local-stack.ts startController, but HAProxy's lines (one per request
    // under load) are recognised before any JSON parse, and extra settings go into the environment.
    const proc = spawnChild('edgelb', process.execPath, args, {
      env: {
        ...process.env,
        ETCD_ENDPOINTS: etcd.endpoint,
        ETCD_PATH: prefix,
        KONTENA_LB_HTTP_PORT: String(httpPort),
        KONTENA_LB_HTTPS_PORT: String(ports.https),
        KONTENA_LB_STATS_PORT: String(ports.stats),
        KONTENA_LB_ADMIN_PORT: String(ports.admin),
        KONTENA_LB_STATE_DIR: stateDir,
        LOG_LEVEL: 'info',
        ...options.env,
        PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin`,
      },
      stdoutFd,
      onStdoutLine: (line) => {
        // HAProxy's access log, written by HAProxy itself to the stdout it shares with the controller.
        if (!line.startsWith('{')) {
          if (readHaproxyLines) onHaproxyLine(line);
          else haproxy.otherLines++;
          return;
        }
        if (!readHaproxyLines && line.includes('"component":"haproxy"') && !/\[(WARNING|ALERT|EMERG)\]/.test(line)) {
          haproxy.otherLines++;
          return;
        }
        let entry: LogEntry;
        try {
          const parsed: unknown = JSON.parse(line);
          entry = parsed && typeof parsed === 'object' ? (parsed as LogEntry) : { msg: line };
        } catch {
          entry = { msg: line };
        }
        onLog(entry);
      },
      onStderrLine: (line) => onLog({ level: 50, msg: line, stream: 'stderr' }),
    });
    controller = { process: proc };
  } catch (error) {
    if (stdoutFd !== undefined) closeSync(stdoutFd);
    await etcd.stop().catch(() => undefined);
    await rm(tempDir, { recursive: true, force: true });
    throw error;
  }

  const checkAlive = () => {
    if (controller.process.exited) throw new Error(`the controller exited:\n${controller.process.tail()}`);
  };
  let stopped = false;
  return {
    tempDir,
    stateDir,
    prefix,
    httpPort,
    masterSocket: path.join(stateDir, 'master.sock'),
    adminSocket: path.join(stateDir, 'haproxy.sock'),
    etcd,
    controller,
    applies,
    controllerProblems,
    actionCounts() {
      const counts: Record<ApplyAction, number> = { runtime: 0, reloaded: 0, started: 0, failed: 0 };
      for (const a of applies) counts[a.action]++;
      return counts;
    },
    async write(changes) {
      const ops = Object.entries(changes).map(([key, value]) =>
        value === null
          ? { request_delete_range: { key: Buffer.from(`${prefix}/${key}`) } }
          : { request_put: { key: Buffer.from(`${prefix}/${key}`), value: Buffer.from(value) } },
      );
      const result = await etcd!.client.kv.txn({ success: ops });
      return String(result.header.revision);
    },
    waitApplied(revision, timeoutMs) {
      if (stdoutFd !== undefined)
        return Promise.reject(new Error("waitApplied: the controller's stdout goes to a file (stdoutFile), so its applies are not seen"));
      const target = BigInt(revision);
      const done = applies.find((a) => BigInt(a.revision) >= target);
      if (done) return Promise.resolve(done);
      return new Promise((resolve, reject) => {
        const waiter = {
          target,
          resolve: (record: ApplyRecord) => {
            clearTimeout(timer);
            clearInterval(watchdog);
            resolve(record);
          },
        };
        const fail = (error: Error) => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          clearTimeout(timer);
          clearInterval(watchdog);
          reject(error);
        };
        const timer = setTimeout(() => fail(new Error(`no apply logged for revision ${revision} within ${timeoutMs} ms`)), timeoutMs);
        const watchdog = setInterval(() => {
          try {
            checkAlive();
          } catch (error) {
            fail(error as Error);
          }
        }, 200);
        waiters.push(waiter);
      });
    },
    haproxyLog: () => ({
      ...haproxy,
      byStatusClass: { ...haproxy.byStatusClass },
      abnormalTermination: { ...haproxy.abnormalTermination },
      notable: [...haproxy.notable],
    }),
    async showInfo() {
      try {
        const text = await sendCommand(path.join(stateDir, 'haproxy.sock'), 'show info', 5000);
        return Object.fromEntries(
          text
            .split('\n')
            .filter((l) => l.includes(': '))
            .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2).trim()]),
        );
      } catch {
        return {};
      }
    },
    checkAlive,
    async stop() {
      if (stopped) return;
      stopped = true;
      // SIGTERM: the controller stops HAProxy gracefully, then exits; its process group is killed after 40 s.
      await controller.process.stop('SIGTERM', 40_000).catch((error: Error) => options.log(`  controller: ${error.message}`));
      if (stdoutFd !== undefined) closeSync(stdoutFd);
      await etcd!.stop().catch((error: Error) => options.log(`  etcd: ${error.message}`));
      await rm(tempDir, { recursive: true, force: true });
    },
  };
}
