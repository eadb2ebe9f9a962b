import { execa, type ResultPromise } from 'execa';
import { createInterface } from 'node:readline';
import type { Logger } from '../log.js';
import { parseShowProc, sendCommand, type MasterProcessInfo } from './master-cli.js';

export interface HaproxyProcessOptions {
  readonly bin: string;
  readonly configFile: string;
  readonly masterSocket: string;
  readonly logger: Logger;
  /** Called after HAProxy died unexpectedly and was started again. */
  readonly onRestart?: (reason: string) => void;
}

export class HaproxyError extends Error {}

const START_TIMEOUT_MS = 10_000;
const RELOAD_TIMEOUT_MS = 15_000;
const POLL_MS = 10;

/**
 * Runs HAProxy in master-worker mode (-W) in the foreground (-db) and keeps it running.
 * A reload is the master CLI's `reload` command: the master re-executes itself with the
 * config file, the new worker takes the listening sockets over, and old workers finish
 * their connections (management guide, "master-worker mode"). If HAProxy dies it is
 * started again with whatever is in the config file, which only ever holds a validated
 * config.
 */
export class HaproxyProcess {
  private child: ResultPromise | undefined;
  private stopping = false;
  private restartAttempts = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarts = 0;
  private starting: Promise<void> | undefined;

  constructor(private readonly options: HaproxyProcessOptions) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get restartCount(): number {
    return this.restarts;
  }

  /**
   * Starts HAProxy unless it runs or is starting. The supervisor's restart and an apply may both
   * ask for a start at the same moment; there must only ever be one master.
   */
  start(): Promise<void> {
    if (this.child) return this.starting ?? Promise.resolve();
    clearTimeout(this.restartTimer);
    this.starting = this.spawn().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async spawn(): Promise<void> {
    this.stopping = false;
    const { bin, configFile, masterSocket, logger } = this.options;
    const child = execa(bin, ['-W', '-db', '-f', configFile, '-S', `${masterSocket},mode,600`], {
      buffer: false,
      reject: false,
      stdin: 'ignore',
      cleanup: true,
    });
    this.child = child;
    let exited = false;
    const stderrTail: string[] = [];
    forwardLines(child.stdout, (line) => logger.info({ haproxy: line }, 'haproxy'));
    forwardLines(child.stderr, (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
      logger[levelOf(line, this.stopping)]({ haproxy: line.trim() }, 'haproxy');
    });
    void child.then((result) => {
      exited = true;
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopping) return;
      const reason = `HAProxy exited unexpectedly (${result.signal ?? `code ${result.exitCode}`})`;
      logger.error({ pid: child.pid }, reason);
      this.scheduleRestart(reason);
    });

    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) throw new HaproxyError(`HAProxy failed to start: ${lastAlert(stderrTail)}`);
      const info = await this.showProc().catch(() => undefined);
      if (info && info.workers.length > 0) {
        logger.info({ pid: child.pid, worker: info.workers[0]?.pid }, 'HAProxy started');
        return;
      }
      await sleep(POLL_MS);
    }
    await this.stop();
    throw new HaproxyError(`HAProxy did not become ready within ${START_TIMEOUT_MS} ms`);
  }

  /** Seamless reload; resolves once a new worker serves the config now in the file. */
  async reload(): Promise<void> {
    if (!this.child) throw new HaproxyError('HAProxy is not running');
    const before = await this.showProc();
    // The master re-executes while answering, so the connection may end without a reply.
    await sendCommand(this.options.masterSocket, 'reload').catch(() => undefined);
    const deadline = Date.now() + RELOAD_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const info = await this.showProc().catch(() => undefined);
      if (info) {
        if (info.failedReloads > before.failedReloads) throw new HaproxyError('HAProxy refused the new config on reload');
        const fresh = info.workers.find((w) => !before.workers.some((old) => old.pid === w.pid));
        if (info.reloads > before.reloads && fresh) return;
      }
      await sleep(POLL_MS);
    }
    throw new HaproxyError(`HAProxy reload did not complete within ${RELOAD_TIMEOUT_MS} ms`);
  }

  showProc(): Promise<MasterProcessInfo> {
    return sendCommand(this.options.masterSocket, 'show proc', 2000).then(parseShowProc);
  }

  /** Stops HAProxy: SIGUSR1 lets workers finish their connections (graceful), SIGTERM does not. */
  async stop(options: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) return;
    child.kill(options.graceful ? 'SIGUSR1' : 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 5000);
    await child.catch(() => undefined);
    clearTimeout(timer);
    this.child = undefined;
  }

  private scheduleRestart(reason: string): void {
    // Fast first retry so a killed HAProxy is back within a second; capped backoff if it keeps dying.
    const delay = Math.min(50 * 2 ** this.restartAttempts, 5000);
    this.restartAttempts++;
    this.restartTimer = setTimeout(() => {
      this.start()
        .then(() => {
          this.restarts++;
          this.restartAttempts = 0;
          this.options.logger.warn({ restarts: this.restarts }, 'HAProxy restarted with the last good config');
          this.options.onRestart?.(reason);
        })
        .catch((error: Error) => {
          this.options.logger.error({ err: error.message }, 'HAProxy restart failed');
          if (!this.stopping && !this.child) this.scheduleRestart(reason);
        });
    }, delay);
  }
}

// HAProxy tags routine reload and stop messages as warnings; they are not worth anyone's attention.
const ROUTINE = /Former worker \(\d+\) exited with code 0|Exiting Master process|All workers exited|Proxy \S+ stopped|Stopping (frontend|backend|proxy)|exited with code 143/;

function levelOf(line: string, stopping: boolean): 'error' | 'warn' | 'info' {
  if (ROUTINE.test(line) && (stopping || !/code 143/.test(line))) return 'info';
  if (/\[(ALERT|EMERG)\]/.test(line)) return 'error';
  return /\[WARNING\]/.test(line) ? 'warn' : 'info';
}

function forwardLines(stream: NodeJS.ReadableStream | null | undefined, onLine: (line: string) => void): void {
  if (!stream) return;
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    if (line.trim() !== '') onLine(line);
  });
}

function lastAlert(lines: readonly string[]): string {
  const alerts = lines.filter((l) => /\[ALERT\]/.test(l));
  return (alerts.length > 0 ? alerts : lines).slice(-3).join(' | ') || 'no output';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
