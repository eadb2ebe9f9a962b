import type { CertSet, ClientAuthCert, ServedCert } from './store.js';

/** One host name's client-certificate check (pipeline/ca-resolution.ts): a crt-list line of its own. */
export interface ClientAuthHost {
  /** The SNI filter: a virtual host, exact or `*.example.com`. */
  readonly sni: string;
  readonly verify: 'required' | 'optional';
  readonly caFile: string;
  readonly crlFile?: string;
}

/**
 * The served certificates with the client-certificate checks of some host names. Pure.
 *
 * HAProxy asks for a client certificate per crt-list line (configuration manual 2.6, 5.1
 * "crt-list": `<cert> [verify required ca-file <f> crl-file <f>] <sni filter>`), so each checked
 * host gets a line of its own naming the certificate that serves it: the one whose line has the
 * exact name (or the same wildcard), else one with the covering wildcard, else the default. The
 * name is taken off that certificate's own line, so no TLS server name is on two lines (HAProxy
 * would pick one of them). A plain line left without names is dropped, but the default's, which
 * gets the moved names as negative filters (`!name`): a line without filters would add every name
 * of the certificate again. An unchecked exact name under a checked wildcard gets a plain line.
 *
 * What the TLS layer cannot do alone (a client naming an unchecked host in SNI and a checked one in
 * `Host`) the checked service's backend refuses (templates/http-backend.hbs).
 */
export function withClientAuth(
  set: CertSet,
  hosts: readonly ClientAuthHost[],
  caFiles: readonly { file: string; pem: string }[],
  plainHosts: readonly string[] = [],
): CertSet {
  if (hosts.length === 0 && caFiles.length === 0) return set;
  const defaultCert = set.served[0];
  if (hosts.length === 0 || defaultCert === undefined) return { ...set, caFiles };
  const sniOf = new Map<ServedCert, string[]>(set.served.map((s) => [s, [...s.sni]]));
  const moved = new Map<ServedCert, string[]>();
  const clientAuth: ClientAuthCert[] = [];
  for (const host of hosts) {
    const exact = set.served.find((s) => s.sni.includes(host.sni));
    const parent = host.sni.startsWith('*.') ? undefined : `*.${host.sni.split('.').slice(1).join('.')}`;
    const serving: ServedCert = exact ?? set.served.find((s) => parent !== undefined && s.sni.includes(parent)) ?? defaultCert;
    if (exact)
      sniOf.set(
        exact,
        sniOf.get(exact)!.filter((name) => name !== host.sni),
      );
    // The default's line without filters (KONTENA_LB_DEFAULT_CERT winning no name) adds its names too.
    if (exact || (serving === defaultCert && defaultCert.sni.length === 0)) moved.set(serving, [...(moved.get(serving) ?? []), host.sni]);
    clientAuth.push({ bundle: serving.bundle, sni: host.sni, verify: host.verify, caFile: host.caFile, ...(host.crlFile ? { crlFile: host.crlFile } : {}) });
  }
  const served = set.served.flatMap((s): ServedCert[] => {
    const sni = sniOf.get(s)!;
    const gone = moved.get(s);
    if (gone === undefined) return [s];
    if (sni.length > 0) return [{ ...s, sni }];
    return s === defaultCert ? [{ ...s, sni: gone.map((name) => `!${name}`) }] : [];
  });
  // Unchecked names under a checked wildcard (pipeline/ca-resolution.ts uncheckedUnderWildcards): a plain
  // line with the certificate that covers them, unless one has the exact name already.
  const plain = plainHosts.flatMap((name): ServedCert[] => {
    if (set.served.some((s) => s.sni.includes(name))) return [];
    const wildcard = `*.${name.split('.').slice(1).join('.')}`;
    return [{ ...(set.served.find((s) => s.sni.includes(wildcard)) ?? defaultCert), sni: [name] }];
  });
  return { ...set, served: [...served, ...plain], clientAuth, caFiles };
}

/**
 * Whether a TLS session could be resumed under a host name of another check. A resumed TLS 1.3
 * session keeps the client certificate its first handshake verified, while its server name (so
 * the crt-list line, and the `ssl_fc_sni` the backend compares with Host) is the new one: a
 * certificate of one CA would reach a host that trusts another (the cross-SNI resumption nginx
 * fixed in 1.27.4). Within one CA and CRL it verified against the same trust, so resumption stays.
 */
export function resumptionCrossesChecks(set: CertSet): boolean {
  return new Set((set.clientAuth ?? []).map(trustOf)).size > 1;
}

/**
 * What a verified client certificate proves: the CA bundle and CRL it was checked against. Two
 * checks of the same trust (`required` or `optional`) accept the same certificates; one without a
 * certificate is refused by a required check's backend (templates/http-backend.hbs).
 */
export function trustOf(check: Pick<ClientAuthHost, 'caFile' | 'crlFile'>): string {
  return `${check.caFile}\n${check.crlFile ?? ''}`;
}
