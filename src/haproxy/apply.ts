import { readFile, rename, rm } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { ConfigFile, textContent, type ConfigContent } from './config-file.js';
import type { HaproxyProcess } from './process.js';
import type { HaproxyRuntime } from './runtime.js';
import type { ServerStateRenderer } from '../render/render.js';
import type { ConfigServer, NextServerStates } from '../render/servers.js';
import { freshServerStates, NO_SERVER_STATES, nextServerStates } from './server-state.js';
import { validateConfigFile, type ValidationResult } from './validate.js';

export type ApplyAction = 'started' | 'reloaded' | 'unchanged';

/** A start or reload, and the servers the new worker started DOWN: the controller probes them. */
export interface CommitResult {
  readonly action: ApplyAction;
  readonly startedDown: readonly ConfigServer[];
}

/**
 * Owns haproxy.cfg. A config only reaches that file after `haproxy -c` accepted it as a
 * candidate (or, after a runtime change, HAProxy itself did), and the file is replaced by
 * rename, so HAProxy (and a restart after a crash) only ever reads a complete, validated config:
 * the last good one. A runtime change reaches the file a moment later (ConfigFile); everything
 * that reads the file waits for it first.
 */
export class ConfigApplier {
  private current: ConfigContent | undefined;
  private readonly candidateFile: string;
  private readonly file: ConfigFile;

  constructor(
    private readonly options: {
      configFile: string;
      haproxyBin: string;
      haproxy: HaproxyProcess;
      logger: Logger;
      /**
       * With all three, health and maintenance states survive a reload, and a server new to the
       * worker starts DOWN until proven healthy (the config template names the file).
       */
      runtime?: HaproxyRuntime;
      serverStateFile?: string;
      renderServerState?: ServerStateRenderer;
      /** How long after a runtime change the file is written (default 500 ms). */
      writeDelayMs?: number;
    },
  ) {
    this.candidateFile = `${options.configFile}.candidate`;
    this.file = new ConfigFile({ file: options.configFile, logger: options.logger, delayMs: options.writeDelayMs });
  }

  /** The config the running HAProxy serves (the very object given to commit or adoptRuntimeChange); undefined while it does not run. */
  get serving(): ConfigContent | undefined {
    return this.options.haproxy.running ? this.current : undefined;
  }

  /** Resolves once haproxy.cfg holds what HAProxy serves; rejects when it cannot be written. */
  flush(): Promise<void> {
    return this.file.flush();
  }

  /**
   * Before the supervisor restarts a dead HAProxy, which reads haproxy.cfg: the file must hold
   * what was served. When it cannot be written, HAProxy starts with what the file holds, and
   * that is what it serves from then on (the next change reloads).
   */
  async beforeRestart(): Promise<void> {
    try {
      await this.file.flush();
    } catch {
      this.current = this.file.onDisk;
    }
  }

  /** Stops writing in the background; call after a last flush(). */
  stop(): void {
    this.file.stop();
  }

  /**
   * Starts HAProxy with the config a previous run left in the state dir (the last good one),
   * for when etcd cannot be read at start. Returns false when there is none or it no longer
   * validates (an upgrade may have moved files it names).
   */
  async startLastGood(): Promise<boolean> {
    const { configFile, haproxyBin, haproxy, logger } = this.options;
    if (haproxy.running || haproxy.isStarting) return false;
    await this.file.flush().catch(() => undefined);
    const text = await readFile(configFile, 'utf8').catch(() => undefined);
    if (text === undefined) return false;
    const validation = await validateConfigFile(haproxyBin, configFile);
    if (!validation.ok) {
      logger.warn({ err: validation.errors.map((e) => e.message).join('; ') }, 'the last good config no longer validates; waiting for etcd');
      return false;
    }
    await this.clearServerState();
    await haproxy.start();
    this.current = textContent(text);
    this.file.adopt(this.current);
    return true;
  }

  /**
   * The running worker already serves `config` (servers changed through the runtime API): the
   * file follows a moment later (ConfigFile), so that a reload or a restart starts with exactly
   * the same servers. Not re-validated: it differs from the validated config only in server
   * lines HAProxy itself just accepted.
   */
  adoptRuntimeChange(config: ConfigContent): void {
    this.current = config;
    this.file.schedule(config);
  }

  /**
   * `show servers state` of the running worker, minus servers the next config drops or moves
   * (HAProxy would take a server's old address from the file over the config's new one), plus a
   * DOWN row for every server the next worker has no state for. Returns those.
   */
  private async saveServerState(next: readonly ConfigServer[], moving: ReadonlySet<string>): Promise<readonly ConfigServer[]> {
    const { runtime, logger } = this.options;
    if (!runtime || !this.options.serverStateFile || !this.options.renderServerState) return [];
    const failure = 'cannot save server health states for the reload';
    const running = await runtime.raw('show servers state').catch((error: Error) => void logger.warn({ err: error.message }, failure));
    // Without the running states every server starts as healthy and is re-checked: worse, not broken.
    return this.writeServerState(running === undefined ? NO_SERVER_STATES : nextServerStates(running, next, moving), failure);
  }

