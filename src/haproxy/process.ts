import { execa, type ResultPromise } from 'execa';
import { createInterface } from 'node:readline';
import { EdgelbError } from '../errors.js';
import type { Logger } from '../log.js';
import { Backoff } from '../util/backoff.js';
import { parseShowProc, sendCommand, type MasterProcessInfo } from './master-cli.js';
import { findPreviousMaster, forgetMaster, isAlive, recordMaster } from './previous-master.js';

export interface HaproxyProcessOptions {
  readonly bin: string;
  readonly configFile: string;
  readonly masterSocket: string;
  /** The runtime API socket (`expose-fd listeners`): a replacement master takes the listening sockets from it. */
  readonly adminSocket?: string;
  /** Where the master's pid is kept, so the next run finds a master this one leaves behind. */
  readonly pidFile?: string;
  readonly logger: Logger;
  /** Called after HAProxy died unexpectedly and was started again. */
  readonly onRestart?: (reason: string) => void;
  /** Awaited before such a restart, which reads the config file: it must hold what was served (ConfigApplier.beforeRestart). */
  readonly beforeRestart?: () => Promise<void>;
  /**
   * HAProxy's standard output, where it writes the access log itself: inherited (edgelb's own
   * stdout, the default) or an open file descriptor (tests). Never a pipe to this process: at a
   * line per request, reading and re-logging it cost the controller a CPU core under load.
   */
  readonly stdout?: 'inherit' | number;
}

/** Starting or reloading HAProxy failed: the `haproxy_start_*`, `haproxy_reload_*` and `haproxy_not_running` codes. */
export class HaproxyError extends EdgelbError {}

// Generous: with 10,000 services HAProxy needs several seconds to parse and start on 2 busy CPUs.
const START_TIMEOUT_MS = 60_000;
const RELOAD_TIMEOUT_MS = 60_000;
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
  private readonly restartSchedule = new RestartSchedule((reason) => this.restart(reason));
  private restarts = 0;
  private starting: Promise<void> | undefined;

  constructor(private readonly options: HaproxyProcessOptions) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  /** A start is under way (the supervisor's restart, or an apply's). */
  get isStarting(): boolean {
    return this.starting !== undefined;
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
    // `starting` first: spawn() awaits the hand-over checks before it sets `child`.
    if (this.starting) return this.starting;
    if (this.child) return Promise.resolve();
    this.restartSchedule.cancel();
    this.starting = this.spawn().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async spawn(): Promise<void> {
    this.stopping = false;
    const { bin, configFile, masterSocket, logger } = this.options;
    const handover = await this.handoverArgs();
    const child = execa(bin, ['-W', '-db', '-f', configFile, '-S', `${masterSocket},mode,600`, ...handover.args], {
      buffer: false,
      reject: false,
      stdin: 'ignore',
      // execa hands 'inherit' and a descriptor number to spawn() as they are (its types list only 1-9).
      stdout: (this.options.stdout ?? 'inherit') as 'inherit',
      cleanup: true,
    });
    this.child = child;
    let exited = false;
    const stderrTail: string[] = [];
    // Only stderr is read: HAProxy's alerts, warnings and notices (a server going down, a refused
    // config), which go into edgelb's log at their level. The access log never comes through here.
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
      this.restartSchedule.schedule(reason);
    });

    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) throw new HaproxyError('haproxy_start_failed', `HAProxy failed to start: ${lastAlert(stderrTail)}`);
      const info = await this.showProc().catch(() => undefined);
      // During a handover the socket may still be the previous master's until the new one binds it.
      if (info && info.masterPid === child.pid && info.workers.length > 0) {
        logger.info({ pid: child.pid, worker: info.workers[0]?.pid }, 'HAProxy started');
        if (this.options.pidFile && child.pid !== undefined) {
          await recordMaster(this.options.pidFile, child.pid).catch((error: Error) =>
            logger.warn({ err: error.message }, 'cannot record the HAProxy master pid in the state dir'),
          );
        }
        if (handover.previous !== undefined) this.watchPreviousExit(handover.previous);
        return;
      }
      await sleep(POLL_MS);
    }
    await this.stop();
    throw new HaproxyError('haproxy_start_timeout', `HAProxy did not become ready within ${START_TIMEOUT_MS} ms`);
  }

  /**
   * A master left running by a previous controller (killed without stopping it) is replaced
   * without a gap: the new master takes the listening sockets from the old worker's runtime API
   * socket (`-x`, which needs `expose-fd listeners`) and, once its worker is up, tells the old
   * master to finish its connections and exit (`-sf`), as a seamless reload does (management
   * guide, section 4 "Stopping and restarting HAProxy").
   */
  private async handoverArgs(): Promise<{ args: string[]; previous?: number }> {
    const { pidFile, adminSocket, configFile, logger } = this.options;
    if (!pidFile) return { args: [] };
    const previous = await findPreviousMaster(pidFile, configFile);
    if (previous === undefined) return { args: [] };
    const socketAnswers =
      adminSocket !== undefined &&
      (await sendCommand(adminSocket, 'show info', 1000).then(
        () => true,
        () => false,
      ));
    logger.warn(
      { previousPid: previous, takeOverSockets: socketAnswers },
      'an HAProxy master from a previous run is still serving; replacing it without a gap',
    );
    return { args: [...(socketAnswers ? ['-x', adminSocket!] : []), '-sf', String(previous)], previous };
  }

  private watchPreviousExit(pid: number): void {
    const started = Date.now();
    const timer = setInterval(() => {
      if (isAlive(pid)) return;
      clearInterval(timer);
      this.options.logger.info({ previousPid: pid, afterMs: Date.now() - started }, 'the previous HAProxy master has exited');
    }, 250);
    timer.unref();
  }

  /** Seamless reload; resolves once a new worker serves the config now in the file. */
  async reload(): Promise<void> {
    if (!this.child) throw new HaproxyError('haproxy_not_running', 'HAProxy is not running');
    const before = await this.showProc();
    // The master re-executes while answering, so the connection may end without a reply.
    await sendCommand(this.options.masterSocket, 'reload').catch(() => undefined);
    const deadline = Date.now() + RELOAD_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const info = await this.showProc().catch(() => undefined);
      if (info) {
        if (info.failedReloads > before.failedReloads) throw new HaproxyError('haproxy_reload_refused', 'HAProxy refused the new config on reload');
        const fresh = info.workers.find((w) => !before.workers.some((old) => old.pid === w.pid));
        if (info.reloads > before.reloads && fresh) return;
      }
      await sleep(POLL_MS);
    }
    throw new HaproxyError('haproxy_reload_timeout', `HAProxy reload did not complete within ${RELOAD_TIMEOUT_MS} ms`);
  }

  showProc(): Promise<MasterProcessInfo> {
    return sendCommand(this.options.masterSocket, 'show proc', 2000).then(parseShowProc);
  }

  /** Stops HAProxy: SIGUSR1 lets workers finish their connections (graceful), SIGTERM does not. */
  async stop(options: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.stopping = true;
    this.restartSchedule.cancel();
    const child = this.child;
    if (!child) return;
    child.kill(options.graceful ? 'SIGUSR1' : 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 5000);
    await child.catch(() => undefined);
    clearTimeout(timer);
    this.child = undefined;
    if (this.options.pidFile) await forgetMaster(this.options.pidFile);
  }

  /** One restart after HAProxy died; false when it must be tried again. */
  private async restart(reason: string): Promise<boolean> {
    await this.options.beforeRestart?.().catch(() => undefined);
    if (this.stopping) return true;
    try {
      await this.start();
    } catch (error) {
      this.options.logger.error({ err: (error as Error).message }, 'HAProxy restart failed');
      return this.stopping || this.child !== undefined;
    }
    this.restarts++;
    this.options.logger.warn({ restarts: this.restarts }, 'HAProxy restarted with the last good config');
    this.options.onRestart?.(reason);
    return true;
  }
}

