import { readFile, rename, rm } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { HaproxyProcess } from './process.js';
import type { HaproxyRuntime } from './runtime.js';
import { carriedServerState, layoutOf, NO_SERVER_STATE } from './server-plan.js';
import { validateConfigFile, type ValidationResult } from './validate.js';

export type ApplyAction = 'started' | 'reloaded' | 'unchanged';

/**
 * Owns haproxy.cfg. A config only reaches that file after `haproxy -c` accepted it as a
 * candidate, and the file is replaced by rename, so HAProxy (and a restart after a crash)
 * only ever reads a complete, validated config: the last good one.
 */
export class ConfigApplier {
  private current: string | undefined;
  private readonly candidateFile: string;

  constructor(
    private readonly options: {
      configFile: string; haproxyBin: string; haproxy: HaproxyProcess; logger: Logger;
      /** With both, health and maintenance states survive a reload (the template names the file). */
      runtime?: HaproxyRuntime; serverStateFile?: string;
    },
  ) {
    this.candidateFile = `${options.configFile}.candidate`;
  }

  /** The config text the running HAProxy serves; undefined while it does not run. */
  get servingText(): string | undefined {
    return this.options.haproxy.running ? this.current : undefined;
  }

  /**
   * Starts HAProxy with the config a previous run left in the state dir (the last good one),
   * for when etcd cannot be read at start. Returns false when there is none or it no longer
   * validates (an upgrade may have moved files it names).
   */
  async startLastGood(): Promise<boolean> {
    const { configFile, haproxyBin, haproxy, logger } = this.options;
    if (haproxy.running || haproxy.isStarting) return false;
    const text = await readFile(configFile, 'utf8').catch(() => undefined);
    if (text === undefined) return false;
    const validation = await validateConfigFile(haproxyBin, configFile);
    if (!validation.ok) {
      logger.warn({ err: validation.errors.map((e) => e.message).join('; ') }, 'the last good config no longer validates; waiting for etcd');
      return false;
    }
    await this.clearServerState();
    await haproxy.start();
    this.current = text;
    return true;
  }

  /**
   * The running worker already serves `text` (servers changed through the runtime API): the file
   * follows, so that a reload or a restart starts with exactly the same servers. Not re-validated:
   * it differs from the validated config only in server lines HAProxy itself just accepted.
   */
  async adoptRuntimeChange(text: string): Promise<void> {
    await writeFileAtomic(this.options.configFile, text);
    this.current = text;
  }

  /**
   * `show servers state` of the running worker, minus servers the next config drops or moves
   * (HAProxy would take a server's old address from the file over the config's new one).
   */
  private async saveServerState(nextText: string): Promise<void> {
    const { runtime, serverStateFile, logger } = this.options;
    if (!runtime || !serverStateFile) return;
    try {
      const state = await runtime.raw('show servers state');
      await writeFileAtomic(serverStateFile, carriedServerState(state, layoutOf(nextText)));
    } catch (error) {
      // Without the file every server starts as healthy and is re-checked: worse, not broken.
      logger.warn({ err: (error as Error).message }, 'cannot save server health states for the reload');
      await this.clearServerState();
    }
  }

  /**
   * Starts HAProxy with `text` without `haproxy -c` first: when nothing runs, the start parses the
   * config as the check would, and checking first would parse (10,000 services) twice. When
   * HAProxy refuses it, the previous file is put back and false returned: the caller checks the
   * config to find out which services to leave out.
   */
  async startUnchecked(text: string): Promise<boolean> {
    const { configFile, haproxy, logger } = this.options;
    if (haproxy.running || haproxy.isStarting) return false;
    const previous = await readFile(configFile, 'utf8').catch(() => undefined);
    await writeFileAtomic(this.candidateFile, text);
    await rename(this.candidateFile, configFile);
    try {
      await this.clearServerState();
      await haproxy.start();
      this.current = text;
      return true;
    } catch (error) {
      // No restart with this config: the supervisor must not retry what HAProxy just refused.
      await haproxy.stop();
      if (previous !== undefined) await writeFileAtomic(configFile, previous);
      else await rm(configFile, { force: true });
      logger.warn({ err: (error as Error).message }, 'HAProxy refused the first config; checking it to find the services at fault');
      return false;
    }
  }

  /**
   * A state file with no servers in it: what any start but a reload's must find (a missing file
   * would only make HAProxy warn at every start).
   */
  private async clearServerState(): Promise<void> {
    if (!this.options.serverStateFile) return;
    // Best effort: a stale file costs a warning at most, while a throw here would report a
    // reload that worked as failed.
    await writeFileAtomic(this.options.serverStateFile, NO_SERVER_STATE).catch((error: Error) =>
      this.options.logger.warn({ err: error.message }, 'cannot reset the server-state file'));
  }

  /** Writes the text as the candidate file and checks it with HAProxy's own parser. */
  async validate(text: string): Promise<ValidationResult> {
    await writeFileAtomic(this.candidateFile, text);
    return validateConfigFile(this.options.haproxyBin, this.candidateFile);
  }

  /** Promotes the validated candidate (which must hold `text`) and starts or reloads HAProxy. */
  async commit(text: string): Promise<ApplyAction> {
    const { configFile, haproxy } = this.options;
    const onDisk = await readFile(this.candidateFile, 'utf8');
    if (onDisk !== text) throw new Error('the candidate config changed after validation');
    const previous = this.current;
    await rename(this.candidateFile, configFile);
    try {
      // A supervisor restart under way: let it finish, then reload it with this config.
      if (haproxy.isStarting) await haproxy.start().catch(() => undefined);
      if (!haproxy.running) {
        await this.clearServerState();
        await haproxy.start();
        this.current = text;
        return 'started';
      }
      await this.saveServerState(text);
      try {
        await haproxy.reload();
      } finally {
        // Only the worker this reload starts may read it: a later start or restart must not
        // take stale addresses or states from it.
        await this.clearServerState();
      }
      this.current = text;
      return 'reloaded';
    } catch (error) {
      // Put the last good config back so a restart of HAProxy does not pick up the failed one.
      if (previous !== undefined) await writeFileAtomic(configFile, previous);
      throw error;
    }
  }
}
