import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { ConfigError } from '../settings/config-error.js';
import type { EtcdConnection } from './connection.js';

/** The default etcd client port (what ETCD_NODE and the default gateway get). */
export const DEFAULT_ETCD_PORT = 2379;

/**
 * ETCD_ENDPOINTS, ETCD_NODE, ETCD_API, ETCD_CA_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE,
 * ETCD_USERNAME and ETCD_PASSWORD / ETCD_PASSWORD_FILE, as one validated connection. Messages
 * name the setting and never repeat a password or a key.
 */
export function etcdConnection(
  get: (name: string) => string | undefined,
  password: string | undefined,
  platform: { readonly inContainer: boolean; readonly defaultGateway: string | undefined },
): EtcdConnection {
  const tls = tlsFiles(get('ETCD_CA_FILE'), get('ETCD_CERT_FILE'), get('ETCD_KEY_FILE'));
  const { endpoints, from } = endpointsOf(get('ETCD_ENDPOINTS'), get('ETCD_NODE'), tls !== undefined, platform);
  if (tls !== undefined) {
    const plain = endpoints.find((url) => url.startsWith('http://'));
    if (plain)
      throw new ConfigError(`ETCD_CA_FILE, ETCD_CERT_FILE or ETCD_KEY_FILE is set, so the etcd endpoints must use https://, got ${JSON.stringify(plain)}`);
  }
  return {
    endpoints,
    endpointsFrom: from,
    api: apiOf(get('ETCD_API') ?? 'auto'),
    tls,
    auth: credentials(get('ETCD_USERNAME'), password, get('ETCD_PASSWORD_FILE')),
  };
}

function endpointsOf(
  list: string | undefined,
  node: string | undefined,
  https: boolean,
  platform: { readonly inContainer: boolean; readonly defaultGateway: string | undefined },
): { endpoints: string[]; from: EtcdConnection['endpointsFrom'] } {
  const scheme = https ? 'https' : 'http';
  if (list !== undefined) {
    const endpoints = list
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    for (const url of endpoints) checkUrl(url, 'ETCD_ENDPOINTS');
    if (endpoints.length === 0) throw new ConfigError('ETCD_ENDPOINTS must list at least one URL like http://127.0.0.1:2379');
    return { endpoints, from: 'ETCD_ENDPOINTS' };
  }
  if (node !== undefined) return { endpoints: [nodeUrl(node, scheme)], from: 'ETCD_NODE' };
  // The Kontena image did this: the grid's etcd listens on the node, the container's gateway.
  if (platform.inContainer && platform.defaultGateway !== undefined) {
    return { endpoints: [`${scheme}://${hostForUrl(platform.defaultGateway)}:${DEFAULT_ETCD_PORT}`], from: 'default gateway' };
  }
  return { endpoints: [`${scheme}://127.0.0.1:${DEFAULT_ETCD_PORT}`], from: 'default' };
}

/** `10.0.0.1`, `10.0.0.1:2379`, `etcd.local`, `[fd00::1]:2379`, or a whole URL. */
function nodeUrl(node: string, scheme: string): string {
  if (/^[a-z]+:\/\//i.test(node)) {
    checkUrl(node, 'ETCD_NODE');
    return node;
  }
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)|([0-9A-Fa-f:.]+))(?::([0-9]{1,5}))?$/.exec(node);
  const host = match?.[1] ?? match?.[2] ?? (match?.[3] && isIP(match[3]) === 6 ? match[3] : undefined);
  // An IPv6 address without brackets cannot carry a port: `fd00::1` is the host alone.
  const port = match?.[3] ? undefined : match?.[4];
  if (!match || host === undefined || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
    throw new ConfigError(`ETCD_NODE must be a host or host:port such as 10.0.0.1 or 10.0.0.1:2379, got ${JSON.stringify(node)}`);
  }
  return `${scheme}://${hostForUrl(host)}:${port ?? DEFAULT_ETCD_PORT}`;
}

