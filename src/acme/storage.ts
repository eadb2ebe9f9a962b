import acme from 'acme-client';
import type { KvFence, KvOp, KvStore } from '../etcd/store.js';
import type { Logger } from '../log.js';
import { groupOf, type Snapshot } from '../model/snapshot.js';
import type { Entries } from '../model/types.js';
import { BundleError, parseBundle } from '../tls/bundle.js';
import { decryptBundle, encryptBundle, VaultError } from '../tls/vault.js';
import { AcmeError, Interrupted } from './interruption.js';
import { ACCOUNT_KEY, ACK_DIR, CERT_PREFIX, CHALLENGE_DIR, domainOfCertName, STATE_DIR } from './keys.js';
import type { HeldCert } from './schedule.js';
import { parseState, serializeState, type AcmeDomainState } from './state.js';

/** One operation of a fenced write; `relative` and `value` (undefined for a delete) for the in-memory state. */
export interface WriteOp {
  readonly op: KvOp;
  readonly relative: string;
  readonly value: string | undefined;
}

export interface AcmeStorageOptions {
  readonly store: KvStore;
  /** The load balancer's etcd path, without a trailing slash. */
  readonly prefix: string;
  readonly vaultKey?: string;
  readonly logger: Logger;
  readonly now: () => Date;
  /** What the leader's writes are conditional on (the election's fencing token); undefined: not leading. */
  readonly fence: () => KvFence | undefined;
}

/**
 * ACME's keys in etcd: the per-domain states and the certificates held (as the newest snapshot
 * or a fresh read shows them), the account key, and the leader's writes, every one fenced on
 * still leading. A refused write ends the attempt as Interrupted: another replica leads.
 */
export class AcmeStorage {
  readonly states = new Map<string, AcmeDomainState>();
  readonly certs = new Map<string, HeldCert>();
  private readonly certCache = new Map<string, { value: string; held: HeldCert | string }>();
  private readonly reportedBadCerts = new Set<string>();
  /** The last snapshot the states and certificates were read from. */
  private storedFrom: Snapshot | undefined;
  /** Snapshots older than our last write would undo it in memory; they are skipped. */
  private lastWriteRevision = 0n;

  constructor(private readonly options: AcmeStorageOptions) {}

  /** Reads the states and certificates of `snapshot`, only when some of them changed. */
  offer(snapshot: Snapshot): void {
    if (BigInt(snapshot.revision) < this.lastWriteRevision) return;
    const stored = snapshot.changedSince(this.storedFrom);
    if (stored && !stored.has(groupOf(STATE_DIR)) && !stored.has(groupOf(CERT_PREFIX))) return;
    this.storedFrom = snapshot;
    this.readStored(new Map([...snapshot.under(STATE_DIR), ...snapshot.under(CERT_PREFIX)]));
  }

  /** A new leader reads the stored state from etcd itself rather than trusting a snapshot that may lag. */
  async refresh(): Promise<void> {
    const certDir = CERT_PREFIX.slice(0, CERT_PREFIX.lastIndexOf('/') + 1);
    const [states, certs] = await Promise.all([
      this.options.store.list(this.key(STATE_DIR.replace(/\/$/, ''))),
      this.options.store.list(this.key(certDir.replace(/\/$/, ''))),
    ]);
    const entries = new Map<string, string>();
    for (const [key, value] of states.entries) entries.set(`${STATE_DIR}${key}`, value);
    for (const [key, value] of certs.entries) if (`${certDir}${key}`.startsWith(CERT_PREFIX)) entries.set(`${certDir}${key}`, value);
    const revision = BigInt(states.revision);
    if (revision > this.lastWriteRevision) this.lastWriteRevision = revision;
    this.readStored(entries);
  }

  /** The account key from etcd, created (by the leader, fenced) when there is none. */
  async loadAccount(log: Logger): Promise<{ pem: string; url?: string }> {
    const { store, vaultKey } = this.options;
    const key = this.key(ACCOUNT_KEY);
    const read = async () => {
      const stored = await store.get(key);
      if (stored === undefined) return undefined;
      try {
        return decryptBundle(stored, vaultKey);
      } catch (error) {
        if (error instanceof VaultError)
          throw new AcmeError(
            'account-key-unusable',
            `the ACME account key at ${ACCOUNT_KEY} cannot be used: it ${error.message} (delete it to have a new account created)`,
            { cause: error },
          );
        throw error;
      }
    };
    const existing = await read();
    if (existing !== undefined) return { pem: existing };
    const pem = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString('utf8');
    const value = vaultKey ? encryptBundle(pem, vaultKey) : pem;
    const result = await store.fencedWrite(this.fenceOrInterrupt(), [{ type: 'create', key, value }]);
    if (result.succeeded) {
      log.info({ key: ACCOUNT_KEY, encrypted: vaultKey !== undefined }, 'ACME account key created');
      return { pem };
    }
    const raced = await read();
    if (raced === undefined) throw new Interrupted('no longer the leader');
    return { pem: raced };
  }