/**
 * When the supervisor starts HAProxy again: a fast first try (50 ms) so a killed HAProxy is back
 * within a second, then the project's backoff up to 5 s while the starts keep failing (a config
 * that no longer loads, a port taken), so a crash loop does not spin.
 */
export class RestartSchedule {
  private readonly backoff = new Backoff({ firstMs: 50, maxMs: 5000 });
  private timer: NodeJS.Timeout | undefined;

  /** `attempt` resolves true once nothing is left to do (HAProxy runs, or it is being stopped). */
  constructor(private readonly attempt: (reason: string) => Promise<boolean>) {}

  schedule(reason: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.attempt(reason).then((done) => {
        if (done) this.backoff.reset();
        else this.schedule(reason);
      });
    }, this.backoff.next());
  }

  cancel(): void {
    clearTimeout(this.timer);
  }
}

// HAProxy tags routine reload and stop messages as warnings; they are not worth anyone's attention.
const ROUTINE =
  /Former worker \(\d+\) exited with code 0|Exiting Master process|All workers exited|Proxy \S+ stopped|Stopping (frontend|backend|proxy)|exited with code 143/;

/**
 * A server edgelb itself started down (a new one, from the server-state file) or put in service
 * (its first probe passed, a runtime API command): one line per server, thousands at a start;
 * the controller's own debug lines say the same with the probe's result. Also HAProxy's remark on
 * a carried state whose agent port it ignores (every server with health_check_port, each reload).
 */
const OWN_STATE_CHANGE =
  /Server \S+ is (?:DOWN, changed from server-state after a reload|UP, changed from CLI)|server-state partially applied.*agent checks are not enabled/;

function levelOf(line: string, stopping: boolean): 'error' | 'warn' | 'info' | 'debug' {
  if (OWN_STATE_CHANGE.test(line)) return 'debug';
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
