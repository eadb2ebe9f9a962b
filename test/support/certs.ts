import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

/**
 * Test certificates, made with the openssl CLI (OpenSSL 3.0): EC P-256 keys by default (a few
 * milliseconds each), RSA 2048 when asked. Everything is written under one temp dir per process;
 * call removeCertFiles() in afterAll (it also runs at exit).
 *
 * Dates: OpenSSL 3.0's `req`/`x509` have no -not_before/-not_after, so a certificate with explicit
 * dates (expired, not yet valid) is issued with `openssl ca -startdate/-enddate` and a throwaway
 * CA database; everything else uses `openssl req -x509 [-CA ...] -days N` in one process.
 */

export type KeyType = 'rsa' | 'ec';

/** A certificate that can issue others (a root CA or an intermediate). */
export interface CertAuthority {
  readonly name: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The chain a leaf issued by this authority carries: this authority and the ones above it, root excluded. */
  readonly chainPem: string;
  /** True for a self-signed root. */
  readonly root: boolean;
}

export interface LeafCert {
  readonly names: readonly string[];
  readonly certPem: string;
  readonly keyPem: string;
  /** Intermediates between the leaf and the root ('' for a self-signed leaf or one issued by a root). */
  readonly chainPem: string;
  /** cert + chain + key: what SSL_CERTS, the vault and the certs dir hold. */
  readonly bundlePem: string;
}

export interface LeafOptions {
  readonly names: readonly string[];
  /** Issuer; self-signed when absent. */
  readonly issuer?: CertAuthority;
  readonly days?: number;
  /** Valid 2020-01-01 to 2020-01-02 only. */
  readonly expired?: boolean;
  /** Explicit validity (issued with `openssl ca`); overrides days and expired. */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly keyType?: KeyType;
  /** Subject CN; names[0] by default. */
  readonly commonName?: string;
  /** Leave out subjectAltName, so only the CN names the host. */
  readonly noSubjectAltName?: boolean;
  /** IP subjectAltNames, after the DNS names (e.g. 127.0.0.1 for a test server's listener). */
  readonly ipAddresses?: readonly string[];
}

let baseDir: string | undefined;
let counter = 0;

function workDir(label: string): string {
  if (baseDir === undefined) {
    baseDir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-certs-'));
    process.once('exit', removeCertFiles);
  }
  const dir = path.join(baseDir, `${++counter}-${label.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 40)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function removeCertFiles(): void {
  if (baseDir !== undefined) rmSync(baseDir, { recursive: true, force: true });
  baseDir = undefined;
}

/** A minimal config, so the system openssl.cnf adds no extensions of its own (e.g. CA:TRUE on leaves). */
const REQ_CONFIG = '[req]\ndistinguished_name = dn\n[dn]\n';

function reqConfig(dir: string): string {
  const file = path.join(dir, 'req.cnf');
  writeFileSync(file, REQ_CONFIG);
  return file;
}

function newKeyArgs(keyType: KeyType): string[] {
  return keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
}

function withNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const result = await execa('openssl', args, { cwd, reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) {
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed (${result.exitCode}): ${result.stderr}`);
  }
}

/** A self-signed root CA (EC P-256, 10 years). */
export function makeCa(name = 'edgelb test CA'): Promise<CertAuthority> {
  return makeAuthority(name, undefined);
}

/** An intermediate CA issued by `issuer`. */
export function makeIntermediate(issuer: CertAuthority, name = `${issuer.name} intermediate`): Promise<CertAuthority> {
  return makeAuthority(name, issuer);
}

