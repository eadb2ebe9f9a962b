import type { ApplyAction } from '../haproxy/apply.js';
import type { Logger } from '../log.js';
import { isEmptyChange, type StateChanges } from '../model/diff.js';
import { systemCodesOf } from '../errors.js';
import { event } from './log-events.js';

export interface ApplyRecord {
  readonly at: string;
  readonly revision: string;
  readonly action: ApplyAction | 'runtime' | 'failed';
  readonly durationMs: number;
  readonly changes: StateChanges;
  /** Why it reloaded (a reload only). */
  readonly reason?: string;
  /**
   * From the moment edgelb saw the first change this apply carries (a watch event, a certificate
   * file) to the apply's end: the coalescing wait included.
   */
  readonly sinceChangeMs?: number;
  readonly error?: string;
}

export type ApplyCounters = Readonly<Record<'applies' | 'reloads' | 'starts' | 'unchanged' | 'failures' | 'runtimeUpdates', number>>;

const NO_CHANGES: StateChanges = Object.freeze({ added: [], removed: [], changed: [] });

/**
 * Keeps the outcome of every apply: counters, the last apply (for /status) and one log line each.
 * `started` is the `performance.now()` of the apply's start, so a failed apply records how long
 * it took too.
 */
export class ApplyRecorder {
  private readonly counts = { applies: 0, reloads: 0, starts: 0, unchanged: 0, failures: 0, runtimeUpdates: 0 };
  private lastApply: ApplyRecord | undefined;
  /** Date.now() of the first change the apply under way carries (see ApplyRecord.sinceChangeMs). */
  private changedAt: number | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly onFailed?: (error: Error) => void,
  ) {}

  /** An apply of changes first seen at `changedAt` (Date.now()) begins. */
  begin(changedAt: number): void {
    this.changedAt = changedAt;
  }

  get last(): ApplyRecord | undefined {
    return this.lastApply;
  }

  counters(): ApplyCounters {
    return { ...this.counts };
  }

  unchanged(revision: string): void {
    this.counts.unchanged++;
    this.logger.debug({ ...event('apply.unchanged'), revision }, 'no change to apply');
  }

  runtime(revision: string, started: number, changes: StateChanges, details: Readonly<Record<string, unknown>>): void {
    this.counts.applies++;
    this.counts.runtimeUpdates++;
    const durationMs = this.record(revision, 'runtime', started, changes);
    this.logger.info({ ...event('apply.runtime'), action: 'runtime', revision, durationMs, ...details }, 'applied through the runtime API (no reload)');
  }

  committed(action: ApplyAction, revision: string, started: number, changes: StateChanges, reason: string, details: Readonly<Record<string, unknown>>): void {
    this.counts.applies++;
    if (action === 'reloaded') this.counts.reloads++;
    if (action === 'started') this.counts.starts++;
    const durationMs = this.record(revision, action, started, changes, action === 'reloaded' ? { reason } : {});
    this.logger.info(
      {
        ...event(action === 'started' ? 'apply.started' : 'apply.reloaded'),
        action,
        revision,
        durationMs,
        ...(action === 'reloaded' ? { reason } : {}),
        ...compactChanges(changes),
        ...details,
      },
      action === 'started' ? 'HAProxy started with the first config' : 'config applied (seamless reload)',
    );
  }

  failed(revision: string, started: number, changes: StateChanges | undefined, error: Error): void {
    this.counts.failures++;
    const durationMs = this.record(revision, 'failed', started, changes ?? NO_CHANGES, { error: error.message });
    this.logger.error(
      { ...event('apply.failed'), revision, durationMs, err: error.message, ...codeOf(error) },
      'apply failed; HAProxy keeps serving the last good config',
    );
    this.onFailed?.(error);
  }

  private record(revision: string, action: ApplyRecord['action'], started: number, changes: StateChanges, extra: Partial<ApplyRecord> = {}): number {
    const durationMs = elapsedMs(started);
    const sinceChange = this.changedAt === undefined ? {} : { sinceChangeMs: Date.now() - this.changedAt };
    this.lastApply = { at: new Date().toISOString(), revision, action, durationMs, changes, ...sinceChange, ...extra };
    return durationMs;
  }
}

/** The stable code of a failure: edgelb's own (EdgelbError), else the system's (ENOSPC...). */
function codeOf(error: Error): { code?: string } {
  const own = (error as { code?: unknown }).code;
  const code = typeof own === 'string' ? own : systemCodesOf(error)[0];
  return code === undefined ? {} : { code };
}

/** Milliseconds since `started`, to 0.1 ms: a runtime apply takes a few. */
function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

function compactChanges(changes: StateChanges): Partial<StateChanges> {
  return isEmptyChange(changes) ? {} : Object.fromEntries(Object.entries(changes).filter(([, list]) => (list as string[]).length > 0));
}