  put(relative: string, value: string): WriteOp {
    return { op: { type: 'put', key: this.key(relative), value }, relative, value };
  }

  statePut(state: AcmeDomainState): WriteOp {
    return this.put(`${STATE_DIR}${state.domain}`, serializeState(state));
  }

  /** A token, and the replicas' confirmations for it. */
  tokenDeletes(tokens: Iterable<string>): WriteOp[] {
    return [...tokens].flatMap(
      (token) =>
        [
          { op: { type: 'delete', key: this.key(`${CHALLENGE_DIR}${token}`) }, relative: `${CHALLENGE_DIR}${token}`, value: undefined },
          { op: { type: 'delete-prefix', key: this.key(`${ACK_DIR}${token}/`) }, relative: `${ACK_DIR}${token}/`, value: undefined },
        ] satisfies WriteOp[],
    );
  }

  /** Writes `ops` in one fenced batch and takes the states written into memory at once. */
  async write(log: Logger, ops: readonly WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    const result = await this.options.store.fencedWrite(
      this.fenceOrInterrupt(),
      ops.map((o) => o.op),
    );
    if (!result.succeeded) throw new Interrupted('no longer the leader (fenced write refused)');
    const revision = BigInt(result.revision);
    if (revision > this.lastWriteRevision) this.lastWriteRevision = revision;
    for (const { relative, value } of ops) {
      if (!relative.startsWith(STATE_DIR) || value === undefined) continue;
      const domain = relative.slice(STATE_DIR.length);
      const state = parseState(value, domain);
      if (state) this.states.set(domain, state);
    }
    log.trace({ keys: ops.map((o) => o.relative), revision: String(revision) }, 'ACME state written');
  }

  private fenceOrInterrupt(): KvFence {
    const fence = this.options.fence();
    if (!fence) throw new Interrupted('no longer the leader');
    return fence;
  }

  private key(relative: string): string {
    return `${this.options.prefix}/${relative}`;
  }

  /** States and certificates from the entries under STATE_DIR and CERT_PREFIX (of a snapshot or a fresh read). */
  private readStored(entries: Entries): void {
    this.states.clear();
    this.certs.clear();
    for (const key of this.certCache.keys()) if (!entries.has(key)) this.certCache.delete(key);
    for (const [key, value] of entries) {
      if (key.startsWith(STATE_DIR)) {
        const domain = key.slice(STATE_DIR.length);
        const state = parseState(value, domain);
        if (state) this.states.set(domain, state);
      } else if (key.startsWith(CERT_PREFIX)) {
        const domain = domainOfCertName(key.slice(CERT_PREFIX.length));
        const held = this.heldCert(key, domain, value);
        if (held) this.certs.set(domain, held);
      }
    }
  }

  /** The certificate stored at `key`, parsed once per value; one warning per unusable value. */
  private heldCert(key: string, domain: string, value: string): HeldCert | undefined {
    let cached = this.certCache.get(key);
    if (!cached || cached.value !== value) {
      let held: HeldCert | string;
      try {
        const bundle = parseBundle(decryptBundle(value, this.options.vaultKey), { kind: 'acme', ref: key }, this.options.now());
        held = bundle.names.includes(domain)
          ? { notAfter: bundle.notAfter, fingerprint: bundle.fingerprint }
          : `it does not cover ${domain} (it names ${bundle.names.join(', ')})`;
      } catch (error) {
        if (!(error instanceof BundleError) && !(error instanceof VaultError)) throw error;
        held = error.message;
      }
      cached = { value, held };
      this.certCache.set(key, cached);
    }
    if (typeof cached.held === 'string') {
      if (!this.reportedBadCerts.has(`${key}\u0000${cached.held}`)) {
        this.reportedBadCerts.add(`${key}\u0000${cached.held}`);
        this.options.logger.warn({ domain, key, reason: cached.held }, 'ACME: the stored certificate cannot be used; a new one will be ordered');
      }
      return undefined;
    }
    return cached.held;
  }
}
