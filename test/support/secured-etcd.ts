import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Range } from 'etcd3';
import { keyPath, v2Request, type V2Reply } from './etcd-v2.js';
import { v2Admin, type CertKeyPair, type EtcdServer } from './etcd.js';
import { addInstance, linkService } from './kontena-agent.js';

/**
 * Helpers for the secured-etcd tests (etcd-secured*.test.ts): the ETCD_* settings that point edgelb
 * at a TLS / auth test etcd, writes through the API under test, the operator's fixes (a password
 * changed, a role granted) on either API, and the admin port as a probe sees it.
 */

export type Api = 'v3' | 'v2';

/** A temp dir for password files; `remove()` in afterAll. */
export async function secretsDir(): Promise<{ readonly dir: string; write(name: string, text: string): Promise<string>; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-etcd-secrets-'));
  return {
    dir,
    async write(name, text) {
      const file = path.join(dir, name);
      await writeFile(file, text, { mode: 0o600 });
      return file;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * ETCD_* settings for edgelb against a `tls: true` test etcd: the CA, and `client` as the client
 * certificate (the trusted one by default). `ca: false` leaves ETCD_CA_FILE out (the server's
 * certificate is then checked against the system's CAs, which did not issue it).
 */
export function tlsSettings(etcd: EtcdServer, options: { client?: CertKeyPair; ca?: boolean } = {}): Record<string, string> {
  const tls = etcd.tls;
  if (!tls) throw new Error('tlsSettings: the etcd was not started with tls');
  const client = options.client ?? tls.client;
  return {
    ...(options.ca === false ? {} : { ETCD_CA_FILE: tls.caFile }),
    ETCD_CERT_FILE: client.certFile,
    ETCD_KEY_FILE: client.keyFile,
  };
}

/**
 * One HTTP service `name` on `host` with one upstream, written as the platform writes it for
 * `api`: v3 puts through the admin client, v2 the Kontena agent's pattern through the v2 API.
 */
export async function linkWebService(etcd: EtcdServer, api: Api, prefix: string, name: string, host: string, upstream: string): Promise<void> {
  if (api === 'v3') {
    await etcd.client.put(`${prefix}/services/${name}/virtual_hosts`).value(host);
    await etcd.client.put(`${prefix}/services/${name}/upstreams/${name}-1`).value(upstream);
    return;
  }
  await linkService(v2Admin(etcd), prefix, name, { virtualHosts: host });
  await addInstance(v2Admin(etcd), prefix, name, `${name}-1`, upstream);
}

/** The operator's fix for a wrong password: the user's password becomes `password` (in the API's own auth store). */
export async function setUserPassword(etcd: EtcdServer, api: Api, username: string, password: string): Promise<void> {
  if (api === 'v3') {
    await etcd.client.user(username).setPassword(password);
    return;
  }
  expectOk(await v2Request(v2Admin(etcd), 'PUT', `/v2/auth/users/${username}`, { json: { user: username, password } }), `set the v2 password of ${username}`);
}

/** The operator's fix for a missing permission: `role` may read and write everything under `prefix`. */
export async function grantPrefix(etcd: EtcdServer, api: Api, role: string, prefix: string): Promise<void> {
  if (api === 'v3') {
    await etcd.client.role(role).grant({ permission: 'Readwrite', range: Range.prefix(`${prefix}/`) });
    return;
  }
  const patterns = [`${prefix}/*`];
  expectOk(
    await v2Request(v2Admin(etcd), 'PUT', `/v2/auth/roles/${role}`, { json: { role, grant: { kv: { read: patterns, write: patterns } } } }),
    `grant ${role} ${prefix}`,
  );
}

/** Whether the v2 key exists, as root (to see that a CLI write landed in the v2 keyspace). */
export async function v2Value(etcd: EtcdServer, key: string): Promise<string | undefined> {
  const reply = await v2Request(v2Admin(etcd), 'GET', keyPath(key));
  return reply.status === 200 ? (JSON.parse(reply.body) as { node: { value?: string } }).node.value : undefined;
}

function expectOk(reply: V2Reply, what: string): void {
  if (reply.status < 200 || reply.status > 299) throw new Error(`could not ${what}: ${reply.status} ${reply.body.trim()}`);
}

export interface AdminReply {
  readonly status: number;
  readonly body: string;
}

/** GET on edgelb's admin port (/healthz, /status, /metrics). */
export function adminGet(port: number, urlPath: string): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'GET', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`admin ${urlPath}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

/** The lines of a PEM private key that are pure key material (not the BEGIN/END armour). */
export function keyMaterial(pem: string): string[] {
  return pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
}
