import { ControllerInputs, type VaultInput } from './controller-inputs.js';
import type { ApplyAction, CommitResult, ConfigApplier } from './haproxy/apply.js';
import type { CertFiles } from './haproxy/cert-files.js';
import type { ChallengeMap } from './haproxy/challenge-map.js';
import { EMPTY_SERVER_PLAN, isEmptyPlan, planServers, type ServerPlan } from './plan/server-plan.js';
import type { ServerUpdater } from './haproxy/server-updater.js';
import { sameChallenges, type Challenges } from './model/challenges.js';
import type { Logger } from './log.js';
import { diffStates, fingerprintOf, isEmptyChange, type StateChanges } from './model/diff.js';
import type { ParseOptions } from './model/parse.js';
import type { Snapshot } from './model/snapshot.js';
import { findService } from './model/state-changes.js';
import type { DesiredState, Entries, EntryWarning, HttpService, Rejection, TcpService, Upstream } from './model/types.js';
import { EntryWarnings } from './model/warnings.js';
import { legacyHint } from './model/legacy-directives.js';
import { attributeErrors } from './render/attribute.js';
import type { RenderedConfig, SectionRenderer, ServerArgsRenderer } from './render/render.js';
import { checksByProxy, configServers, type ConfigServer } from './render/servers.js';
import type { HealthCheck } from './model/health-check.js';
import type { RenderSettings, TlsSettings } from './render/view.js';
import type { RawCert } from './tls/bundle.js';
import { CertSelection } from './tls/cert-selection.js';
import { EMPTY_CERT_SET, sameServed, type CertRejection, type CertSet } from './tls/store.js';
import { ReportOnce } from './util/report-once.js';

export interface ControllerOptions {
  readonly render: SectionRenderer;
  readonly renderSettings: RenderSettings;
  readonly parseOptions: ParseOptions;
  readonly applier: ConfigApplier;
  readonly certFiles: CertFiles;
  readonly challengeMap: ChallengeMap;
  /** A server's arguments after its address, as the file has them (templates/server-args.hbs). */
  readonly serverArgs: ServerArgsRenderer;
  /** Adds, drains and re-addresses servers through the runtime API; without it every change reloads. */
  readonly servers?: ServerUpdater;
  readonly logger: Logger;
  /** `ACME_CHALLENGE_<token>` variables: challenges the platform set up (Kontena compatibility). */
  readonly envChallenges?: Readonly<Record<string, string | undefined>>;
  /** HTTPS listener settings; used whenever at least one certificate is served. */
  readonly tls: Omit<TlsSettings, 'defaultCert' | 'crtList'>;
  readonly defaultCert?: string;
  /** Certificates from the environment: fixed for the life of the process. */
  readonly envCerts?: readonly RawCert[];
  /** Picks (and decrypts) the vault's certificates out of the etcd keys under `certs/`. */
  readonly vaultCerts?: (entries: Entries) => VaultInput;
  /** Told the parsed routes of every snapshot applied (services HAProxy rejected included): ACME's domains. */
  readonly onParsed?: (state: DesiredState) => void;
  /** Wait this long after the last change before applying, so a burst becomes one apply. */
  readonly quietMs?: number;
  /** ...but never delay a change longer than this. */
  readonly maxDelayMs?: number;
  /** When etcd has not answered this long after start, serve the last good config from the state dir. */
  readonly lastGoodAfterMs?: number;
  /** Told about every failed apply, so the caller can retry one the disk caused (app.ts). */
  readonly onApplyFailed?: (error: string) => void;
}

export interface ApplyRecord {
  readonly at: string;
  readonly revision: string;
  readonly action: ApplyAction | 'runtime' | 'failed';
  readonly durationMs: number;
  readonly changes: StateChanges;
  readonly error?: string;
}

export interface ControllerStatus {
  readonly revision: string | undefined;
  readonly state: DesiredState | undefined;
  readonly certs: CertSet;
  readonly rejected: readonly Rejection[];
  readonly warnings: readonly EntryWarning[];
  readonly excluded: readonly { service: string; reason: string }[];
  readonly lastApply: ApplyRecord | undefined;
  readonly counters: Readonly<Record<'applies' | 'reloads' | 'starts' | 'unchanged' | 'failures' | 'runtimeUpdates', number>>;
}

const MAX_ISOLATION_ROUNDS = 5;

/**
 * The reconcile loop. Sources hand it whole snapshots; it coalesces bursts, lets the latest
 * input win, and applies one at a time: parse → render → validate → commit. Certificate-only
 * changes go through HAProxy's runtime API; anything else is a validated seamless reload. A
 * service whose lines HAProxy rejects is left out (and remembered until its entries change)
 * so that every other service is still applied.
 */