  /**
   * A start: every server the controller can probe starts DOWN, unless an HAProxy left running by
   * a previous controller still answers on the admin socket (the start then takes its sockets
   * over, see HaproxyProcess): its servers' states carry over as on a reload, so the hand-over
   * opens no gap. Returns the servers that start down.
   */
  private async startDown(next: readonly ConfigServer[]): Promise<readonly ConfigServer[]> {
    if (!this.options.serverStateFile || !this.options.renderServerState) return [];
    const running = await this.options.runtime?.raw('show servers state').catch(() => undefined);
    const states = running === undefined ? freshServerStates(next) : nextServerStates(running, next);
    return this.writeServerState(states, 'cannot write the server-state file: servers start unchecked');
  }

  /** Writes the file the next worker loads; returns the servers it starts down ([] when it cannot be written). */
  private async writeServerState(states: NextServerStates, failure: string): Promise<readonly ConfigServer[]> {
    const { serverStateFile, renderServerState, logger } = this.options;
    if (!serverStateFile || !renderServerState) return [];
    try {
      await writeFileAtomic(serverStateFile, renderServerState(states));
      return states.down;
    } catch (error) {
      logger.warn({ err: (error as Error).message }, failure);
      await this.clearServerState();
      return [];
    }
  }

  /**
   * Starts HAProxy with `text` without `haproxy -c` first: when nothing runs, the start parses the
   * config as the check would, and checking first would parse (10,000 services) twice. When
   * HAProxy refuses it, the previous file is put back and false returned: the caller checks the
   * config to find out which services to leave out.
   */
  async startUnchecked(config: ConfigContent, servers: readonly ConfigServer[] = []): Promise<CommitResult | undefined> {
    const { configFile, haproxy, logger } = this.options;
    if (haproxy.running || haproxy.isStarting) return undefined;
    await this.file.flush();
    const previous = await readFile(configFile, 'utf8').catch(() => undefined);
    await writeFileAtomic(this.candidateFile, config.pieces());
    await rename(this.candidateFile, configFile);
    this.file.adopt(config);
    try {
      const startedDown = await this.startDown(servers);
      try {
        await haproxy.start();
      } finally {
        await this.clearServerState();
      }
      this.current = config;
      return { action: 'started', startedDown };
    } catch (error) {
      // No restart with this config: the supervisor must not retry what HAProxy just refused.
      await haproxy.stop();
      if (previous !== undefined) {
        await writeFileAtomic(configFile, previous);
        this.file.adopt(textContent(previous));
      } else {
        await rm(configFile, { force: true });
        this.file.adopt(undefined);
      }
      logger.warn({ err: (error as Error).message }, 'HAProxy refused the first config; checking it to find the services at fault');
      return undefined;
    }
  }

  /**
   * A state file with no servers in it: what any start but a reload's must find (a missing file
   * would only make HAProxy warn at every start).
   */
  private async clearServerState(): Promise<void> {
    const { serverStateFile, renderServerState } = this.options;
    if (!serverStateFile || !renderServerState) return;
    // Best effort: a stale file costs a warning at most, while a throw here would report a
    // reload that worked as failed.
    await writeFileAtomic(serverStateFile, renderServerState(NO_SERVER_STATES)).catch((error: Error) =>
      this.options.logger.warn({ err: error.message }, 'cannot reset the server-state file'),
    );
  }

  /** Writes the text as the candidate file and checks it with HAProxy's own parser. */
  async validate(text: string): Promise<ValidationResult> {
    await this.file.flush();
    await writeFileAtomic(this.candidateFile, text);
    return validateConfigFile(this.options.haproxyBin, this.candidateFile);
  }

  /**
   * Promotes the validated candidate (which must hold `config`'s text) and starts or reloads
   * HAProxy. `servers` are the config's servers as data, for the server-state file.
   */
  async commit(config: ConfigContent, servers: readonly ConfigServer[] = [], moving: ReadonlySet<string> = new Set()): Promise<CommitResult> {
    const { configFile, haproxy } = this.options;
    // No write of an earlier runtime change may land after the rename.
    await this.file.flush();
    const text = config.text;
    const onDisk = await readFile(this.candidateFile, 'utf8');
    if (onDisk !== text) throw new Error('the candidate config changed after validation');
    const previous = this.current;
    await rename(this.candidateFile, configFile);
    this.file.adopt(config);
    try {
      // A supervisor restart under way: let it finish, then reload it with this config.
      if (haproxy.isStarting) await haproxy.start().catch(() => undefined);
      const reload = haproxy.running;
      const startedDown = reload ? await this.saveServerState(servers, moving) : await this.startDown(servers);
      try {
        if (reload) await haproxy.reload();
        else await haproxy.start();
      } finally {
        // Only the worker this start or reload starts may read it: a later start or restart
        // must not take stale addresses or states from it.
        await this.clearServerState();
      }
      this.current = config;
      return { action: reload ? 'reloaded' : 'started', startedDown };
    } catch (error) {
      // Put the last good config back so a restart of HAProxy does not pick up the failed one.
      if (previous !== undefined) {
        await writeFileAtomic(configFile, previous.pieces());
        this.file.adopt(previous);
      }
      throw error;
    }
  }
}
