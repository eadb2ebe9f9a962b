import { parseState, type AcmeDomainState } from '../acme/state.js';
import { KEY_PATHS } from '../model/keyspace.js';
import { CHALLENGE_PREFIX, parseChallenges, type Challenges } from '../model/challenges.js';
import { SnapshotParser } from '../model/incremental.js';
import { peerSetOf, type Peer, type PeerSet } from '../model/peers.js';
import type { ParseOptions } from '../model/parse.js';
import { groupOf, type Snapshot } from '../model/snapshot.js';
import type { Entries, ParseResult, Rejection } from '../model/types.js';
import { CA_DIRS, CaStoreMerge, type CaStore } from '../tls/ca-bundles.js';
import type { CertOffer } from '../tls/cert-provider.js';

/** The vault's certificates, and the keys under `certs/` that could not be used. */
export type VaultInput = Omit<CertOffer, 'kind'>;

export interface SnapshotInputs {
  readonly parsed: ParseResult;
  readonly challenges: Challenges;
  readonly challengeRejections: readonly Rejection[];
  /** The vault provider's offer: the same object as last time while nothing under `certs/` changed. */
  readonly vault: CertOffer;
  /** KONTENA_LB_PEERS=etcd: the registered replicas and the registrations left out (the same object while `peers/` is unchanged). */
  readonly peers: PeerRead | undefined;
  /** Each domain's ACME state (`acme/state/<domain>`), for the certificate warnings. */
  readonly acmeStates: readonly AcmeDomainState[];
  /** The CA bundles under `client-cas/`, `client-crls/`, `backend-cas/`: the same object while none changed. */
  readonly cas: CaStore | undefined;
}

export interface PeerRead {
  readonly set: PeerSet;
  readonly rejected: readonly Rejection[];
}

/** What read() keeps between snapshots (SnapshotInputs but the merged CA store). */
type KeptInputs = Omit<SnapshotInputs, 'cas'> & { readonly etcdCas: CaStore | undefined };

export interface ControllerInputsOptions {
  readonly parseOptions: ParseOptions;
  /** `ACME_CHALLENGE_<token>` variables (fixed for the life of the process). */
  readonly envChallenges?: Readonly<Record<string, string | undefined>>;
  /** Picks (and decrypts) the vault's certificates out of the keys under `certs/`. */
  readonly vaultCerts?: (entries: Entries) => VaultInput;
  /** Reads (and checks) the CA bundles out of the keys under their directories (tls/ca-bundles.ts caStoreFromEntries). */
  readonly caBundles?: (entries: Entries) => CaStore;
  /** This replica's own peer, with KONTENA_LB_PEERS=etcd: the others are read from `peers/`. */
  readonly localPeer?: Peer;
}

const VAULT_DIR = KEY_PATHS.certs;
const NO_VAULT: CertOffer = Object.freeze({ kind: 'vault', certs: [], rejected: [] });

/**
 * What the controller needs from each snapshot: the parsed routes, the ACME challenge tokens
 * and the vault provider's certificates (the vault is read from the same snapshot as the routes). Each is read again only when a key it depends on changed since
 * the previous snapshot (Snapshot.changedSince), and then only from its own groups.
 */
export class ControllerInputs {
  private readonly parser: SnapshotParser;
  private last: { readonly snapshot: Snapshot; readonly inputs: KeptInputs } | undefined;
  private readonly caStores = new CaStoreMerge();

  constructor(private readonly options: ControllerInputsOptions) {
    this.parser = new SnapshotParser(options.parseOptions);
  }

  /** `dirCas`: the certificate directory's CA bundles (sources/ca-files.ts), after those of etcd. */
  read(snapshot: Snapshot, dirCas?: CaStore): SnapshotInputs {
    const last = this.last;
    const changed = last && snapshot.changedSince(last.snapshot);
    // Whether a key under `dir` may have changed: its keys are one group (`acme/challenges`, `certs`).
    const stale = (dir: string) => !last || !changed || changed.has(groupOf(`${dir}x`));
    const parsed = this.parser.parse(snapshot);
    let { challenges, challengeRejections, vault, etcdCas, peers, acmeStates } = last?.inputs ?? {};
    if (stale(CHALLENGE_PREFIX) || challenges === undefined || challengeRejections === undefined) {
      const read = parseChallenges(snapshot.under(CHALLENGE_PREFIX), this.options.envChallenges);
      challenges = read.challenges;
      challengeRejections = read.rejected;
    }
    if (stale(VAULT_DIR) || vault === undefined) {
      const read = this.options.vaultCerts?.(snapshot.under(VAULT_DIR));
      vault = read ? { kind: 'vault', certs: read.certs, rejected: read.rejected } : NO_VAULT;
    }
    const caDirs = Object.values(CA_DIRS);
    if (this.options.caBundles && (caDirs.some(stale) || etcdCas === undefined)) {
      etcdCas = this.options.caBundles(new Map(caDirs.flatMap((dir) => [...snapshot.under(dir)])));
    }
    const local = this.options.localPeer;
    if (local && (stale(KEY_PATHS.peers) || peers === undefined)) {
      const read = peerSetOf(snapshot.under(KEY_PATHS.peers), local);
      peers = { set: read.peers, rejected: read.rejected };
    }
    if (stale(KEY_PATHS.acmeState) || acmeStates === undefined) {
      const dir = KEY_PATHS.acmeState;
      acmeStates = [...snapshot.under(dir)].flatMap(([key, text]) => parseState(text, key.slice(dir.length)) ?? []);
    }
    this.last = { snapshot, inputs: { parsed, challenges, challengeRejections, vault, etcdCas, peers, acmeStates } };
    return { parsed, challenges, challengeRejections, vault, cas: this.caStores.merge(etcdCas, dirCas), peers, acmeStates };
  }
}
