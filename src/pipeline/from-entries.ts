import type { Config } from '../config.js';
import { parseChallenges } from '../model/challenges.js';
import { parseEntries, type ParseOptions } from '../model/parse.js';
import { peerSetOf, type Peer } from '../model/peers.js';
import type { Entries } from '../model/types.js';
import { readCaFiles } from '../sources/ca-files.js';
import { certsFromFiles, readCertsDir } from '../sources/certs-dir.js';
import { readEnvCerts } from '../sources/env-certs.js';
import { certsByKind, type CertOffer, type CertSourceKind } from '../tls/cert-provider.js';
import { caStoreFromEntries, mergeCaStores, type CaStore } from '../tls/ca-bundles.js';
import { selectCertificates } from '../tls/store.js';
import { vaultCertsFromEntries } from '../tls/vault.js';
import { desiredConfig, type DesiredConfig, type SettingsBase } from './desired-config.js';
import { parseOptionsOf } from './settings-of.js';

export interface EntriesInputs {
  readonly entries: Entries;
  readonly parseOptions: ParseOptions;
  /** `ACME_CHALLENGE_<token>` variables. */
  readonly envChallenges?: Readonly<Record<string, string | undefined>>;
  readonly vaultKey: string | undefined;
  readonly defaultCert: string | undefined;
  /** What the other certificate providers offer now (certOffersOnce). */
  readonly offers: readonly CertOffer[];
  /** The certificate directory's CA bundles, read once. */
  readonly dirCas?: CaStore;
  /** KONTENA_LB_PEERS=etcd: this replica's peer (the others are the entries under `peers/`). */
  readonly localPeer?: Peer;
}

/**
 * The desired config of one set of entries, read in one pass: what `edgelb check` and
 * `edgelb render` show. The same desiredConfig as `edgelb run`, whose controller reads the same
 * inputs incrementally. Also returns every provider's offer (the vault's included) for reports.
 */
export function desiredFromEntries(inputs: EntriesInputs, base: SettingsBase): { desired: DesiredConfig; offers: readonly CertOffer[] } {
  const parsed = parseEntries(inputs.entries, inputs.parseOptions);
  const challenges = parseChallenges(inputs.entries, inputs.envChallenges);
  const vault: CertOffer = { kind: 'vault', ...vaultCertsFromEntries(inputs.entries, inputs.vaultKey) };
  const offers = new Map<CertSourceKind, CertOffer>([...inputs.offers, vault].map((o) => [o.kind, o]));
  const certs = selectCertificates(certsByKind(offers).flat(), { defaultCert: inputs.defaultCert });
  const cas = mergeCaStores([caStoreFromEntries(inputs.entries, inputs.vaultKey), ...(inputs.dirCas ? [inputs.dirCas] : [])]);
  const peers = inputs.localPeer && peersOf(inputs.entries, inputs.localPeer);
  return { desired: desiredConfig({ parsed, challenges, certs, cas, peers }, base), offers: [...offers.values()] };
}

function peersOf(entries: Entries, local: Peer) {
  const read = peerSetOf(entries, local);
  return { set: read.peers, rejected: read.rejected };
}

/** The environment's and the certificate directory's certificates, read once (no watching). */
async function certOffersOnce(env: Readonly<Record<string, string | undefined>>, certsDir: string | undefined): Promise<CertOffer[]> {
  const offers: CertOffer[] = [{ kind: 'env', certs: readEnvCerts(env), rejected: [] }];
  if (certsDir !== undefined) offers.push({ kind: 'dir', certs: certsFromFiles(await readCertsDir(certsDir)), rejected: [] });
  return offers;
}

/** What `check` and `render` read for one set of entries: the settings' parse options and keys, and every provider's certificates. */
export async function entriesInputsOf(config: Config, entries: Entries, env: Readonly<Record<string, string | undefined>>): Promise<EntriesInputs> {
  return {
    entries,
    parseOptions: parseOptionsOf(config),
    envChallenges: env,
    vaultKey: config.vaultKey,
    defaultCert: config.defaultCert,
    offers: await certOffersOnce(env, config.certsDir),
    ...(config.certsDir === undefined ? {} : { dirCas: await readCaFiles(config.certsDir) }),
    localPeer: config.peers,
  };
}
