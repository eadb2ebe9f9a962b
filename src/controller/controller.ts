import { EdgelbError } from '../errors.js';
import { canarySharesOf } from '../render/routing-view.js';
import type { ConfigApplier } from '../haproxy/apply.js';
import type { CertFiles } from '../haproxy/cert-files.js';
import type { ChallengeMap } from '../haproxy/challenge-map.js';
import type { ServerUpdater } from '../haproxy/server-updater.js';
import type { Logger } from '../log.js';
import type { HealthCheck } from '../model/health-check.js';
import { legacySettingsHints } from '../model/legacy-directives.js';
import type { Snapshot } from '../model/snapshot.js';
import type { DesiredState } from '../model/types.js';
import { diffStates } from '../model/diff.js';
import { desiredConfig, type DesiredConfig, type SettingsBase } from '../pipeline/desired-config.js';
import { attributeErrors } from '../render/attribute.js';
import type { RenderedConfig, SectionRenderer, ServerArgsRenderer } from '../render/render.js';
import { certsByKind, type CertOffer, type CertSourceKind } from '../tls/cert-provider.js';
import { CertSelection } from '../tls/cert-selection.js';
import { EMPTY_CERT_SET } from '../tls/store.js';
import { planApply, type Applied } from './apply-plan.js';
import { CertWarningReports } from './cert-warning-reports.js';
import { Coalescer } from './coalescer.js';
import { commitConfig } from './commit.js';
import { Exclusions } from './exclusions.js';
import { ControllerInputs, type ControllerInputsOptions } from './inputs.js';
import { event } from './log-events.js';
import type { ControllerStatus } from './controller-status.js';
import { ApplyRecorder } from './recorder.js';
import { InputReports } from './reports.js';
import { applyAtRuntime, servicesIn } from './runtime-apply.js';

export type { ApplyRecord } from './recorder.js';
export type { ControllerStatus } from './controller-status.js';

/** Besides what the inputs need (the parse options, challenge variables, the vault, the CA bundles, this replica's peer): */
export interface ControllerOptions extends ControllerInputsOptions {
  readonly render: SectionRenderer;
  /** A server's arguments after its address, as the file has them (templates/server-args.hbs). */
  readonly serverArgs: ServerArgsRenderer;
  /** The settings every render starts from (pipeline/settings-of.ts settingsBaseOf). */
  readonly settings: SettingsBase;
  readonly applier: ConfigApplier;
  readonly certFiles: CertFiles;
  readonly challengeMap: ChallengeMap;
  /** Canary shares (issue 15): written before every reload, changed at runtime otherwise. */
  readonly canaryMap: ChallengeMap;
  /** Adds, drains and re-addresses servers through the runtime API; without it every change reloads. */
  readonly servers?: ServerUpdater;
  readonly logger: Logger;
  readonly defaultCert?: string;
  /** Told the parsed routes of every snapshot applied (services HAProxy rejected included): ACME's domains. */
  readonly onParsed?: (state: DesiredState) => void;
  /** Wait this long after the last change before applying, so a burst becomes one apply. */
  readonly quietMs?: number;
  /** ...but never delay a change longer than this. */
  readonly maxDelayMs?: number;
  /** When etcd has not answered this long after start, serve the last good config from the state dir. */
  readonly lastGoodAfterMs?: number;
  /** KONTENA_LB_CERT_WARN_DAYS (default: the setting's). */
  readonly certWarnDays?: number;
  /** The domains ACME is asked for, after onParsed (undefined: not known): other domains' states are no renewal. */
  readonly acmeDomains?: () => readonly string[] | undefined;
  /** Told about every failed apply, so the caller can retry one the disk caused (app.ts). */
  readonly onApplyFailed?: (error: Error) => void;
}

const MAX_ISOLATION_ROUNDS = 5;

/**
 * The reconcile loop. Sources hand it whole snapshots and certificate offers; the coalescer turns
 * bursts into one apply at a time, the latest input winning. Each apply: the desired config
 * (pipeline/desired-config.ts, as `check` and `render` build it) → the typed plan (apply-plan.ts)
 * → runtime API, or render → validate → reload. A service whose lines HAProxy rejects is left
 * out (exclusions.ts) so that every other service is still applied.
 */
export class Controller {
  private etcd: Snapshot | undefined;
  private readonly offers = new Map<CertSourceKind, CertOffer>();
  private applied: Applied | undefined;
  /** The config HAProxy serves, when this controller rendered it: the base of the typed plan. */
  private ours: RenderedConfig | undefined;
  /** The health check of each proxy's servers in the config HAProxy serves. */
  private checks: ReadonlyMap<string, HealthCheck> = new Map();
  private readonly inputs: ControllerInputs;
  private readonly certSelection: CertSelection;
  private readonly coalescer: Coalescer;
  private readonly recorder: ApplyRecorder;
  private readonly reports: InputReports;
  private readonly exclusions: Exclusions;
  private readonly certWarnings: CertWarningReports;
  private readonly lastGoodTimer: NodeJS.Timeout;