export class Controller {
  private etcd: Snapshot | undefined;
  private certFileInputs: readonly RawCert[] = [];
  private dirty = false;
  private firstDirtyAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private applied: { revision: string; state: DesiredState; certs: CertSet; challenges: Challenges } | undefined;
  private rejected: readonly Rejection[] = [];
  private warnings: readonly EntryWarning[] = [];
  private readonly inputs: ControllerInputs;
  private readonly entryWarnings = new EntryWarnings();
  private readonly certSelection: CertSelection;
  private reported: { parsed: readonly Rejection[]; challenges: readonly Rejection[] } | undefined;
  private readonly entryReports = new ReportOnce();
  private readonly warningReports = new ReportOnce();
  private readonly certReports = new ReportOnce();
  /** Services HAProxy rejected, by key, with the JSON of the version it rejected. */
  private readonly excluded = new Map<string, { fingerprint: string; reason: string }>();
  private lastApply: ApplyRecord | undefined;
  private readonly counters = { applies: 0, reloads: 0, starts: 0, unchanged: 0, failures: 0, runtimeUpdates: 0 };
  private idleWaiters: (() => void)[] = [];
  private stopped = false;
  /** The config HAProxy serves, by section, to compare the next one with. */
  private serving: RenderedConfig | undefined;
  /** The health check of each proxy's servers in the config HAProxy serves. */
  private proxyChecks: ReadonlyMap<string, HealthCheck> = new Map();

  private readonly lastGoodTimer: NodeJS.Timeout;

  constructor(private readonly options: ControllerOptions) {
    const { parseOptions, envChallenges, vaultCerts } = options;
    this.inputs = new ControllerInputs({ parseOptions, envChallenges, vaultCerts });
    this.certSelection = new CertSelection(options.defaultCert);
    this.lastGoodTimer = setTimeout(() => this.startLastGood(), options.lastGoodAfterMs ?? 2000);
  }

  /** Accepts a new etcd snapshot; it replaces any snapshot not yet applied. */
  offer(snapshot: Snapshot): void {
    this.etcd = snapshot;
    this.schedule();
  }

  /** Accepts the current certificates of the watched directory. */
  offerCertFiles(certs: readonly RawCert[]): void {
    this.certFileInputs = certs;
    this.schedule();
  }

  status(): ControllerStatus {
    return {
      revision: this.applied?.revision,
      state: this.applied?.state,
      certs: this.applied?.certs ?? EMPTY_CERT_SET,
      rejected: this.rejected,
      warnings: this.warnings,
      excluded: [...this.excluded].map(([service, { reason }]) => ({ service, reason })),
      lastApply: this.lastApply,
      counters: { ...this.counters },
    };
  }

