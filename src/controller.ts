import type { Logger } from './log.js';
import type { ConfigApplier, ApplyAction } from './haproxy/apply.js';
import { diffStates, isEmptyChange, type StateChanges } from './model/diff.js';
import { parseEntries, type ParseOptions } from './model/parse.js';
import type { DesiredState, Rejection } from './model/types.js';
import { attributeErrors } from './render/attribute.js';
import type { ConfigRenderer } from './render/render.js';
import type { RenderSettings } from './render/view.js';
import type { Snapshot } from './sources/etcd.js';

export interface ControllerOptions {
  readonly render: ConfigRenderer;
  readonly renderSettings: RenderSettings;
  readonly parseOptions: ParseOptions;
  readonly applier: ConfigApplier;
  readonly logger: Logger;
  /** Wait this long after the last change before applying, so a burst becomes one apply. */
  readonly quietMs?: number;
  /** ...but never delay a change longer than this. */
  readonly maxDelayMs?: number;
}

export interface ApplyRecord {
  readonly at: string;
  readonly revision: string;
  readonly action: ApplyAction | 'failed';
  readonly durationMs: number;
  readonly changes: StateChanges;
  readonly error?: string;
}

export interface ControllerStatus {
  readonly revision: string | undefined;
  readonly state: DesiredState | undefined;
  readonly rejected: readonly Rejection[];
  readonly excluded: readonly { service: string; reason: string }[];
  readonly lastApply: ApplyRecord | undefined;
  readonly counters: Readonly<Record<'applies' | 'reloads' | 'starts' | 'unchanged' | 'failures', number>>;
}

const MAX_ISOLATION_ROUNDS = 5;

/**
 * The reconcile loop. Sources hand it whole snapshots; it coalesces bursts, lets the latest
 * snapshot win, and applies one at a time: parse → render → validate → commit. A service
 * whose lines HAProxy rejects is left out (and remembered until its entries change) so that
 * every other service is still applied.
 */