/** A CA certificate (EC P-256, 10 years): self-signed without an issuer, else an intermediate of it. */
async function makeAuthority(name: string, issuer: CertAuthority | undefined): Promise<CertAuthority> {
  const dir = workDir(`${issuer ? 'int' : 'ca'}-${name}`);
  const signing = issuer ? ['-CA', issuer.certFile, '-CAkey', issuer.keyFile] : [];
  const constraints = issuer ? 'basicConstraints=critical,CA:TRUE,pathlen:0' : 'basicConstraints=critical,CA:TRUE';
  await openssl(
    [
      'req',
      '-x509',
      '-config',
      reqConfig(dir),
      ...newKeyArgs('ec'),
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-subj',
      `/CN=${name}`,
      '-days',
      '3650',
      ...signing,
      '-addext',
      constraints,
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return authority(dir, name, issuer?.chainPem ?? '', issuer === undefined);
}

function authority(dir: string, name: string, issuerChain: string, root: boolean): CertAuthority {
  const certFile = path.join(dir, 'ca.crt');
  const keyFile = path.join(dir, 'ca.key');
  const certPem = withNewline(readFileSync(certFile, 'utf8'));
  return {
    name,
    certPem,
    keyPem: withNewline(readFileSync(keyFile, 'utf8')),
    certFile,
    keyFile,
    chainPem: root ? '' : certPem + issuerChain,
    root,
  };
}

/** A leaf for `names` (DNS subjectAltNames; CN = the first), self-signed unless an issuer is given. */
export async function makeLeaf(options: LeafOptions): Promise<LeafCert> {
  const names = options.names;
  if (names.length === 0 && options.commonName === undefined) throw new Error('makeLeaf: give at least one name');
  const dir = workDir(`leaf-${names[0] ?? options.commonName}`);
  const cn = options.commonName ?? names[0]!;
  const keyType = options.keyType ?? 'ec';
  const extensions = ['-addext', 'basicConstraints=critical,CA:FALSE'];
  const altNames = [...names.map((n) => `DNS:${n}`), ...(options.ipAddresses ?? []).map((ip) => `IP:${ip}`)];
  if (!options.noSubjectAltName && altNames.length > 0) {
    extensions.push('-addext', `subjectAltName=${altNames.join(',')}`);
  }
  const config = reqConfig(dir);

  let notBefore = options.notBefore;
  let notAfter = options.notAfter;
  if (options.expired && notBefore === undefined && notAfter === undefined) {
    notBefore = new Date('2020-01-01T00:00:00Z');
    notAfter = new Date('2020-01-02T00:00:00Z');
  }

  if (notBefore !== undefined || notAfter !== undefined) {
    const start = notBefore ?? new Date();
    const end = notAfter ?? new Date(start.getTime() + (options.days ?? 30) * 86_400_000);
    await openssl(
      ['req', '-new', '-config', config, ...newKeyArgs(keyType), '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${cn}`, ...extensions],
      dir,
    );
    writeFileSync(path.join(dir, 'index.txt'), '');
    writeFileSync(path.join(dir, 'serial'), `${randomSerial()}\n`);
    writeFileSync(
      path.join(dir, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = test',
        '[test]',
        'database = index.txt',
        'new_certs_dir = .',
        'serial = serial',
        'default_md = sha256',
        'policy = any',
        'copy_extensions = copy',
        'unique_subject = no',
        '[any]',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
    const signer = options.issuer ? ['-cert', options.issuer.certFile, '-keyfile', options.issuer.keyFile] : ['-selfsign', '-keyfile', 'leaf.key'];
    await openssl(
      [
        'ca',
        '-batch',
        '-notext',
        '-config',
        'ca.cnf',
        ...signer,
        '-in',
        'leaf.csr',
        '-out',
        'leaf.crt',
        '-startdate',
        asn1Time(start),
        '-enddate',
        asn1Time(end),
      ],
      dir,
    );
  } else {
    const signer = options.issuer ? ['-CA', options.issuer.certFile, '-CAkey', options.issuer.keyFile] : [];
    await openssl(
      [
        'req',
        '-x509',
        '-config',
        config,
        ...newKeyArgs(keyType),
        '-nodes',
        '-keyout',
        'leaf.key',
        '-out',
        'leaf.crt',
        '-subj',
        `/CN=${cn}`,
        '-days',
        String(options.days ?? 90),
        ...signer,
        ...extensions,
      ],
      dir,
    );
  }
  const certPem = withNewline(readFileSync(path.join(dir, 'leaf.crt'), 'utf8'));
  const keyPem = withNewline(readFileSync(path.join(dir, 'leaf.key'), 'utf8'));
  const chainPem = options.issuer?.chainPem ?? '';
  return { names, certPem, keyPem, chainPem, bundlePem: certPem + chainPem + keyPem };
}

/**
 * `n` leaves issued by `issuer` (EC keys, `days` valid), named `<prefix><i>.<domain>`, for
 * benchmarks. One openssl process per leaf, run from a few shell loops in parallel (spawning
 * each from Node costs more than openssl itself): 1,000 take well under 15 s on 2 cores.
 */
export async function makeManyLeaves(
  n: number,
  issuer: CertAuthority,
  options: { prefix?: string; domain?: string; concurrency?: number; days?: number } = {},
): Promise<LeafCert[]> {
  const prefix = options.prefix ?? 'svc-';
  const domain = options.domain ?? 'bench.test';
  const concurrency = Math.max(1, Math.min(n, options.concurrency ?? os.availableParallelism()));
  const dir = workDir(`many-${prefix}${domain}`);
  const config = reqConfig(dir);
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}.${domain}`);
  const command = (i: number) =>
    [
      'openssl',
      'req',
      '-x509',
      '-config',
      config,
      ...newKeyArgs('ec'),
      '-nodes',
      '-keyout',
      `${i}.key`,
      '-out',
      `${i}.crt`,
      '-subj',
      `/CN=${names[i]}`,
      '-days',
      String(options.days ?? 90),
      '-CA',
      issuer.certFile,
      '-CAkey',
      issuer.keyFile,
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-addext',
      `subjectAltName=DNS:${names[i]}`,
    ]
      .map(shellQuote)
      .join(' ');
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      const script = ['set -e'];
      for (let i = worker; i < n; i += concurrency) script.push(command(i));
      const result = await execa('sh', ['-s'], { cwd: dir, reject: false, input: `${script.join('\n')}\n` });
      if (result.exitCode !== 0)
        throw new Error(`makeManyLeaves: openssl failed (${result.exitCode}): ${result.stderr?.replace(/^-+\n/gm, '') || result.message}`);
    }),
  );
  return names.map((name, i) => {
    const certPem = withNewline(readFileSync(path.join(dir, `${i}.crt`), 'utf8'));
    const keyPem = withNewline(readFileSync(path.join(dir, `${i}.key`), 'utf8'));
    return { names: [name], certPem, keyPem, chainPem: issuer.chainPem, bundlePem: certPem + issuer.chainPem + keyPem };
  });
}

/**
 * A CRL issued by `issuer` revoking `revoked` (valid `days`, 30 by default), as PEM: `openssl ca
 * -revoke` each into a throwaway database, then `-gencrl`. For client_crl (mTLS tests).
 */
export async function makeCrl(issuer: CertAuthority, revoked: readonly LeafCert[], days = 30): Promise<string> {
  const dir = workDir(`crl-${issuer.name}`);
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'crlnumber'), '1000\n');
  writeFileSync(
    path.join(dir, 'ca.cnf'),
    ['[ca]', 'default_ca = test', '[test]', 'database = index.txt', 'crlnumber = crlnumber', 'default_md = sha256', `default_crl_days = ${days}`, ''].join(
      '\n',
    ),
  );
  const signer = ['-cert', issuer.certFile, '-keyfile', issuer.keyFile];
  for (const [i, leaf] of revoked.entries()) {
    writeFileSync(path.join(dir, `revoked-${i}.crt`), leaf.certPem);
    await openssl(['ca', '-config', 'ca.cnf', ...signer, '-revoke', `revoked-${i}.crt`], dir);
  }
  await openssl(['ca', '-config', 'ca.cnf', ...signer, '-gencrl', '-out', 'crl.pem'], dir);
  return withNewline(readFileSync(path.join(dir, 'crl.pem'), 'utf8'));
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_.,:=/@+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** ASN.1 GeneralizedTime as `openssl ca -startdate/-enddate` takes it: YYYYMMDDHHMMSSZ. */
function asn1Time(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

function randomSerial(): string {
  // An even number of hex digits, leading nibble non-zero so it stays positive and that long.
  return `1${Array.from({ length: 15 }, () => Math.floor(Math.random() * 16).toString(16)).join('')}`;
}