  constructor(private readonly options: ControllerOptions) {
    this.inputs = new ControllerInputs(options);
    this.certSelection = new CertSelection(options.defaultCert);
    this.recorder = new ApplyRecorder(options.logger, options.onApplyFailed);
    this.reports = new InputReports(options.logger);
    this.exclusions = new Exclusions(options.logger);
    this.certWarnings = new CertWarningReports(options.logger, options.certWarnDays);
    this.coalescer = new Coalescer((changedAt) => this.applyLatest(changedAt), {
      quietMs: options.quietMs,
      maxDelayMs: options.maxDelayMs,
      // Nothing is applied before etcd has answered once: HAProxy starts with the real routes.
      ready: () => this.etcd !== undefined,
    });
    this.lastGoodTimer = setTimeout(() => this.startLastGood(), options.lastGoodAfterMs ?? 2000);
  }

  /** Accepts a new etcd snapshot; it replaces any snapshot not yet applied. */
  offer(snapshot: Snapshot): void {
    this.etcd = snapshot;
    this.coalescer.changed();
  }

  /** Accepts a certificate source's whole current set (the environment, the watched directory). */
  offerCerts(offer: CertOffer): void {
    this.offers.set(offer.kind, offer);
    this.coalescer.changed();
  }

  status(): ControllerStatus {
    return {
      revision: this.applied?.revision,
      state: this.applied?.state,
      certs: this.applied?.certs ?? EMPTY_CERT_SET,
      rejected: this.reports.rejected,
      warnings: this.reports.warnings,
      excluded: this.exclusions.list(),
      lastApply: this.recorder.last,
      counters: this.recorder.counters(),
      certificateWarnings: this.certWarnings.warnings,
      peers: this.ours?.settings.peers,
    };
  }

  /** Resolves when no input is waiting, no apply is running, and haproxy.cfg holds what HAProxy serves. */
  async whenIdle(): Promise<void> {
    await this.coalescer.whenIdle();
    await this.options.applier.flush().catch(() => undefined);
  }

  stop(): void {
    clearTimeout(this.lastGoodTimer);
    this.certWarnings.stop();
    this.coalescer.stop();
  }

  /** etcd is slow or down at start: traffic should not wait for it if a previous run left a config. */
  private startLastGood(): void {
    if (this.applied) return;
    const { applier, logger } = this.options;
    this.coalescer.runAlone(() =>
      applier
        .startLastGood()
        .then((started) => {
          if (started) logger.warn(event('last_good.started'), 'etcd has not answered yet: serving the last good config from the state dir');
        })
        .catch((error: Error) => logger.error({ ...event('last_good.failed'), err: error.message }, 'cannot start HAProxy with the last good config')),
    );
  }

  private async applyLatest(changedAt: number): Promise<void> {
    this.recorder.begin(changedAt);
    const snapshot = this.etcd!;
    const started = performance.now();
    try {
      await this.reconcile(snapshot, this.desiredOf(snapshot), started);
    } catch (error) {
      // Typically the state dir (full, read-only): nothing was loaded, HAProxy still runs the last good config.
      this.recorder.failed(snapshot.revision, started, undefined, error as Error);
    }
  }

  /** Every read of the snapshot happens here, before the first await: only the newest may be read. */
  private desiredOf(snapshot: Snapshot): DesiredConfig {
    const { parsed, challenges, challengeRejections, vault, cas, peers, acmeStates } = this.inputs.read(snapshot, this.offers.get('dir')?.cas);
    try {
      this.options.onParsed?.(parsed.state);
    } catch (error) {
      // A consumer of the routes (ACME) must not fail the apply of everything else.
      this.options.logger.error({ ...event('routes.consumer_failed'), err: (error as Error).message }, 'a consumer of the parsed routes failed');
    }
    this.reports.warningsOf(parsed.state);
    this.offers.set('vault', vault);
    const { set, fresh } = this.certSelection.select(certsByKind(this.offers));
    if (fresh) this.reports.certificates(this.offers.values(), set);
    this.certWarnings.update(set, parsed.state, acmeStates, this.options.acmeDomains?.());
    const desired = desiredConfig({ parsed, challenges: { challenges, rejected: challengeRejections }, certs: set, cas, peers }, this.options.settings);
    this.reports.rejections(parsed.rejected, challengeRejections, desired.caRejected, peers?.rejected);
    return desired;
  }

