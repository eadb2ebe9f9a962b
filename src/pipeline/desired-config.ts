import type { Challenges } from '../model/challenges.js';
import type { DesiredState, ParseResult, Rejection } from '../model/types.js';
import type { PeerSet } from '../model/peers.js';
import { peersSettingsOf } from '../render/peers-view.js';
import type { RenderSettings, TlsSettings } from '../render/render-settings.js';
import { EMPTY_CA_STORE, type CaStore } from '../tls/ca-bundles.js';
import { resumptionCrossesChecks, withClientAuth } from '../tls/client-auth-lines.js';
import type { CertSet } from '../tls/store.js';
import { resolveCaBundles, uncheckedUnderWildcards } from './ca-resolution.js';

/** The HTTPS listener's settings as configured; the default certificate comes from what is served. */
export type TlsOptions = Omit<TlsSettings, 'defaultCert' | 'crtList' | 'noResumption'>;

/** The settings every render starts from, fixed for the life of the process (from Config). */
export interface SettingsBase {
  readonly render: RenderSettings;
  readonly tls: TlsOptions;
  /** Where the crt-list is written (haproxy/cert-files.ts). */
  readonly crtList: string;
  /** Where CA bundles and CRLs are written (the certificates' dir: pruned with them). */
  readonly caDir: string;
}

/** What the sources gave, read: the parsed entries, the challenge tokens, the selected certificates. */
export interface DesiredInputs {
  readonly parsed: ParseResult;
  readonly challenges: { readonly challenges: Challenges; readonly rejected: readonly Rejection[] };
  readonly certs: CertSet;
  /** The CA bundles and CRLs read from etcd and the certificate directory (tls/ca-bundles.ts). */
  readonly cas?: CaStore;
  /** KONTENA_LB_PEERS=etcd: the replicas registered in etcd and the registrations left out; absent: the local peer alone. */
  readonly peers?: { readonly set: PeerSet; readonly rejected: readonly Rejection[] };
}

/** Everything one apply serves: `run`, `check` and `render` all get it from desiredConfig. */
export interface DesiredConfig {
  readonly state: DesiredState;
  /** Entries and challenge tokens left out, with key, code and reason. */
  readonly rejected: readonly Rejection[];
  readonly challenges: Challenges;
  readonly certs: CertSet;
  readonly settings: RenderSettings;
  /** The CA bundles and client checks that could not be used (part of `rejected`; the same array while nothing changed). */
  readonly caRejected: readonly Rejection[];
}

/**
 * The one desired-state function: sources read → what HAProxy should serve, with the settings to
 * render it. Pure. The HTTPS listener exists only while at least one certificate is served, and
 * names the default certificate (so a change of default is a config change).
 */
export function desiredConfig(inputs: DesiredInputs, base: SettingsBase): DesiredConfig {
  const { parsed, challenges } = inputs;
  const cas = resolveCaBundles(parsed.state, inputs.cas ?? EMPTY_CA_STORE, base.caDir);
  const more = [...challenges.rejected, ...cas.rejected, ...(inputs.peers?.rejected ?? [])];
  const rejected = more.length === 0 ? parsed.rejected : [...parsed.rejected, ...more];
  const certs = withClientAuth(inputs.certs, cas.clientAuth, cas.files, uncheckedUnderWildcards(cas.state, cas.clientAuth));
  const settings = renderSettingsFor(base, certs);
  const withPeers = inputs.peers ? { ...settings, peers: peersSettingsOf(inputs.peers.set) } : settings;
  return { state: cas.state, rejected, challenges: challenges.challenges, certs, settings: withPeers, caRejected: cas.rejected };
}

/** The render settings for a set of served certificates; the base object itself when none is served. */
function renderSettingsFor(base: SettingsBase, certs: CertSet): RenderSettings {
  const first = certs.served[0];
  if (!first) return base.render;
  const noResumption = resumptionCrossesChecks(certs) ? { noResumption: true } : {};
  return { ...base.render, tls: { ...base.tls, crtList: base.crtList, defaultCert: first.bundle.id, ...noResumption } };
}
