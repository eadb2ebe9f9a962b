import type { AcmeDomainState } from '../acme/state.js';
import type { Logger } from '../log.js';
import { DEFAULT_CERT_WARN_DAYS } from '../settings/certificates.js';
import type { DesiredState } from '../model/types.js';
import { certificateWarnings, type CertWarning } from '../tls/cert-warnings.js';
import type { CertSet } from '../tls/store.js';
import { ReportOnce } from '../util/report-once.js';
import { event } from './log-events.js';

/** Certificates come closer to expiry with time alone: the warnings are computed again this often. */
const RECHECK_MS = 3600_000;

/**
 * Issue 16: the certificate warnings (tls/cert-warnings.ts) of what is served, kept for /status
 * and logged once each (`certificate.attention`) when it appears: on an apply, and every hour,
 * since a certificate enters the warning window with no change at all.
 */
export class CertWarningReports {
  private inputs:
    | { readonly certs: CertSet; readonly state: DesiredState; readonly acme: readonly AcmeDomainState[]; readonly acmeDomains: readonly string[] | undefined }
    | undefined;
  private current: readonly CertWarning[] = [];
  private readonly reported = new ReportOnce();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly logger: Logger,
    private readonly warnDays: number = DEFAULT_CERT_WARN_DAYS,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.timer = setInterval(() => this.refresh(), RECHECK_MS);
    this.timer.unref();
  }

  get warnings(): readonly CertWarning[] {
    return this.current;
  }

  /** The inputs of the latest apply; nothing is computed again while they are the very same objects. */
  update(certs: CertSet, state: DesiredState, acme: readonly AcmeDomainState[], acmeDomains?: readonly string[]): void {
    const last = this.inputs;
    if (last && last.certs === certs && last.state === state && last.acme === acme && last.acmeDomains === acmeDomains) return;
    this.inputs = { certs, state, acme, acmeDomains };
    this.refresh();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private refresh(): void {
    if (!this.inputs) return;
    const { certs, state, acme, acmeDomains } = this.inputs;
    const hosts = state.http.flatMap((s) => s.virtualHosts);
    this.current = certificateWarnings({ certs, hosts, acme, acmeDomains, now: this.now(), warnDays: this.warnDays });
    this.reported.update(
      this.current,
      // With `since`: a certificate that expires, or a renewal failing anew, is logged again.
      (w) => `${w.kind}\u0000${w.subject}\u0000${w.since ?? ''}`,
      (w) => this.logger.warn({ ...event('certificate.attention'), kind: w.kind, subject: w.subject, detail: w.detail, since: w.since }, 'certificate warning'),
    );
  }
}
