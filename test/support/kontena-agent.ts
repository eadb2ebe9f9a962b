import { keyPath, v2Json, v2Request, type V2ErrorBody, type V2KeyReply, type V2Reply, type V2Target } from './etcd-v2.js';

/**
 * Writes load balancer entries through the etcd v2 API the way the Kontena platform does, so
 * the v2 source is tested against the platform's real write pattern rather than our idea of it:
 *
 * - the master's LoadBalancerConfigurer, when a service is linked to a load balancer: `mkdir`
 *   `<lb>/services` and `<lb>/tcp-services` (`PUT dir=true`, "Not a file" when it exists is
 *   ignored), one form-encoded `PUT value=...` per field (a field with no value is a `DELETE`),
 *   then a recursive `DELETE` of the service's directory of the other kind;
 * - the node agent's Registrator: `PUT <lb>/<kind>/<svc>/upstreams/<container> value=<ip>:<port>`
 *   when a container starts, `DELETE` of that key when it dies.
 *
 * Like the Ruby code, deletes of keys that are already gone are not errors. Not reproduced: the
 * master's removal of the service from *other* load balancers. Each function returns the etcd
 * index of its last write (`node.modifiedIndex`, else `X-Etcd-Index`), to wait on.
 */

export type ServiceKind = 'http' | 'tcp';

/** The service's KONTENA_LB_* environment, as the master reads it. */
export interface HttpServiceEnv {
  /** KONTENA_LB_BALANCE; `roundrobin` when absent. */
  readonly balance?: string;
  readonly customSettings?: string;
  readonly virtualHosts?: string;
  /** KONTENA_LB_VIRTUAL_PATH; `/` when absent and there are no virtual hosts. */
  readonly virtualPath?: string;
  /** More `<field>: value` entries written the same way (null deletes), e.g. keep_virtual_path. */
  readonly extra?: Readonly<Record<string, string | null>>;
}

export interface TcpServiceEnv {
  readonly externalPort?: string | number;
  readonly balance?: string;
  readonly customSettings?: string;
  readonly extra?: Readonly<Record<string, string | null>>;
}

/** A v2 write etcd refused. `errorCode` is etcd's (100 key not found, 102 not a file, 110 unauthorized...). */
export class KontenaWriteError extends Error {
  constructor(
    readonly key: string,
    readonly status: number,
    readonly errorCode: number | undefined,
    message: string,
  ) {
    super(`etcd v2 refused ${key}: ${status} ${message}`);
    this.name = 'KontenaWriteError';
  }
}

const KEY_NOT_FOUND = 100;
const NOT_A_FILE = 102;

function dirOf(prefix: string, kind: ServiceKind): string {
  return `${prefix.replace(/\/+$/, '')}/${kind === 'http' ? 'services' : 'tcp-services'}`;
}

export async function linkService(target: V2Target, prefix: string, name: string, env: HttpServiceEnv = {}): Promise<number> {
  const noHosts = (env.virtualHosts ?? '') === '';
  return configure(target, prefix, name, 'http', {
    balance: env.balance ?? 'roundrobin',
    custom_settings: env.customSettings ?? null,
    virtual_hosts: env.virtualHosts ?? null,
    virtual_path: env.virtualPath ?? (noHosts ? '/' : null),
    ...env.extra,
  });
}

export async function linkTcpService(target: V2Target, prefix: string, name: string, env: TcpServiceEnv = {}): Promise<number> {
  return configure(target, prefix, name, 'tcp', {
    external_port: env.externalPort === undefined ? null : String(env.externalPort),
    balance: env.balance ?? 'roundrobin',
    custom_settings: env.customSettings ?? null,
    ...env.extra,
  });
}

/** A container of the service started: `address` is `<overlay ip>:<internal port>`. */
export async function addInstance(
  target: V2Target,
  prefix: string,
  service: string,
  container: string,
  address: string,
  kind: ServiceKind = 'http',
): Promise<number> {
  return set(target, `${dirOf(prefix, kind)}/${service}/upstreams/${container}`, address);
}

/**
 * A container died. Kontena's Registrator always deleted under `services/`, even for a TCP
 * service (its TCP instances lingered); pass `kind` 'http' to reproduce that.
 */
export async function removeInstance(target: V2Target, prefix: string, service: string, container: string, kind: ServiceKind = 'http'): Promise<number> {
  return remove(target, `${dirOf(prefix, kind)}/${service}/upstreams/${container}`, false);
}

/** The service was unlinked (or removed): its whole directory goes. */
export async function unlinkService(target: V2Target, prefix: string, name: string, kind: ServiceKind = 'http'): Promise<number> {
  return remove(target, `${dirOf(prefix, kind)}/${name}`, true);
}

async function configure(target: V2Target, prefix: string, name: string, kind: ServiceKind, fields: Readonly<Record<string, string | null>>): Promise<number> {
  await mkdir(target, dirOf(prefix, 'http'));
  await mkdir(target, dirOf(prefix, 'tcp'));
  for (const [field, value] of Object.entries(fields)) {
    const key = `${dirOf(prefix, kind)}/${name}/${field}`;
    await (value === null ? remove(target, key, false) : set(target, key, value));
  }
  return remove(target, `${dirOf(prefix, kind === 'http' ? 'tcp' : 'http')}/${name}`, true);
}

async function set(target: V2Target, key: string, value: string): Promise<number> {
  return indexOf(key, await v2Request(target, 'PUT', keyPath(key), { form: { value } }));
}

async function mkdir(target: V2Target, key: string): Promise<number> {
  return indexOf(key, await v2Request(target, 'PUT', keyPath(key), { form: { dir: 'true' } }), NOT_A_FILE);
}

async function remove(target: V2Target, key: string, recursive: boolean): Promise<number> {
  const query = recursive ? { recursive: 'true' } : undefined;
  return indexOf(key, await v2Request(target, 'DELETE', keyPath(key), { query }), KEY_NOT_FOUND);
}

/** The index a write produced, or the current one when etcd answered with the `tolerated` error. */
function indexOf(key: string, reply: V2Reply, tolerated?: number): number {
  const ok = reply.status >= 200 && reply.status < 300;
  const error = ok ? undefined : v2Json<V2ErrorBody>(reply);
  if (!ok && (tolerated === undefined || error?.errorCode !== tolerated)) {
    throw new KontenaWriteError(key, reply.status, error?.errorCode, error?.message ?? reply.body.trim().slice(0, 200));
  }
  const written = ok ? v2Json<V2KeyReply>(reply)?.node?.modifiedIndex : undefined;
  const index = written ?? reply.etcdIndex ?? (error as { index?: number } | undefined)?.index;
  if (index === undefined) throw new KontenaWriteError(key, reply.status, undefined, 'no etcd index in the reply');
  return index;
}