export class Controller {
  private pending: Snapshot | undefined;
  private firstPendingAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private applied: { revision: string; state: DesiredState } | undefined;
  private rejected: readonly Rejection[] = [];
  private loggedRejections = new Set<string>();
  /** Services HAProxy rejected, by key, with the JSON of the version it rejected. */
  private readonly excluded = new Map<string, { fingerprint: string; reason: string }>();
  private lastApply: ApplyRecord | undefined;
  private readonly counters = { applies: 0, reloads: 0, starts: 0, unchanged: 0, failures: 0 };
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: ControllerOptions) {}

  /** Accepts a new snapshot; it replaces any snapshot not yet applied. */
  offer(snapshot: Snapshot): void {
    const now = Date.now();
    if (!this.pending) this.firstPendingAt = now;
    this.pending = snapshot;
    const quiet = this.options.quietMs ?? 25;
    const maxDelay = this.options.maxDelayMs ?? 250;
    const due = Math.min(now + quiet, this.firstPendingAt + maxDelay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, due - now));
  }

  status(): ControllerStatus {
    return {
      revision: this.applied?.revision,
      state: this.applied?.state,
      rejected: this.rejected,
      excluded: [...this.excluded].map(([service, { reason }]) => ({ service, reason })),
      lastApply: this.lastApply,
      counters: { ...this.counters },
    };
  }

  /** Resolves when no snapshot is waiting and no apply is running. */
  whenIdle(): Promise<void> {
    if (!this.pending && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.pending = undefined;
  }

  private kick(): void {
    if (this.running || !this.pending) return;
    const snapshot = this.pending;
    this.pending = undefined;
    this.running = this.reconcile(snapshot)
      .catch((error: Error) => this.options.logger.error({ err: error.message }, 'reconcile failed'))
      .finally(() => {
        this.running = undefined;
        if (this.pending) {
          // Changes that arrived while applying are already past their quiet time.
          clearTimeout(this.timer);
          this.timer = setTimeout(() => this.kick(), 0);
        } else {
          for (const resolve of this.idleWaiters.splice(0)) resolve();
        }
      });
  }

  private async reconcile(snapshot: Snapshot): Promise<void> {
    const { logger, applier, render, renderSettings } = this.options;
    const started = performance.now();
    const parsed = parseEntries(snapshot.entries, this.options.parseOptions);
    this.reportRejections(parsed.rejected);

    let state = this.withoutExcluded(parsed.state);
    for (let round = 0; round <= MAX_ISOLATION_ROUNDS; round++) {
      const text = render(state, renderSettings);
      if (applier.isApplied(text)) {
        this.counters.unchanged++;
        this.applied = { revision: snapshot.revision, state };
        logger.debug({ revision: snapshot.revision }, 'no change to apply');
        return;
      }
      const validation = await applier.validate(text);
      if (validation.ok) {
        await this.commit(text, state, snapshot.revision, started);
        return;
      }
      const { services, unattributed } = attributeErrors(text, validation.errors);
      if (services.size === 0 || unattributed.length > 0 || round === MAX_ISOLATION_ROUNDS) {
        const reason = [...unattributed, ...[...services.values()].flat()].join('; ');
        this.recordFailure(snapshot.revision, state, started, `HAProxy rejected the config: ${reason}`);
        return;
      }
      for (const [service, messages] of services) {
        const reason = messages.join('; ');
        this.excluded.set(service, { fingerprint: fingerprintOf(state, service), reason });
        logger.error({ service, haproxyError: reason }, 'service left out: HAProxy rejected its settings');
      }
      state = this.withoutExcluded(state);
    }
  }

  private async commit(text: string, state: DesiredState, revision: string, started: number): Promise<void> {
    const changes = diffStates(this.applied?.state, state);
    try {
      const action = await this.options.applier.commit(text);
      this.counters.applies++;
      if (action === 'reloaded') this.counters.reloads++;
      if (action === 'started') this.counters.starts++;
      const durationMs = Math.round(performance.now() - started);
      this.applied = { revision, state };
      this.lastApply = { at: new Date().toISOString(), revision, action, durationMs, changes };
      this.options.logger.info(
        { action, revision, durationMs, ...compactChanges(changes), services: state.http.length + state.tcp.length },
        action === 'started' ? 'HAProxy started with the first config' : 'config applied (seamless reload)',
      );
    } catch (error) {
      this.recordFailure(revision, state, started, (error as Error).message);
    }
  }

  private recordFailure(revision: string, state: DesiredState, started: number, message: string): void {
    this.counters.failures++;
    const durationMs = Math.round(performance.now() - started);
    const changes = diffStates(this.applied?.state, state);
    this.lastApply = { at: new Date().toISOString(), revision, action: 'failed', durationMs, changes, error: message };
    this.options.logger.error({ revision, durationMs, err: message }, 'apply failed; HAProxy keeps serving the last good config');
  }

  /** Drops services HAProxy rejected before, unless their entries have changed since. */
  private withoutExcluded(state: DesiredState): DesiredState {
    for (const [service, { fingerprint }] of this.excluded) {
      if (fingerprintOf(state, service) !== fingerprint) this.excluded.delete(service);
    }
    if (this.excluded.size === 0) return state;
    return {
      http: state.http.filter((s) => !this.excluded.has(`http:${s.name}`)),
      tcp: state.tcp.filter((s) => !this.excluded.has(`tcp:${s.name}`)),
    };
  }

  /** Logs each rejected entry once while it stays rejected, so a bad key does not flood the log. */
  private reportRejections(rejected: readonly Rejection[]): void {
    this.rejected = rejected;
    const current = new Set<string>();
    for (const r of rejected) {
      const id = `${r.key}\u0000${r.reason}`;
      current.add(id);
      if (!this.loggedRejections.has(id)) {
        this.options.logger.warn({ key: r.key, reason: r.reason, ...(r.service ? { service: r.service } : {}) }, 'entry rejected');
      }
    }
    this.loggedRejections = current;
  }
}

function fingerprintOf(state: DesiredState, key: string): string {
  const [kind, name] = key.split(':', 2);
  const list: readonly { name: string }[] = kind === 'tcp' ? state.tcp : state.http;
  return JSON.stringify(list.find((s) => s.name === name) ?? null);
}

function compactChanges(changes: StateChanges): Partial<StateChanges> {
  return isEmptyChange(changes)
    ? {}
    : Object.fromEntries(Object.entries(changes).filter(([, list]) => (list as string[]).length > 0));
}
