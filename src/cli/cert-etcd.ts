import type { EtcdConnection } from '../etcd/connection.js';
import type { KvStore } from '../etcd/store.js';
import { flagProperty, SETTINGS } from '../config.js';
import { hasFlag } from '../settings/flags.js';
import { withStore } from './etcd-access.js';

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
  /** KONTENA_LB_CERT_WARN_DAYS and KONTENA_LB_DEFAULT_CERT, for the certificate warnings `cert list` shows. */
  readonly certWarnDays?: number;
  readonly defaultCert?: string;
  /** With ACME on: KONTENA_LB_ACME_DOMAINS and whether a DNS publisher is set, for the domains ACME is asked for. */
  readonly acme?: { readonly envDomains: readonly string[]; readonly dns01: boolean };
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

/** The `edgelb run` settings that say which etcd and which prefix: every ETCD_* setting and the load balancer's name. */
export const CONNECTION_SETTINGS = SETTINGS.filter(hasFlag).filter(
  (s) => s.env.startsWith('ETCD_') || s.env === 'KONTENA_STACK_NAME' || s.env === 'KONTENA_SERVICE_NAME',
);

/** The settings from the environment with only the connection flags applied; a bad one becomes one line via deps.fail. */
export function loadSettings(flags: CertCliFlags, deps: CertCommandDeps): CertCliSettings {
  const etcdFlags: CertCliFlags = Object.fromEntries(CONNECTION_SETTINGS.map((s) => [flagProperty(s.flag), flags[flagProperty(s.flag)]]));
  try {
    return deps.loadSettings(etcdFlags);
  } catch (error) {
    deps.fail((error as Error).message);
  }
}

/** Runs `work` on the load balancer's keyspace; any failure to reach etcd becomes one line via deps.fail. */
export function withEtcd<T>(settings: CertCliSettings, deps: CertCommandDeps, forWriting: boolean, work: (store: KvStore) => Promise<T>): Promise<T> {
  return withStore(
    settings.etcd,
    {
      prefix: settings.etcdPath,
      forWriting,
      timeoutMs: deps.etcdTimeoutMs ?? 10_000,
      fail: deps.fail,
      failure: 'cannot reach etcd',
    },
    work,
  );
}

/** Every key under `dir` (ending in '/') as full key → value, as one read. */
export async function listUnder(store: KvStore, dir: string): Promise<Record<string, string>> {
  const listed = await store.list(dir.replace(/\/$/, ''));
  return Object.fromEntries([...listed.entries].map(([key, value]) => [`${dir}${key}`, value]));
}
