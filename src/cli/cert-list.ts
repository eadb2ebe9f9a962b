import path from 'node:path';
import type { KvStore } from '../etcd/store.js';
import { certsFromFiles, readCertsDir } from '../sources/certs-dir.js';
import { readEnvCerts } from '../sources/env-certs.js';
import type { CertSource, RawCert } from '../tls/bundle.js';
import { certificateWarnings } from '../tls/cert-warnings.js';
import { selectCertificates } from '../tls/store.js';
import { KEY_PATHS } from '../model/keyspace.js';
import { parseEntries } from '../model/parse.js';
import { DEFAULT_CERT_WARN_DAYS } from '../settings/certificates.js';
import { acmeDomains } from '../acme/domains.js';
import { readLeader } from '../acme/election.js';
import { certKeyOf, domainOfCertName, STATE_DIR } from '../acme/keys.js';
import { parseState, type AcmeDomainState } from '../acme/state.js';
import { decryptBundle, isEncrypted, isValidVaultName, VaultError } from '../tls/vault.js';
import { listUnder, loadSettings, withEtcd, type CertCliFlags, type CertCliSettings, type CertCommandDeps } from './cert-etcd.js';
import { invalidRow, pendingAcmeRow, rowOf, type CertListRow } from './cert-rows.js';
import { acmeTable, certTable, warningTable } from './cert-tables.js';

/** `edgelb cert list`: the vault, the ACME domains, and the certificates of the environment and the certs dir. */
export async function listCerts(flags: CertCliFlags & { json?: boolean }, deps: CertCommandDeps): Promise<void> {
  const now = deps.now?.() ?? new Date();
  const settings = loadSettings(flags, deps);
  const prefix = `${settings.etcdPath}/certs/`;
  const statePrefix = `${settings.etcdPath}/${STATE_DIR}`;
  const servicesPrefix = `${settings.etcdPath}/${KEY_PATHS.services}`;
  const [stored, storedStates, leader, services] = await withEtcd(settings, deps, false, (store: KvStore) =>
    Promise.all([listUnder(store, prefix), listUnder(store, statePrefix), readLeader(store, settings.etcdPath), listUnder(store, servicesPrefix)]),
  );
  const acmeStates = new Map<string, AcmeDomainState>();
  for (const [key, value] of Object.entries(storedStates)) {
    const domain = key.slice(statePrefix.length);
    const state = parseState(value, domain);
    if (state) acmeStates.set(domain, state);
  }

  const raws: RawCert[] = [];
  const rows = vaultRows(stored, prefix, settings.vaultKey, now, raws).map((row) => {
    const state = row.name.startsWith('acme-') ? acmeStates.get(domainOfCertName(row.name.slice('acme-'.length))) : undefined;
    return state ? { ...row, acme: state } : row;
  });
  for (const [domain, state] of [...acmeStates].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!Object.hasOwn(stored, `${settings.etcdPath}/${certKeyOf(domain)}`)) rows.push(pendingAcmeRow(domain, state, STATE_DIR));
  }
  rows.push(...(await localRows(settings, deps, now, raws)));
  const warnings = warningsOf(settings, raws, services, [...acmeStates.values()], now);

  if (flags.json) {
    deps.out(JSON.stringify(rows, null, 2));
    return;
  }
  if (rows.length === 0) {
    deps.out(`no certificates in ${prefix}`);
    return;
  }
  for (const line of certTable(rows)) deps.out(line);
  if (warnings.length > 0) {
    deps.out('');
    for (const line of warningTable(warnings)) deps.out(line);
  }
  if (acmeStates.size > 0) {
    deps.out('');
    for (const line of acmeTable([...acmeStates.values()], now)) deps.out(line);
    deps.out(`ACME leader: ${leader ?? 'none (no replica is ordering certificates)'}`);
  }
}

/** What a running edgelb would warn about for these certificates, the services' hosts and the ACME states (tls/cert-warnings.ts). */
function warningsOf(settings: CertCliSettings, raws: readonly RawCert[], services: Record<string, string>, acme: readonly AcmeDomainState[], now: Date) {
  const entries = new Map(Object.entries(services).map(([key, value]) => [key.slice(settings.etcdPath.length + 1), value]));
  const { state } = parseEntries(entries, { reservedPorts: [] });
  const hosts = state.http.flatMap((s) => s.virtualHosts);
  const certs = selectCertificates(raws, { defaultCert: settings.defaultCert, now });
  // Without the ACME settings here, every state counts (as edgelb does before its ACME starts).
  const acmeWanted = settings.acme && acmeDomains(state, settings.acme.envDomains, settings.acme.dns01).domains;
  return certificateWarnings({ certs, hosts, acme, acmeDomains: acmeWanted, now, warnDays: settings.certWarnDays ?? DEFAULT_CERT_WARN_DAYS });
}

/** One row per vault entry, in key order; one that cannot be read or decrypted says why. */
function vaultRows(stored: Record<string, string>, prefix: string, vaultKey: string | undefined, now: Date, raws: RawCert[]): CertListRow[] {
  const rows: CertListRow[] = [];
  for (const fullKey of Object.keys(stored).sort()) {
    const name = fullKey.slice(prefix.length);
    const value = stored[fullKey]!;
    const source: CertSource = { kind: 'vault', ref: `certs/${name}` };
    if (!isValidVaultName(name)) {
      rows.push(invalidRow(name, source, isEncrypted(value), 'the name is not valid (use letters, digits, _ . -)'));
      continue;
    }
    let pem: string;
    try {
      pem = decryptBundle(value, vaultKey);
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
      rows.push(invalidRow(name, source, isEncrypted(value), error.message));
      continue;
    }
    rows.push(rowOf(name, source, pem, isEncrypted(value), now));
    raws.push({ source, pem });
  }
  return rows;
}

/** The certificates of SSL_CERTS / SSL_CERT_<name> and of the certs dir, when the settings name them. */
async function localRows(settings: CertCliSettings, deps: CertCommandDeps, now: Date, raws: RawCert[]): Promise<CertListRow[]> {
  const rows: CertListRow[] = [];
  if (settings.env) {
    for (const raw of readEnvCerts(settings.env)) {
      rows.push(rowOf(raw.source.ref, raw.source, raw.pem, false, now));
      raws.push(raw);
    }
  }
  if (settings.certsDir) {
    let files: Map<string, string>;
    try {
      files = await readCertsDir(settings.certsDir);
    } catch (error) {
      deps.fail(`cannot read the certificate directory ${settings.certsDir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    for (const raw of certsFromFiles(files)) {
      rows.push(rowOf(path.basename(raw.source.ref), raw.source, raw.pem, false, now));
      raws.push(raw);
    }
  }
  return rows;
}