  /** Resolves when no input is waiting, no apply is running, and haproxy.cfg holds what HAProxy serves. */
  async whenIdle(): Promise<void> {
    if (this.isBusy()) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.options.applier.flush().catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.lastGoodTimer);
    this.dirty = false;
    if (!this.running) this.notifyIdle();
  }

  private isBusy(): boolean {
    return (this.dirty && this.etcd !== undefined) || this.running !== undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (!this.dirty) this.firstDirtyAt = now;
    this.dirty = true;
    const quiet = this.options.quietMs ?? 25;
    const maxDelay = this.options.maxDelayMs ?? 500;
    const due = Math.min(now + quiet, this.firstDirtyAt + maxDelay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, due - now));
  }

  /** etcd is slow or down at start: traffic should not wait for it if a previous run left a config. */
  private startLastGood(): void {
    if (this.running || this.applied || this.stopped) return;
    const { applier, logger } = this.options;
    this.running = applier
      .startLastGood()
      .then((started) => {
        if (started) logger.warn('etcd has not answered yet: serving the last good config from the state dir');
      })
      .catch((error: Error) => logger.error({ err: error.message }, 'cannot start HAProxy with the last good config'))
      .finally(() => {
        this.running = undefined;
        this.kick();
        if (!this.isBusy()) this.notifyIdle();
      });
  }

  private kick(): void {
    // Nothing is applied before etcd has answered once: HAProxy starts with the real routes.
    if (this.running || !this.dirty || !this.etcd) return;
    this.dirty = false;
    const snapshot = this.etcd;
    const certFiles = this.certFileInputs;
    const started = performance.now();
    this.running = this.reconcile(snapshot, certFiles)
      // Typically the state dir (full, read-only): nothing was loaded, HAProxy still runs the last good config.
      .catch((error: Error) => this.recordFailure(snapshot.revision, undefined, started, error.message))
      .finally(() => {
        this.running = undefined;
        if (this.dirty && !this.stopped) {
          // Changes that arrived while applying are already past their quiet time.
          clearTimeout(this.timer);
          this.timer = setTimeout(() => this.kick(), 0);
        } else {
          this.notifyIdle();
        }
      });
  }

  private notifyIdle(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async reconcile(snapshot: Snapshot, certFiles: readonly RawCert[]): Promise<void> {
    const { applier, render } = this.options;
    const started = performance.now();
    // Every read of the snapshot happens here, before the first await: only the newest may be read.
    const { parsed, challenges, challengeRejections, vault } = this.inputs.read(snapshot);
    try {
      this.options.onParsed?.(parsed.state);
    } catch (error) {
      // A consumer of the routes (ACME) must not fail the apply of everything else.
      this.options.logger.error({ err: (error as Error).message }, 'a consumer of the parsed routes failed');
    }
    this.reportRejections(parsed.rejected, challengeRejections);
    this.reportWarnings(this.entryWarnings.update(parsed.state));
    const certs = this.selectCerts(vault, certFiles);
    const settings = this.settingsFor(certs);

    let state = this.withoutExcluded(parsed.state);
    for (let round = 0; round <= MAX_ISOLATION_ROUNDS; round++) {
      const rendered = render(state, settings);
      if (await this.updateAtRuntime(rendered, state, certs, challenges, snapshot.revision, started)) return;
      if (round === 0) {
        // haproxy -c reads the crt-list and the challenge map, so they go to disk first (once).
        if (certs.served.length > 0) await this.options.certFiles.write(certs);
        await this.options.challengeMap.write(challenges);
        // Nothing runs yet: HAProxy's start checks the config itself; haproxy -c only when it refuses.
        if (applier.serving === undefined && (await this.commit(rendered, state, certs, challenges, snapshot.revision, started, 'unchecked'))) return;
      }
      const text = rendered.text;
      const validation = await applier.validate(text);
      if (validation.ok) {
        await this.commit(rendered, state, certs, challenges, snapshot.revision, started);
        return;
      }
      const { services, unattributed } = attributeErrors(text, validation.errors);
      if (services.size === 0 || unattributed.length > 0 || round === MAX_ISOLATION_ROUNDS) {
        const reason = [...unattributed, ...[...services.values()].flat(), ...settingsHints(settings)].join('; ');
        this.recordFailure(snapshot.revision, state, started, `HAProxy rejected the config: ${reason}`);
        return;
      }
      for (const [service, messages] of services) {
        const reason = messages.join('; ');
        this.excluded.set(service, { fingerprint: serviceFingerprint(state, service), reason });
        // An HAProxy 1.8 directive in custom_settings is the usual cause after a move from the Kontena load balancer.
        const hint = legacyHint(findService(state, service)?.customSettings ?? [], 'proxy');
        this.options.logger.error({ service, haproxyError: reason, ...(hint ? { hint } : {}) }, 'service left out: HAProxy rejected its settings');
      }
      state = this.withoutExcluded(state);
    }
  }

  /**
   * Instances (servers), certificates or challenge tokens changed, nothing else: HAProxy's
   * runtime API, no reload. False means the caller reloads instead, which also puts every
   * server, certificate and token back in line with the files.
   */
  private async updateAtRuntime(
    rendered: RenderedConfig, state: DesiredState, certs: CertSet, challenges: Challenges, revision: string, started: number,
  ): Promise<boolean> {
    const { applier, certFiles, challengeMap, logger } = this.options;
    const before = this.applied;
    const serving = applier.serving;
    if (!before || serving === undefined) return false;
    // What HAProxy serves is the config this controller rendered (the usual case): compare the
    // states as data. Otherwise (just started from the last good file, or other settings) compare the texts, once.
    let plan: ServerPlan = EMPTY_SERVER_PLAN;
    let configChanged: boolean;
    if (this.serving && serving === this.serving && this.serving.settingsKey === rendered.settingsKey) {
      const serverArgs = (service: HttpService | TcpService, upstream: Upstream) => this.options.serverArgs(service, upstream, rendered.settings);
      const decision = planServers(before.state, state, serverArgs, this.options.renderSettings.defaultsSettings);
      if ('reloadBecause' in decision) {
        logger.debug({ revision, reason: decision.reloadBecause }, 'reload needed');
        return false;
      }
      plan = decision.plan;
      configChanged = !isEmptyPlan(plan);
      if (configChanged && !this.options.servers) return false;
    } else if (rendered.text !== serving.text) {
      return false;
    } else {
      configChanged = false;
    }
    const certsChanged = !sameServed(before.certs, certs);
    const challengesChanged = !sameChallenges(before.challenges, challenges);
    if (!configChanged && !certsChanged && !challengesChanged) {
      this.counters.unchanged++;
      this.applied = { revision, state, certs, challenges };
      logger.debug({ revision }, 'no change to apply');
      return true;
    }
    try {
      let operations = 0;
      if (!isEmptyPlan(plan)) operations += await this.options.servers!.apply(plan, (proxy) => this.proxyChecks.get(proxy));
      if (certsChanged) {
        await certFiles.write(certs);
        operations += await certFiles.applyRuntime(before.certs, certs);
        await certFiles.prune(certs);
      }
      if (challengesChanged) {
        await challengeMap.write(challenges);
        operations += await challengeMap.applyRuntime(before.challenges, challenges);
      }
      if (configChanged) {
        // The file follows a moment later, off this path (ConfigFile); whatever reads it waits for it.
        applier.adoptRuntimeChange(rendered);
        this.serving = rendered;
      }
      this.counters.applies++;
      this.counters.runtimeUpdates++;
      const durationMs = elapsedMs(started);
      // Only instances changed here: the services whose sections differ (known from the diff, cheaper than diffStates at 10,000).
      const changes = { added: [], removed: [], changed: [...new Set([...plan.add, ...plan.remove, ...plan.readdress].map((s) => s.service))].sort() };
      this.applied = { revision, state, certs, challenges };
      this.lastApply = { at: new Date().toISOString(), revision, action: 'runtime', durationMs, changes };
      logger.info(
        {
          action: 'runtime', revision, durationMs, operations, ...serverNames(plan),
          ...(certsChanged ? { certificates: certs.served.length } : {}),
          ...(challengesChanged ? { challenges: challenges.size } : {}),
        },
        'applied through the runtime API (no reload)',
      );
      return true;
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'runtime update not possible; reloading instead');
      return false;
    }
  }

  private async commit(
    rendered: RenderedConfig, state: DesiredState, certs: CertSet, challenges: Challenges, revision: string, started: number,
    unchecked?: 'unchecked',
  ): Promise<boolean> {
    const changes = diffStates(this.applied?.state, state);
    const updater = this.options.servers;
    const defaults = this.options.renderSettings.defaultsSettings;
    const servers = configServers(state, defaults);
    let next: readonly ConfigServer[] | undefined;
    try {
      let result: CommitResult;
      // Results of first probes wait until the new worker runs (they would reach the old one).
      await updater?.beginCommit();
      try {
        if (unchecked) {
          const started = await this.options.applier.startUnchecked(rendered, servers);
          if (!started) return false;
          result = started;
        } else {
          // The next worker has none of the draining servers (the old one finishes them): stop
          // sending drain commands now, before the admin socket belongs to the new worker.
          updater?.forget();
          result = await this.options.applier.commit(rendered, servers, updater?.pendingMoves(servers));
        }
        next = servers;
      } finally {
        updater?.endCommit(next);
      }
      const { action } = result;
      this.proxyChecks = checksByProxy(state, defaults);
      // Servers new to this worker start DOWN; a reload's are new instances, so their probe is retried.
      updater?.proveStarted(result.startedDown, action === 'reloaded');
      this.serving = rendered;
      await this.options.certFiles.prune(certs);
      this.counters.applies++;
      if (action === 'reloaded') this.counters.reloads++;
      if (action === 'started') this.counters.starts++;
      const durationMs = elapsedMs(started);
      this.applied = { revision, state, certs, challenges };
      this.lastApply = { at: new Date().toISOString(), revision, action, durationMs, changes };
      this.options.logger.info(
        { action, revision, durationMs, ...compactChanges(changes), services: state.http.length + state.tcp.length, certificates: certs.served.length },
        action === 'started' ? 'HAProxy started with the first config' : 'config applied (seamless reload)',
      );
    } catch (error) {
      this.recordFailure(revision, state, started, (error as Error).message);
    }
    return true;
  }

  private recordFailure(revision: string, state: DesiredState | undefined, started: number, message: string): void {
    this.counters.failures++;
    const durationMs = elapsedMs(started);
    const changes = state ? diffStates(this.applied?.state, state) : { added: [], removed: [], changed: [] };
    this.lastApply = { at: new Date().toISOString(), revision, action: 'failed', durationMs, changes, error: message };
    this.options.logger.error({ revision, durationMs, err: message }, 'apply failed; HAProxy keeps serving the last good config');
    this.options.onApplyFailed?.(message);
  }

  private selectCerts(vault: VaultInput, certFiles: readonly RawCert[]): CertSet {
    const { set, fresh } = this.certSelection.select([this.options.envCerts ?? [], vault.certs, certFiles]);
    if (!fresh) return set;
    const problems: (CertRejection & { level: 'warn' | 'error' })[] = [
      ...vault.rejected.map((r) => ({ source: `vault:${r.key}`, reason: r.reason, level: 'error' as const })),
      ...set.rejected.map((r) => ({ ...r, level: 'error' as const })),
      ...set.warnings.map((w) => ({ source: '', reason: w, level: 'warn' as const })),
    ];
    this.certReports.update(problems, (p) => `${p.source}\u0000${p.reason}`, (p) =>
      p.level === 'error'
        ? this.options.logger.error({ source: p.source, reason: p.reason }, 'certificate rejected')
        : this.options.logger.warn({ reason: p.reason }, 'certificate warning'));
    return set;
  }

  private settingsFor(certs: CertSet): RenderSettings {
    const first = certs.served[0];
    if (!first) return this.options.renderSettings;
    return {
      ...this.options.renderSettings,
      tls: { ...this.options.tls, crtList: this.options.certFiles.crtList, defaultCert: first.bundle.id },
    };
  }

  /** Drops services HAProxy rejected before, unless their entries have changed since. */
  private withoutExcluded(state: DesiredState): DesiredState {
    for (const [service, { fingerprint }] of this.excluded) {
      if (serviceFingerprint(state, service) !== fingerprint) this.excluded.delete(service);
    }
    if (this.excluded.size === 0) return state;
    return {
      http: state.http.filter((s) => !this.excluded.has(`http:${s.name}`)),
      tcp: state.tcp.filter((s) => !this.excluded.has(`tcp:${s.name}`)),
    };
  }

  /** Logs each rejection once; nothing to do while both lists are the ones of the last time. */
  private reportRejections(parsed: readonly Rejection[], challenges: readonly Rejection[]): void {
    if (this.reported?.parsed === parsed && this.reported.challenges === challenges) return;
    this.reported = { parsed, challenges };
    const rejected = challenges.length === 0 ? parsed : [...parsed, ...challenges];
    this.rejected = rejected;
    this.entryReports.update(rejected, (r) => `${r.key}\u0000${r.reason}`, (r) =>
      this.options.logger.warn({ key: r.key, reason: r.reason, ...(r.service ? { service: r.service } : {}) }, 'entry rejected'));
  }

  private reportWarnings(warnings: readonly EntryWarning[]): void {
    if (warnings === this.warnings) return;
    this.warnings = warnings;
    this.warningReports.update(warnings, (w) => `${w.key}\u0000${w.reason}`, (w) =>
      this.options.logger.warn({ key: w.key, reason: w.reason }, 'entry warning'));
  }
}

