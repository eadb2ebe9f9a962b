import type { Logger } from '../log.js';
import type { DesiredState, EntryWarning, Rejection } from '../model/types.js';
import { EntryWarnings } from '../model/warnings.js';
import type { CertOffer } from '../tls/cert-provider.js';
import type { CertRejection, CertSet } from '../tls/store.js';
import { ReportOnce } from '../util/report-once.js';
import { event } from './log-events.js';

const NONE: readonly Rejection[] = Object.freeze([]);

/**
 * Logs what the inputs could not use, each problem once while it lasts: rejected entries and
 * challenge tokens, entry warnings, certificates refused. Keeps the current lists for /status.
 */
export class InputReports {
  private rejectedNow: readonly Rejection[] = [];
  private warningsNow: readonly EntryWarning[] = [];
  private lastRejections:
    | { parsed: readonly Rejection[]; challenges: readonly Rejection[]; cas: readonly Rejection[]; peers: readonly Rejection[] }
    | undefined;
  private readonly entryWarnings = new EntryWarnings();
  private readonly entryReports = new ReportOnce();
  private readonly warningReports = new ReportOnce();
  private readonly certReports = new ReportOnce();

  constructor(private readonly logger: Logger) {}

  get rejected(): readonly Rejection[] {
    return this.rejectedNow;
  }

  get warnings(): readonly EntryWarning[] {
    return this.warningsNow;
  }

  /** Nothing to do while the lists are the very ones of the last time (the parse, the CA resolution and the peers' read reuse them). */
  rejections(parsed: readonly Rejection[], challenges: readonly Rejection[], cas: readonly Rejection[] = NONE, peers: readonly Rejection[] = NONE): void {
    const last = this.lastRejections;
    if (last?.parsed === parsed && last.challenges === challenges && last.cas === cas && last.peers === peers) return;
    this.lastRejections = { parsed, challenges, cas, peers };
    const rejected = challenges.length === 0 && cas.length === 0 && peers.length === 0 ? parsed : [...parsed, ...challenges, ...cas, ...peers];
    this.rejectedNow = rejected;
    this.entryReports.update(
      rejected,
      (r) => `${r.key}\u0000${r.reason}`,
      (r) =>
        this.logger.warn(
          { ...event('entry.rejected'), key: r.key, code: r.code, reason: r.reason, ...(r.service ? { service: r.service } : {}) },
          'entry rejected',
        ),
    );
  }

  warningsOf(state: DesiredState): void {
    const warnings = this.entryWarnings.update(state);
    if (warnings === this.warningsNow) return;
    this.warningsNow = warnings;
    this.warningReports.update(
      warnings,
      (w) => `${w.key}\u0000${w.reason}`,
      (w) => this.logger.warn({ ...event('entry.warning'), key: w.key, reason: w.reason }, 'entry warning'),
    );
  }

  /** After a fresh selection: what the sources and the selection refused, and the selection's warnings. */
  certificates(offers: Iterable<CertOffer>, set: CertSet): void {
    const problems: (CertRejection & { level: 'warn' | 'error' })[] = [
      ...[...offers].flatMap((o) => o.rejected.map((r) => ({ source: `${o.kind}:${r.key}`, reason: r.reason, level: 'error' as const }))),
      ...set.rejected.map((r) => ({ ...r, level: 'error' as const })),
      ...set.warnings.map((w) => ({ source: '', reason: w, level: 'warn' as const })),
    ];
    this.certReports.update(
      problems,
      (p) => `${p.source}\u0000${p.reason}`,
      (p) =>
        p.level === 'error'
          ? this.logger.error({ ...event('certificate.rejected'), source: p.source, reason: p.reason }, 'certificate rejected')
          : this.logger.warn({ ...event('certificate.warning'), reason: p.reason }, 'certificate warning'),
    );
  }
}
