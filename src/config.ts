import { accessSync, constants, mkdirSync, readFileSync, statSync, chmodSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type { EtcdConnection } from './etcd/connection.js';
import { etcdConnection } from './etcd/connection-settings.js';
import { parseSettingLines, EntryError } from './model/values.js';
import { splitDomainList } from './tls/acme-domains.js';
import { LETS_ENCRYPT_PRODUCTION } from './tls/acme-state.js';
import { DEFAULT_ACCESS_LOG, parseAccessLog, type AccessLogFormat } from './settings/access-log.js';
import { ConfigError } from './settings/config-error.js';
import { parseLogLevel, type LogLevel } from './settings/log-level.js';
import { parseSyslogTarget, type SyslogTarget } from './settings/syslog-target.js';
import { defaultCiphersFor, DEFAULT_TLS_MIN_VERSION, parseTlsMinVersion, type TlsVersion } from './settings/tls.js';

export { ConfigError };

/** Everything edgelb needs to know, validated once and frozen; passed down, never read globally. */
export interface Config {
  /** How to reach etcd (endpoints, API, TLS, credentials): secrets inside, never logged whole. */
  readonly etcd: EtcdConnection;
  readonly etcdPath: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly statsPort: number;
  /** The admin HTTP server (/healthz, /status, /metrics). */
  readonly adminPort: number;
  readonly adminBind: string;
  readonly stateDir: string;
  readonly haproxyBin: string;
  readonly customSettings: readonly string[];
  readonly globalSettings: readonly string[];
  readonly hardStopAfter: string;
  /** Health-check interval of every upstream (HAProxy `inter`). */
  readonly checkIntervalMs: number;
  /** How long a removed instance may keep its in-flight requests before they are closed. */
  readonly drainTimeoutMs: number;
  /** PROXY protocol on the HTTP, HTTPS and TCP listeners. */
  readonly acceptProxy: boolean;
  /** HAProxy `timeout tunnel` (WebSockets and other upgraded connections). */
  readonly tunnelTimeout: string;
  /** KONTENA_LB_HEALTH_URI: answered 200 by HAProxy; undefined: routed like any path. */
  readonly healthUri: string | undefined;
  /** Secret: never logged. The statistics page is off while it is unset. Environment only. */
  readonly statsPassword: string | undefined;
  /** LOG_LEVEL, or debug when DEBUG is on (as the Kontena image read them). */
  readonly logLevel: LogLevel;
  /** SYSLOG_TARGET: HAProxy also logs there (besides edgelb's stdout); undefined: stdout only. */
  readonly syslogTarget: SyslogTarget | undefined;
  /** KONTENA_LB_ACCESS_LOG: the access log HAProxy writes to stdout (and syslog) itself: text, json or off. */
  readonly accessLog: AccessLogFormat;
  readonly http2: boolean;
  /** The lowest TLS version the HTTPS listener accepts (HAProxy ssl-min-ver). */
  readonly sslMinVersion: TlsVersion;
  readonly sslCiphers: string;
  readonly defaultCert: string | undefined;
  readonly certsDir: string | undefined;
  /** Secret: never logged. Environment only: a flag would show in `ps` and shell history. */
  readonly vaultKey: string | undefined;
  /** Let's Encrypt over ACME HTTP-01; undefined unless KONTENA_LB_ACME_EMAIL is set. */
  readonly acme: AcmeSettings | undefined;
}

export interface AcmeSettings {
  readonly email: string;
  readonly directoryUrl: string;
  /** KONTENA_LB_ACME_DOMAINS, split (services with acme=true are added at run time). */
  readonly domains: readonly string[];
  readonly renewDays: number;
  readonly checkIntervalMs: number;
  readonly leaderTtlSeconds: number;
  /** PEM read from KONTENA_LB_ACME_DIRECTORY_CA, trusted for the directory only. */
  readonly directoryCa: string | undefined;
}

/** The executable `bin` names, looked up on `searchPath` (and the sbin dirs) unless it has a slash. */
export function locateExecutable(bin: string, searchPath: string): string | undefined {
  // Debian installs haproxy in /usr/sbin, which a non-login shell's PATH often lacks.
  const candidates = bin.includes('/')
    ? [path.resolve(bin)]
    : [...searchPath.split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean).map((dir) => path.join(dir, bin));
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}

/** Settings by their environment name; CLI flags are mapped onto the same names before validation. */
export type SettingsInput = Readonly<Record<string, string | undefined>>;

export const SETTINGS = [
  { env: 'ETCD_ENDPOINTS', flag: 'etcd-endpoints', help: 'comma-separated etcd URLs (every member of the cluster); in a container without it or ETCD_NODE: the default gateway, port 2379', default: 'http://127.0.0.1:2379' },
  { env: 'ETCD_NODE', flag: 'etcd-node', help: 'an etcd host or host:port, port 2379 when not given (used when ETCD_ENDPOINTS is not set)' },
  { env: 'ETCD_API', flag: 'etcd-api', help: 'auto, v3 or v2: the etcd API the platform writes the service links with (auto: what the server and the prefix show)', default: 'auto' },
  { env: 'ETCD_CA_FILE', flag: 'etcd-ca-file', help: 'PEM file of the CA certificates that sign the etcd members\' certificates (https endpoints)' },
  { env: 'ETCD_CERT_FILE', flag: 'etcd-cert-file', help: 'PEM client certificate for etcd\'s client-certificate authentication (with ETCD_KEY_FILE)' },
  { env: 'ETCD_KEY_FILE', flag: 'etcd-key-file', help: 'PEM private key of ETCD_CERT_FILE' },
  { env: 'ETCD_USERNAME', flag: 'etcd-username', help: 'etcd user (RBAC); the password comes from ETCD_PASSWORD or ETCD_PASSWORD_FILE' },
  { env: 'ETCD_PASSWORD_FILE', flag: 'etcd-password-file', help: 'a file holding the etcd user\'s password (a mounted secret); ETCD_PASSWORD is the environment-only alternative' },
  { env: 'ETCD_PATH', flag: 'etcd-path', help: 'the load balancer\'s etcd prefix', default: '/kontena/haproxy/<lb-name>' },
  { env: 'KONTENA_STACK_NAME', flag: 'stack-name', help: 'stack of the load balancer service (part of lb-name)' },
  { env: 'KONTENA_SERVICE_NAME', flag: 'service-name', help: 'name of the load balancer service (part of lb-name)' },
  { env: 'KONTENA_LB_HTTP_PORT', flag: 'http-port', help: 'HTTP listening port', default: '80' },
  { env: 'KONTENA_LB_HTTPS_PORT', flag: 'https-port', help: 'HTTPS listening port', default: '443' },
  { env: 'KONTENA_LB_STATS_PORT', flag: 'stats-port', help: 'HAProxy statistics port', default: '1000' },
  { env: 'KONTENA_LB_ADMIN_PORT', flag: 'admin-port', help: 'admin HTTP port: /healthz, /status, /metrics', default: '8404' },
  { env: 'KONTENA_LB_ADMIN_BIND', flag: 'admin-bind', help: 'address the admin port listens on (0.0.0.0 for every interface)', default: '127.0.0.1' },
  { env: 'KONTENA_LB_STATE_DIR', flag: 'state-dir', help: 'rendered config, certificates and sockets', default: '/var/lib/edgelb' },
  { env: 'KONTENA_LB_HAPROXY_BIN', flag: 'haproxy-bin', help: 'the HAProxy executable', default: 'haproxy' },
  { env: 'KONTENA_LB_CUSTOM_SETTINGS', flag: 'custom-settings', help: 'lines appended to HAProxy\'s defaults section' },
  { env: 'KONTENA_LB_GLOBAL_SETTINGS', flag: 'global-settings', help: 'lines appended to HAProxy\'s global section' },
  { env: 'KONTENA_LB_HARD_STOP_AFTER', flag: 'hard-stop-after', help: 'longest time an old HAProxy worker may keep connections after a reload', default: '1h' },
  { env: 'KONTENA_LB_CHECK_INTERVAL', flag: 'check-interval', help: 'health-check interval of every upstream (HAProxy\'s checks; a new instance gets traffic as soon as the controller\'s own first check passes)', default: '2s' },
  { env: 'KONTENA_LB_DRAIN_TIMEOUT', flag: 'drain-timeout', help: 'how long a removed instance may finish its in-flight requests and open connections', default: '1h' },
  { env: 'KONTENA_LB_HTTP2', flag: 'http2', help: 'offer HTTP/2 by ALPN on the HTTPS port (true/false)', default: 'true' },
  { env: 'KONTENA_LB_SSL_MIN_VERSION', flag: 'ssl-min-version', help: 'lowest TLS version accepted on the HTTPS port: TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3', default: DEFAULT_TLS_MIN_VERSION },
  { env: 'KONTENA_LB_SSL_CIPHERS', flag: 'ssl-ciphers', help: 'OpenSSL cipher list for TLS 1.2 and below (TLS 1.3 uses OpenSSL\'s suites)', default: 'Mozilla intermediate (ECDHE with AES-GCM or ChaCha20); Mozilla old with a TLSv1.0 or TLSv1.1 minimum' },
  { env: 'KONTENA_LB_DEFAULT_CERT', flag: 'default-cert', help: 'certificate for clients without SNI or with an unknown name: vault name, SSL_CERT_ name, file name or host' },
  { env: 'KONTENA_LB_CERTS_DIR', flag: 'certs-dir', help: 'a directory of PEM bundles (*.pem), watched live' },
  { env: 'KONTENA_LB_ACME_EMAIL', flag: 'acme-email', help: 'turns on Let\'s Encrypt (ACME HTTP-01): the account\'s contact address; setting it agrees to the CA\'s terms of service' },
  { env: 'KONTENA_LB_ACME_DIRECTORY', flag: 'acme-directory', help: 'ACME directory URL (Let\'s Encrypt staging: https://acme-staging-v02.api.letsencrypt.org/directory)', default: 'https://acme-v02.api.letsencrypt.org/directory' },
  { env: 'KONTENA_LB_ACME_DOMAINS', flag: 'acme-domains', help: 'comma-separated names to obtain certificates for, besides the virtual hosts of services with acme=true' },
  { env: 'KONTENA_LB_ACME_RENEW_DAYS', flag: 'acme-renew-days', help: 'renew a certificate when it has fewer days left', default: '30' },
  { env: 'KONTENA_LB_ACME_CHECK_INTERVAL', flag: 'acme-check-interval', help: 'how often the leader looks at every certificate again (±10%)', default: '1h' },
  { env: 'KONTENA_LB_ACME_LEADER_TTL', flag: 'acme-leader-ttl', help: 'seconds: replicas elect one to order certificates; a dead leader is replaced within this long', default: '10' },
  { env: 'KONTENA_LB_ACME_DIRECTORY_CA', flag: 'acme-directory-ca', help: 'a PEM file of CA certificates to trust for the ACME directory (private ACME servers)' },
  { env: 'KONTENA_LB_ACCEPT_PROXY', flag: 'accept-proxy', help: 'expect the PROXY protocol on the HTTP, HTTPS and TCP listeners (true/false)', default: 'false' },
  { env: 'KONTENA_LB_TUNNEL_TIMEOUT', flag: 'tunnel-timeout', help: 'how long an idle WebSocket (or other upgraded connection) stays open', default: '1h' },
  { env: 'KONTENA_LB_HEALTH_URI', flag: 'health-uri', help: 'a path HAProxy answers with 200 while it is working (e.g. /health)' },
  { env: 'LOG_LEVEL', flag: 'log-level', help: 'trace, debug, info, warn, error, fatal, silent, or 0-5 as the Kontena image took it (0 debug ... 4 and 5 fatal)', default: 'info' },
  { env: 'SYSLOG_TARGET', flag: 'syslog-target', help: 'also send HAProxy\'s logs to this syslog server: "<address>[:port] [<facility> [<level> [<minlevel>]]]"' },
  { env: 'KONTENA_LB_ACCESS_LOG', flag: 'access-log', help: 'the access log HAProxy writes to stdout: text (httplog/tcplog), json (one object per line) or off', default: DEFAULT_ACCESS_LOG },
] as const;

/** The property commander gives a setting's flag: `etcd-ca-file` → `etcdCaFile`. */
export function flagProperty(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** What main.ts found about where edgelb runs: inside a container, the etcd a platform runs is at the default gateway. */
export interface PlatformFacts {
  readonly inContainer: boolean;
  readonly defaultGateway: string | undefined;
}

const NO_PLATFORM: PlatformFacts = { inContainer: false, defaultGateway: undefined };

export function loadConfig(input: SettingsInput, options: { checkFilesystem?: boolean; platform?: PlatformFacts } = {}): Config {
  const get = (name: string) => {
    const value = input[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const httpPort = port(get('KONTENA_LB_HTTP_PORT') ?? '80', 'KONTENA_LB_HTTP_PORT');
  const httpsPort = port(get('KONTENA_LB_HTTPS_PORT') ?? '443', 'KONTENA_LB_HTTPS_PORT');
  const statsPort = port(get('KONTENA_LB_STATS_PORT') ?? '1000', 'KONTENA_LB_STATS_PORT');
  const adminPort = port(get('KONTENA_LB_ADMIN_PORT') ?? '8404', 'KONTENA_LB_ADMIN_PORT');
  const adminBind = bindAddress(get('KONTENA_LB_ADMIN_BIND') ?? '127.0.0.1');
  const stateDir = path.resolve(get('KONTENA_LB_STATE_DIR') ?? '/var/lib/edgelb');
  const haproxyBin = get('KONTENA_LB_HAPROXY_BIN') ?? 'haproxy';
  const sslMinVersion = parseTlsMinVersion(get('KONTENA_LB_SSL_MIN_VERSION') ?? DEFAULT_TLS_MIN_VERSION);
  const config: Config = {
    etcd: etcdConnection(get, input.ETCD_PASSWORD, options.platform ?? NO_PLATFORM),
    etcdPath: etcdPath(get('ETCD_PATH'), get('KONTENA_STACK_NAME'), get('KONTENA_SERVICE_NAME')),
    httpPort,
    httpsPort,
    statsPort,
    adminPort,
    adminBind,
    stateDir,
    haproxyBin,
    customSettings: settingLines(input.KONTENA_LB_CUSTOM_SETTINGS, 'KONTENA_LB_CUSTOM_SETTINGS'),
    globalSettings: settingLines(input.KONTENA_LB_GLOBAL_SETTINGS, 'KONTENA_LB_GLOBAL_SETTINGS'),
    hardStopAfter: duration(get('KONTENA_LB_HARD_STOP_AFTER') ?? '1h', 'KONTENA_LB_HARD_STOP_AFTER'),
    checkIntervalMs: checkInterval(get('KONTENA_LB_CHECK_INTERVAL') ?? '2s'),
    drainTimeoutMs: durationMs(get('KONTENA_LB_DRAIN_TIMEOUT') ?? '1h', 'KONTENA_LB_DRAIN_TIMEOUT'),
    acceptProxy: boolean(get('KONTENA_LB_ACCEPT_PROXY') ?? 'false', 'KONTENA_LB_ACCEPT_PROXY'),
    tunnelTimeout: duration(get('KONTENA_LB_TUNNEL_TIMEOUT') ?? '1h', 'KONTENA_LB_TUNNEL_TIMEOUT'),
    healthUri: healthUri(get('KONTENA_LB_HEALTH_URI')),
    statsPassword: statsPassword(input.STATS_PASSWORD),
    logLevel: parseLogLevel(get('LOG_LEVEL'), get('DEBUG')),
    syslogTarget: get('SYSLOG_TARGET') === undefined ? undefined : parseSyslogTarget(get('SYSLOG_TARGET')!),
    accessLog: parseAccessLog(get('KONTENA_LB_ACCESS_LOG') ?? DEFAULT_ACCESS_LOG),
    http2: boolean(get('KONTENA_LB_HTTP2') ?? 'true', 'KONTENA_LB_HTTP2'),
    sslMinVersion,
    sslCiphers: ciphers(get('KONTENA_LB_SSL_CIPHERS') ?? defaultCiphersFor(sslMinVersion)),
    defaultCert: get('KONTENA_LB_DEFAULT_CERT'),
    certsDir: get('KONTENA_LB_CERTS_DIR') === undefined ? undefined : path.resolve(get('KONTENA_LB_CERTS_DIR')!),
    vaultKey: get('KONTENA_LB_VAULT_KEY'),
    acme: acmeSettings(get, options.checkFilesystem !== false),
  };
  if (new Set([httpPort, httpsPort, statsPort]).size !== 3) {
    throw new ConfigError('KONTENA_LB_HTTP_PORT, KONTENA_LB_HTTPS_PORT and KONTENA_LB_STATS_PORT must be three different ports');
  }
  if ([httpPort, httpsPort, statsPort].includes(adminPort)) {
    throw new ConfigError(`KONTENA_LB_ADMIN_PORT ${adminPort} is already the HTTP, HTTPS or stats port; choose another`);
  }
  if (options.checkFilesystem !== false) {
    prepareStateDir(stateDir);
    Object.assign(config, { haproxyBin: findExecutable(haproxyBin, input.PATH ?? '') });
    if (config.certsDir !== undefined && !statSync(config.certsDir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new ConfigError(`KONTENA_LB_CERTS_DIR ${config.certsDir} is not a directory`);
    }
  }
  return Object.freeze(config);
}

function port(raw: string, name: string): number {
  if (!/^[0-9]{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    throw new ConfigError(`${name} must be a port number between 1 and 65535, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function bindAddress(raw: string): string {
  if (isIP(raw) === 0 && raw !== 'localhost') {
    throw new ConfigError(`KONTENA_LB_ADMIN_BIND must be an IP address such as 127.0.0.1 or 0.0.0.0, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

function etcdPath(explicit: string | undefined, stack: string | undefined, service: string | undefined): string {
  if (explicit) {
    if (!explicit.startsWith('/')) throw new ConfigError(`ETCD_PATH must start with '/', got ${JSON.stringify(explicit)}`);
    return explicit.replace(/\/+$/, '');
  }
  if (!service) throw new ConfigError('set KONTENA_SERVICE_NAME (with KONTENA_STACK_NAME) or ETCD_PATH to say which load balancer this is');
  const lbName = stack && stack !== 'null' ? `${stack}/${service}` : service;
  return `/kontena/haproxy/${lbName}`;
}

function settingLines(raw: string | undefined, name: string): string[] {
  if (raw === undefined) return [];
  try {
    return parseSettingLines(raw, name);
  } catch (error) {
    if (error instanceof EntryError) throw new ConfigError(error.message);
    throw error;
  }
}

function acmeSettings(get: (name: string) => string | undefined, readFiles: boolean): AcmeSettings | undefined {
  const email = get('KONTENA_LB_ACME_EMAIL');
  const domains = splitDomainList(get('KONTENA_LB_ACME_DOMAINS'));
  if (email === undefined) {
    if (domains.length > 0) throw new ConfigError('KONTENA_LB_ACME_DOMAINS needs KONTENA_LB_ACME_EMAIL (the ACME account\'s contact address)');
    return undefined;
  }
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw new ConfigError(`KONTENA_LB_ACME_EMAIL must be an e-mail address, got ${JSON.stringify(email)}`);
  const directoryUrl = get('KONTENA_LB_ACME_DIRECTORY') ?? LETS_ENCRYPT_PRODUCTION;
  let parsed: URL;
  try {
    parsed = new URL(directoryUrl);
  } catch {
    throw new ConfigError(`KONTENA_LB_ACME_DIRECTORY must be a URL like ${LETS_ENCRYPT_PRODUCTION}, got ${JSON.stringify(directoryUrl)}`);
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname);
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && loopback)) {
    throw new ConfigError(`KONTENA_LB_ACME_DIRECTORY must use https:// (http:// only on loopback), got ${JSON.stringify(directoryUrl)}`);
  }
  const renewRaw = get('KONTENA_LB_ACME_RENEW_DAYS') ?? '30';
  if (!/^[0-9]{1,3}$/.test(renewRaw) || Number(renewRaw) < 1) throw new ConfigError(`KONTENA_LB_ACME_RENEW_DAYS must be a whole number of days (1-999), got ${JSON.stringify(renewRaw)}`);
  const ttlRaw = (get('KONTENA_LB_ACME_LEADER_TTL') ?? '10').replace(/s$/, '');
  if (!/^[0-9]{1,3}$/.test(ttlRaw) || Number(ttlRaw) < 1) throw new ConfigError(`KONTENA_LB_ACME_LEADER_TTL must be a whole number of seconds (1-999), got ${JSON.stringify(get('KONTENA_LB_ACME_LEADER_TTL'))}`);
  const checkIntervalMs = durationMs(get('KONTENA_LB_ACME_CHECK_INTERVAL') ?? '1h', 'KONTENA_LB_ACME_CHECK_INTERVAL');
  if (checkIntervalMs < 10_000) throw new ConfigError('KONTENA_LB_ACME_CHECK_INTERVAL must be at least 10s');
  const caFile = get('KONTENA_LB_ACME_DIRECTORY_CA');
  let directoryCa: string | undefined;
  if (caFile !== undefined && readFiles) {
    try {
      directoryCa = readFileSync(caFile, 'utf8');
    } catch (error) {
      throw new ConfigError(`KONTENA_LB_ACME_DIRECTORY_CA: cannot read ${caFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    if (!directoryCa.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`KONTENA_LB_ACME_DIRECTORY_CA: ${caFile} holds no PEM certificate`);
  }
  return { email, directoryUrl, domains, renewDays: Number(renewRaw), checkIntervalMs, leaderTtlSeconds: Number(ttlRaw), directoryCa };
}

/** `30s`, `15m`, `1h`, `2d`, `500ms` or plain milliseconds, in milliseconds. */
function durationMs(raw: string, name: string): number {
  const match = /^([0-9]+)(ms|s|m|h|d)?$/.exec(duration(raw, name));
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[match![2] as 'ms' | 's' | 'm' | 'h' | 'd' ?? 'ms'];
  return Number(match![1]) * unit;
}

function checkInterval(raw: string): number {
  const ms = durationMs(raw, 'KONTENA_LB_CHECK_INTERVAL');
  if (ms < 100 || ms > 3600_000) throw new ConfigError(`KONTENA_LB_CHECK_INTERVAL must be between 100ms and 1h, got ${JSON.stringify(raw)}`);
  return ms;
}

function duration(raw: string, name: string): string {
  if (!/^[0-9]+(ms|s|m|h|d)?$/.test(raw)) throw new ConfigError(`${name} must be a duration like 30s, 15m or 1h, got ${JSON.stringify(raw)}`);
  return raw;
}

function ciphers(raw: string): string {
  if (!/^[A-Za-z0-9_+:!@.=-]+$/.test(raw)) {
    throw new ConfigError(`KONTENA_LB_SSL_CIPHERS must be an OpenSSL cipher list like ECDHE-RSA-AES128-GCM-SHA256:..., got ${JSON.stringify(raw)}`);
  }
  return raw;
}

function healthUri(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  // HAProxy's monitor-uri takes it unquoted: a plain path, no spaces, quotes, '#' or query.
  if (!/^\/[A-Za-z0-9._~%!$&*+,;=:@/-]{0,255}$/.test(raw)) {
    throw new ConfigError(`KONTENA_LB_HEALTH_URI must be a path like /health (letters, digits and URL path characters), got ${JSON.stringify(raw)}`);
  }
  return raw;
}

/**
 * STATS_PASSWORD goes unquoted into `stats auth stats:<password>`: printable ASCII without
 * spaces, quotes, '#' or backslashes, or it could end the line's token early or add syntax.
 * The message never repeats the value: it is a secret.
 */
function statsPassword(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^[!$%&()*+,\-./0-9:;<=>?@A-Z[\]^_`a-z{|}~]{1,256}$/.test(raw)) {
    throw new ConfigError('STATS_PASSWORD may only contain printable ASCII without spaces, quotes, \'#\' or backslashes (at most 256 characters)');
  }
  return raw;
}

function boolean(raw: string, name: string): boolean {
  const value = raw.toLowerCase();
  if (value === 'true' || value === '1' || value === 'yes') return true;
  if (value === 'false' || value === '0' || value === 'no') return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

/** The state dir holds keys and the admin socket: created 0700 and checked writable up front. */
function prepareStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    chmodSync(dir, 0o700);
    accessSync(dir, constants.W_OK | constants.R_OK);
  } catch (error) {
    throw new ConfigError(`KONTENA_LB_STATE_DIR ${dir} is not a writable directory (${(error as Error).message.split(',')[0]})`);
  }
}

function findExecutable(bin: string, searchPath: string): string {
  const found = locateExecutable(bin, searchPath);
  if (found) return found;
  throw new ConfigError(`KONTENA_LB_HAPROXY_BIN: cannot find an executable ${JSON.stringify(bin)}${bin.includes('/') ? '' : ' on PATH'} (install haproxy or set the path)`);
}