/** Milliseconds since `started`, to 0.1 ms: a runtime apply takes a few. */
function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

function serverNames(plan: ServerPlan): Record<string, string[]> {
  const names = (lines: ServerPlan['add']) => lines.map((l) => `${l.proxy}/${l.name}`);
  return Object.fromEntries(
    ([['serversAdded', plan.add], ['serversRemoved', plan.remove], ['serversReaddressed', plan.readdress]] as const)
      .filter(([, lines]) => lines.length > 0)
      .map(([key, lines]) => [key, names(lines)]),
  );
}

function serviceFingerprint(state: DesiredState, key: string): string {
  const service = findService(state, key);
  return service ? fingerprintOf(service) : 'null';
}

/** HAProxy 1.8 directives in the environment's settings, named with their replacement. */
function settingsHints(settings: RenderSettings): string[] {
  return ([
    ['KONTENA_LB_GLOBAL_SETTINGS', settings.globalSettings, 'global'],
    ['KONTENA_LB_CUSTOM_SETTINGS', settings.defaultsSettings, 'proxy'],
  ] as const)
    .flatMap(([name, lines, section]) => {
      const hint = legacyHint(lines, section);
      return hint ? [`${name} ${hint}`] : [];
    });
}

function compactChanges(changes: StateChanges): Partial<StateChanges> {
  return isEmptyChange(changes)
    ? {}
    : Object.fromEntries(Object.entries(changes).filter(([, list]) => (list as string[]).length > 0));
}