function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function checkUrl(url: string, name: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${name} must be comma-separated URLs like http://127.0.0.1:2379, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(`${name} URLs must use http:// or https://, got ${JSON.stringify(url)}`);
  }
  if (parsed.username || parsed.password) {
    throw new ConfigError(`${name} must not hold credentials; use ETCD_USERNAME and ETCD_PASSWORD_FILE`);
  }
}

function apiOf(raw: string): EtcdConnection['api'] {
  const api = raw.toLowerCase();
  if (api === 'auto' || api === 'v3' || api === 'v2') return api;
  throw new ConfigError(`ETCD_API must be auto, v3 or v2, got ${JSON.stringify(raw)}`);
}

function tlsFiles(caFile: string | undefined, certFile: string | undefined, keyFile: string | undefined): EtcdConnection['tls'] {
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError('ETCD_CERT_FILE and ETCD_KEY_FILE go together: set both for client-certificate authentication, or neither');
  }
  const tls = {
    ...(caFile !== undefined ? { ca: readPem(caFile, 'ETCD_CA_FILE', /-----BEGIN CERTIFICATE-----/) } : {}),
    ...(certFile !== undefined ? { cert: readPem(certFile, 'ETCD_CERT_FILE', /-----BEGIN CERTIFICATE-----/) } : {}),
    ...(keyFile !== undefined ? { key: readPem(keyFile, 'ETCD_KEY_FILE', /-----BEGIN [A-Z ]*PRIVATE KEY-----/) } : {}),
  };
  if (tls.cert !== undefined && tls.key !== undefined) checkKeyPair(tls.cert, tls.key, certFile!, keyFile!);
  return tls;
}

/**
 * A key that cannot be loaded (encrypted, damaged) or does not belong to the certificate would
 * only show as a refused handshake at the first connection: say so at start, naming the files.
 */
function checkKeyPair(certPem: string, keyPem: string, certFile: string, keyFile: string): void {
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new ConfigError(`ETCD_KEY_FILE: ${keyFile} cannot be loaded as a private key (an encrypted key needs its passphrase removed)`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new ConfigError(`ETCD_CERT_FILE: ${certFile} cannot be read as an X.509 certificate`);
  }
  if (!cert.checkPrivateKey(key)) throw new ConfigError(`ETCD_KEY_FILE: ${keyFile} is not the private key of ETCD_CERT_FILE ${certFile}`);
}

function readPem(file: string, name: string, marker: RegExp): string {
  const text = readSetting(file, name);
  if (!marker.test(text)) throw new ConfigError(`${name}: ${file} holds no PEM ${name === 'ETCD_KEY_FILE' ? 'private key' : 'certificate'}`);
  return text;
}

function credentials(username: string | undefined, password: string | undefined, passwordFile: string | undefined): EtcdConnection['auth'] {
  const given = password !== undefined && password !== '';
  if (given && passwordFile !== undefined) throw new ConfigError('set ETCD_PASSWORD or ETCD_PASSWORD_FILE, not both');
  if (username === undefined) {
    if (given || passwordFile !== undefined) throw new ConfigError('ETCD_PASSWORD and ETCD_PASSWORD_FILE need ETCD_USERNAME');
    return undefined;
  }
  // A password file from a secret usually ends in a newline that is not part of the password.
  const secret = given ? password : passwordFile !== undefined ? readSetting(passwordFile, 'ETCD_PASSWORD_FILE').replace(/\r?\n$/, '') : undefined;
  if (secret === undefined || secret === '') throw new ConfigError('ETCD_USERNAME needs a password: set ETCD_PASSWORD_FILE (or ETCD_PASSWORD)');
  if (/[\r\n]/.test(secret)) throw new ConfigError('the etcd password must be one line (ETCD_PASSWORD_FILE holds more than one)');
  return { username, password: secret };
}

function readSetting(file: string, name: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`${name}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}
