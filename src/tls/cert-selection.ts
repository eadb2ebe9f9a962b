import { BundleParser, type RawCert } from './bundle.js';
import { selectCertificates, type CertSet } from './store.js';

const REJECTED_RECHECK_MS = 3600_000;

/**
 * selectCertificates, again only when its inputs changed (a source handed in another list) or
 * a certificate it looked at has expired since (or, while one is refused, every hour): what it serves depends on nothing else, and an
 * instance change must not hash every certificate again.
 */
export class CertSelection {
  private readonly parser = new BundleParser();
  private last: { readonly sources: readonly (readonly RawCert[])[]; readonly set: CertSet; readonly recheckAt: number } | undefined;

  constructor(private readonly defaultCert: string | undefined) {}

  /** The certificates to serve from these sources (env, vault, directory...); `fresh` when selected again. */
  select(sources: readonly (readonly RawCert[])[], now = new Date()): { set: CertSet; fresh: boolean } {
    const last = this.last;
    if (last && now.getTime() < last.recheckAt && sources.length === last.sources.length && sources.every((s, i) => s === last.sources[i])) {
      return { set: last.set, fresh: false };
    }
    const set = selectCertificates(sources.flat(), { defaultCert: this.defaultCert, parser: this.parser, now });
    const expiries = set.all.map((b) => b.notAfter.getTime()).filter((t) => t > now.getTime());
    // A refused bundle may become servable with time (one not valid before a date a day away).
    const retryRejected = set.rejected.length > 0 ? now.getTime() + REJECTED_RECHECK_MS : Infinity;
    this.last = { sources, set, recheckAt: Math.min(retryRejected, ...expiries) };
    return { set, fresh: true };
  }
}