  private async reconcile(snapshot: Snapshot, desired: DesiredConfig, started: number): Promise<void> {
    const { applier, render, certFiles, challengeMap } = this.options;
    const { certs, challenges, settings } = desired;
    const revision = snapshot.revision;
    let state = this.exclusions.apply(desired.state);
    for (let round = 0; round <= MAX_ISOLATION_ROUNDS; round++) {
      const rendered = render(state, settings);
      const plan = planApply({
        applied: this.applied,
        serving: applier.serving,
        ours: this.ours,
        rendered,
        state,
        certs,
        challenges,
        serverArgs: (service, upstream) => this.options.serverArgs(service, upstream, settings),
        runtimeServers: this.options.servers !== undefined,
      });
      if (plan.kind === 'unchanged') {
        this.applied = { revision, state, certs, challenges };
        this.recorder.unchanged(revision);
        return;
      }
      if (plan.kind === 'runtime' && (await this.applyRuntime(plan, rendered, { revision, state, certs, challenges }, started))) return;
      const reason = plan.kind === 'reload' ? plan.reason : 'the runtime API refused a change';
      if (round === 0) {
        // haproxy -c reads the crt-list, the CA bundles and the challenge map, so they go to disk first (once).
        if (certs.served.length > 0 || (certs.caFiles ?? []).length > 0) await certFiles.write(certs);
        await challengeMap.write(challenges);
        await this.options.canaryMap.write(canarySharesOf(state));
        // Nothing runs yet: HAProxy's start checks the config itself; haproxy -c only when it refuses.
        if (applier.serving === undefined && (await this.commit(rendered, { revision, state, certs, challenges }, started, reason, 'unchecked'))) return;
      }
      const validation = await applier.validate(rendered.text);
      if (validation.ok) {
        await this.commit(rendered, { revision, state, certs, challenges }, started, reason, 'checked');
        return;
      }
      const { services, unattributed } = attributeErrors(rendered.text, validation.errors);
      if (services.size === 0 || unattributed.length > 0 || round === MAX_ISOLATION_ROUNDS) {
        const why = [...unattributed, ...[...services.values()].flat(), ...legacySettingsHints(settings.globalSettings, settings.defaultsSettings)].join('; ');
        this.recorder.failed(
          revision,
          started,
          diffStates(this.applied?.state, state),
          new EdgelbError('haproxy_config_rejected', `HAProxy rejected the config: ${why}`),
        );
        return;
      }
      for (const [service, messages] of services) this.exclusions.add(state, service, messages.join('; '));
      state = this.exclusions.apply(state);
    }
  }

  /** False when the runtime API refused something: the caller reloads instead. */
  private async applyRuntime(plan: Parameters<typeof applyAtRuntime>[0], rendered: RenderedConfig, next: Applied, started: number): Promise<boolean> {
    const before = this.applied!;
    try {
      const { details } = await applyAtRuntime(
        plan,
        before,
        next.certs,
        next.challenges,
        {
          servers: this.options.servers,
          certFiles: this.options.certFiles,
          challengeMap: this.options.challengeMap,
          canaryMap: this.options.canaryMap,
          checkOf: (proxy) => this.checks.get(proxy),
        },
        { before: canarySharesOf(before.state), after: canarySharesOf(next.state) },
      );
      const changed = servicesIn(plan.servers); // only instances changed: cheaper than diffStates at 10,000
      if (changed.length > 0) {
        // The file follows a moment later, off this path (ConfigFile); whatever reads it waits for it.
        this.options.applier.adoptRuntimeChange(rendered);
        this.ours = rendered;
      }
      this.applied = next;
      this.recorder.runtime(next.revision, started, { added: [], removed: [], changed }, details);
      return true;
    } catch (error) {
      this.options.logger.warn({ ...event('apply.runtime_refused'), err: (error as Error).message }, 'runtime update not possible; reloading instead');
      return false;
    }
  }

  /** False only when an unchecked start was refused (the caller then runs haproxy -c). */
  private async commit(rendered: RenderedConfig, next: Applied, started: number, reason: string, how: 'unchecked' | 'checked'): Promise<boolean> {
    const changes = diffStates(this.applied?.state, next.state);
    try {
      const committed = await commitConfig(rendered, next.state, next.certs, how, this.options);
      if (!committed) return false;
      this.checks = committed.checks;
      this.ours = rendered;
      this.applied = next;
      this.recorder.committed(committed.result.action, next.revision, started, changes, reason, {
        services: next.state.http.length + next.state.tcp.length,
        certificates: next.certs.served.length,
      });
    } catch (error) {
      this.recorder.failed(next.revision, started, changes, error as Error);
    }
    return true;
  }
}
