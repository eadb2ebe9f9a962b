import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { EtcdConnection } from '../etcd/connection.js';
import type { KvStore } from '../etcd/store.js';
import { certsFromFiles, readCertsDir } from '../sources/certs-dir.js';
import { readEnvCerts } from '../sources/env-certs.js';
import { BundleError, isExpired, parseBundle, type CertBundle, type CertSource } from '../tls/bundle.js';
import { readLeader } from '../acme/election.js';
import { STATE_DIR } from '../acme/keys.js';
import { parseState, type AcmeDomainState } from '../acme/state.js';
import { decryptBundle, encryptBundle, isEncrypted, isValidVaultName, VaultError } from '../tls/vault.js';
import { flagProperty, SETTINGS } from '../config.js';
import { withStore } from './etcd-access.js';
import { layoutTable } from './table.js';

/** The flags `cert import` and `cert list` take to find etcd (camelCase, as commander names them): see CONNECTION_SETTINGS. */
export type CertCliFlags = Readonly<Record<string, unknown>>;

export interface CertCliSettings {
  readonly etcd: EtcdConnection;
  readonly etcdPath: string;
  readonly vaultKey: string | undefined;
  /** When given, `cert list` also shows the certificates SSL_CERTS / SSL_CERT_<name> hold. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** When given (KONTENA_LB_CERTS_DIR), `cert list` also shows the bundles in it. */
  readonly certsDir?: string;
}

export interface CertCommandDeps {
  /** Settings from the environment, with the command's flags applied; may throw (the message is shown). */
  readonly loadSettings: (flags: CertCliFlags) => CertCliSettings;
  readonly out: (line: string) => void;
  readonly fail: (message: string) => never;
  /** For tests. */
  readonly now?: () => Date;
  readonly etcdTimeoutMs?: number;
}

/** One row of `edgelb cert list`; never holds key material. */
export interface CertListRow {
  readonly name: string;
  readonly source: CertSource;
  readonly subject: string | null;
  readonly names: readonly string[];
  readonly notAfter: string | null;
  readonly daysLeft: number | null;
  /** 'valid', 'expired', or 'invalid:<reason>'; for an ACME domain without a certificate yet, 'pending' or 'failing:<reason>'. */
  readonly status: string;
  readonly encrypted: boolean;
  readonly fingerprint: string | null;
  /** For `certs/acme-<domain>` and ACME domains still waiting: the issuer's state (`acme/state/<domain>`). */
  readonly acme?: AcmeDomainState;
}

/** The `edgelb run` settings that say which etcd and which prefix: every ETCD_* setting and the load balancer's name. */
const CONNECTION_SETTINGS = SETTINGS.filter((s) => s.env.startsWith('ETCD_') || s.env === 'KONTENA_STACK_NAME' || s.env === 'KONTENA_SERVICE_NAME');

const VAULT_HELP = `
The vault is <etcd path>/certs/<name> in etcd. When KONTENA_LB_VAULT_KEY is set (in the
environment only, never as a flag), values are stored encrypted with it (AES-256-GCM), and the
load balancer, which needs the same key, decrypts them.`;

/** Adds `edgelb cert import` and `edgelb cert list`. */
export function registerCertCommands(program: Command, deps: CertCommandDeps): void {
  const cert = program
    .command('cert')
    .description('manage the TLS certificates in the etcd vault')
    .addHelpText('after', VAULT_HELP);

  const importCommand = cert
    .command('import <file>')
    .description('validate a PEM bundle (certificate, chain, private key) and store it in the vault')
    .option('--name <name>', 'vault name (letters, digits, _ . -); default: the first DNS name, * written as "wildcard"')
    .option('--allow-expired', 'store the bundle even though the certificate has expired');
  addEtcdFlags(importCommand);
  importCommand.addHelpText('after', `
The bundle is checked first (it parses, the key matches the certificate, the chain is in order)
and refused with the reason when it is not valid. An existing entry of the same name is replaced.
${VAULT_HELP}

Examples:
  edgelb cert import www.example.com.pem
  edgelb cert import star.pem --name wildcard.example.com`);
  importCommand.action(async (file: string, flags: CertCliFlags & { name?: string; allowExpired?: boolean }) => {
    await importCert(file, flags, deps);
  });

  const listCommand = cert
    .command('list')
    .description('show the certificates in the vault: subject, names, expiry, status')
    .option('--json', 'print JSON instead of a table');
  addEtcdFlags(listCommand);
  listCommand.addHelpText('after', `
STATUS is valid, expired, or invalid:<reason> (does not parse, key does not match, chain out of
order, cannot be decrypted, ...); an invalid entry is not served.

Certificates obtained over ACME are stored as certs/acme-<domain>. A second table shows each
ACME domain's state (<etcd path>/acme/state/<domain>): valid, pending (an order in progress) or
failing, the certificate's expiry, failures in a row, when the next attempt may happen and the
CA's last error; and which replica currently orders (the ACME leader). A domain still waiting
for its first certificate is listed with status pending or failing:<reason>.
${VAULT_HELP}`);
  listCommand.action(async (flags: CertCliFlags & { json?: boolean }) => {
    await listCerts(flags, deps);
  });
}

function addEtcdFlags(command: Command): void {
  for (const setting of CONNECTION_SETTINGS) command.option(`--${setting.flag} <value>`, `${setting.help} [env ${setting.env}]`);
}

async function importCert(
  file: string,
  flags: CertCliFlags & { name?: string; allowExpired?: boolean },
  deps: CertCommandDeps,
): Promise<void> {
  const now = deps.now?.() ?? new Date();
  if (flags.name !== undefined && !isValidVaultName(flags.name)) {
    deps.fail(`--name ${JSON.stringify(flags.name)} is not a valid vault name (use letters, digits, '_', '.', '-')`);
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    deps.fail(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let bundle: CertBundle;
  try {
    bundle = parseBundle(text, { kind: 'vault', ref: `certs/${flags.name ?? 'import'}` }, now);
  } catch (error) {
    if (error instanceof BundleError) deps.fail(`${file} is not a valid certificate bundle: ${error.message}`);
    throw error;
  }
  if (isExpired(bundle, now) && !flags.allowExpired) {
    deps.fail(`${file}: the certificate expired on ${bundle.notAfter.toISOString()} (pass --allow-expired to store it anyway)`);
  }
  const name = flags.name ?? defaultName(bundle);
  if (!isValidVaultName(name)) deps.fail(`cannot make a vault name from ${JSON.stringify(bundle.names[0])}; pass --name`);

  const settings = loadSettings(flags, deps);
  const key = `${settings.etcdPath}/certs/${name}`;
  const value = settings.vaultKey ? encryptBundle(bundle.pem, settings.vaultKey) : bundle.pem;
  const replaced = await withEtcd(settings, deps, true, async (store) => {
    const previous = await store.get(key);
    await store.put(key, value);
    return previous !== undefined;
  });
  deps.out(`${replaced ? 'replaced' : 'imported'} ${key}: ${bundle.names.join(', ')}, expires ${bundle.notAfter.toISOString()}, ` +
    (settings.vaultKey ? 'encrypted' : 'NOT encrypted (KONTENA_LB_VAULT_KEY is not set)'));
}

/** The first DNS name, `*` written as `wildcard`: *.example.com → wildcard.example.com. */
export function defaultName(bundle: Pick<CertBundle, 'names'>): string {
  return (bundle.names[0] ?? '').replace(/\*/g, 'wildcard');
}

async function listCerts(flags: CertCliFlags & { json?: boolean }, deps: CertCommandDeps): Promise<void> {
  const now = deps.now?.() ?? new Date();
  const settings = loadSettings(flags, deps);
  const prefix = `${settings.etcdPath}/certs/`;
  const statePrefix = `${settings.etcdPath}/${STATE_DIR}`;
  const [stored, storedStates, leader] = await withEtcd(settings, deps, false, (store) => Promise.all([
    listUnder(store, prefix),
    listUnder(store, statePrefix),
    readLeader(store, settings.etcdPath),
  ]));
  const acmeStates = new Map<string, AcmeDomainState>();
  for (const [key, value] of Object.entries(storedStates)) {
    const domain = key.slice(statePrefix.length);
    const state = parseState(value, domain);
    if (state) acmeStates.set(domain, state);
  }

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
      pem = decryptBundle(value, settings.vaultKey);
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
      rows.push(invalidRow(name, source, isEncrypted(value), error.message));
      continue;
    }
    rows.push(rowOf(name, source, pem, isEncrypted(value), now));
  }
  for (const [index, row] of rows.entries()) {
    const state = row.name.startsWith('acme-') ? acmeStates.get(row.name.slice('acme-'.length)) : undefined;
    if (state) rows[index] = { ...row, acme: state };
  }
  for (const [domain, state] of [...acmeStates].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (Object.hasOwn(stored, `${prefix}acme-${domain}`)) continue;
    rows.push({
      name: `acme-${domain}`,
      source: { kind: 'acme', ref: `${STATE_DIR}${domain}` },
      subject: null,
      names: [domain],
      notAfter: null,
      daysLeft: null,
      status: state.status === 'failing' ? `failing:${state.lastError?.message ?? 'unknown error'}` : 'pending',
      encrypted: false,
      fingerprint: null,
      acme: state,
    });
  }
  if (settings.env) {
    for (const raw of readEnvCerts(settings.env)) rows.push(rowOf(raw.source.ref, raw.source, raw.pem, false, now));
  }
  if (settings.certsDir) {
    let files: Map<string, string>;
    try {
      files = await readCertsDir(settings.certsDir);
    } catch (error) {
      deps.fail(`cannot read the certificate directory ${settings.certsDir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    for (const raw of certsFromFiles(files)) rows.push(rowOf(path.basename(raw.source.ref), raw.source, raw.pem, false, now));
  }

  if (flags.json) {
    deps.out(JSON.stringify(rows, null, 2));
    return;
  }
  if (rows.length === 0) {
    deps.out(`no certificates in ${prefix}`);
    return;
  }
  for (const line of table(rows)) deps.out(line);
  if (acmeStates.size > 0) {
    deps.out('');
    for (const line of acmeTable([...acmeStates.values()], now)) deps.out(line);
    deps.out(`ACME leader: ${leader ?? 'none (no replica is ordering certificates)'}`);
  }
}

function acmeTable(states: readonly AcmeDomainState[], now: Date): string[] {
  const time = (iso: string | undefined) => iso?.replace(/\.\d{3}Z$/, 'Z') ?? '-';
  const header = ['ACME DOMAIN', 'STATUS', 'VALID UNTIL', 'FAILURES', 'NEXT ATTEMPT', 'LAST ERROR'];
  const cells = [...states].sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0)).map((state) => [
    state.domain,
    state.status,
    time(state.validUntil),
    String(state.failures),
    state.nextAttempt && Date.parse(state.nextAttempt) > now.getTime() ? time(state.nextAttempt) : '-',
    state.lastError ? `${time(state.lastError.at)} ${state.lastError.message}` : '-',
  ]);
  return layoutTable(header, cells);
}

function rowOf(name: string, source: CertSource, pem: string, encrypted: boolean, now: Date): CertListRow {
  let bundle: CertBundle;
  try {
    bundle = parseBundle(pem, source, now);
  } catch (error) {
    if (!(error instanceof BundleError)) throw error;
    return invalidRow(name, source, encrypted, error.message);
  }
  return {
    name,
    source,
    subject: commonName(bundle.subject),
    names: bundle.names,
    notAfter: bundle.notAfter.toISOString(),
    daysLeft: Math.floor((bundle.notAfter.getTime() - now.getTime()) / 86_400_000),
    status: isExpired(bundle, now) ? 'expired' : 'valid',
    encrypted,
    fingerprint: bundle.fingerprint,
  };
}

function invalidRow(name: string, source: CertSource, encrypted: boolean, reason: string): CertListRow {
  return { name, source, subject: null, names: [], notAfter: null, daysLeft: null, status: `invalid:${reason}`, encrypted, fingerprint: null };
}

function commonName(subject: string): string {
  return /(?:^|, )CN=([^,]*)/.exec(subject)?.[1] ?? subject;
}

function table(rows: readonly CertListRow[]): string[] {
  const header = ['NAME', 'SOURCE', 'SUBJECT CN', 'ALT NAMES', 'NOT AFTER', 'DAYS LEFT', 'ENCRYPTED', 'STATUS'];
  const cells = rows.map((row) => [
    row.name,
    row.source.kind,
    row.subject ?? '-',
    row.names.length > 0 ? row.names.join(',') : '-',
    row.notAfter?.replace(/\.\d{3}Z$/, 'Z') ?? '-',
    row.daysLeft === null ? '-' : String(row.daysLeft),
    row.encrypted ? 'yes' : 'no',
    row.status,
  ]);
  return layoutTable(header, cells);
}


function loadSettings(flags: CertCliFlags, deps: CertCommandDeps): CertCliSettings {
  const etcdFlags: CertCliFlags = Object.fromEntries(CONNECTION_SETTINGS.map((s) => [flagProperty(s.flag), flags[flagProperty(s.flag)]]));
  try {
    return deps.loadSettings(etcdFlags);
  } catch (error) {
    deps.fail((error as Error).message);
  }
}

/** Runs `work` on the load balancer's keyspace; any failure to reach etcd becomes one line via deps.fail. */
function withEtcd<T>(settings: CertCliSettings, deps: CertCommandDeps, forWriting: boolean, work: (store: KvStore) => Promise<T>): Promise<T> {
  return withStore(settings.etcd, {
    prefix: settings.etcdPath, forWriting, timeoutMs: deps.etcdTimeoutMs ?? 10_000, fail: deps.fail, failure: 'cannot reach etcd',
  }, work);
}

/** Every key under `dir` (ending in '/') as full key → value, as one read. */
async function listUnder(store: KvStore, dir: string): Promise<Record<string, string>> {
  const listed = await store.list(dir.replace(/\/$/, ''));
  return Object.fromEntries([...listed.entries].map(([key, value]) => [`${dir}${key}`, value]));
}
