import { randomBytes } from 'node:crypto';
import { Range } from 'etcd3';
import { withEtcdClient, type BasicCredentials, type EtcdAccess } from './etcd-access.js';
import { keyPath, v2Request, type V2Reply, type V2Target } from './etcd-v2.js';

/**
 * Password authentication on a test etcd, the way an operator locks a load balancer's user to
 * its own prefix: v3 RBAC, and v2 auth as well when the v2 API is on (etcd 3.4 keeps the two
 * apart: v2 users and roles live in the v2 store, v3 ones in the v3 auth store).
 */

export interface AuthSpec {
  /** The load balancer's etcd path, e.g. `/kontena/haproxy/lb1`; the user may use `<prefix>/...` only. */
  readonly prefix: string;
  readonly username: string;
  readonly password: string;
  /**
   * v2 key patterns the user may read and write; default `<prefix>/*`. v2 matches a pattern
   * ending in `*` as a string prefix and anything else exactly, and checks a recursive request
   * (a listing, a recursive watch or delete) against the key as requested: `<prefix>/*` allows
   * `GET /v2/keys<prefix>/?recursive=true` (trailing slash) but refuses `GET /v2/keys<prefix>?recursive=true`.
   */
  readonly v2Patterns?: readonly string[];
}

/** The credentials an auth-enabled test etcd hands out. */
export interface EtcdAuth {
  readonly prefix: string;
  readonly user: BasicCredentials;
  /** Generated; the server's admin client logs in with it. */
  readonly root: BasicCredentials;
  readonly roleName: string;
}

/**
 * Creates the user and its role on `endpoints` and, the first time (no `root` yet), the root
 * user, then turns auth on. `access` is how to reach etcd before this call (TLS and, when auth
 * is already on, root).
 */
export async function configureAuth(endpoints: readonly string[], access: EtcdAccess, v2: boolean, spec: AuthSpec): Promise<EtcdAuth> {
  const firstTime = access.auth === undefined;
  const root = access.auth ?? { username: 'root', password: randomBytes(12).toString('hex') };
  const roleName = `${spec.username}-prefix`;
  const prefix = spec.prefix.replace(/\/+$/, '');
  await configureV3(endpoints, access, { spec, prefix, root, roleName, firstTime });
  if (v2) await configureV2({ endpoint: endpoints[0]!, tls: access.tls }, { spec, prefix, root, roleName, firstTime });
  return { prefix, user: { username: spec.username, password: spec.password }, root, roleName };
}

interface Plan {
  readonly spec: AuthSpec;
  readonly prefix: string;
  readonly root: BasicCredentials;
  readonly roleName: string;
  readonly firstTime: boolean;
}

async function configureV3(endpoints: readonly string[], access: EtcdAccess, plan: Plan): Promise<void> {
  await withEtcdClient(endpoints, access, async (client) => {
    if (plan.firstTime) {
      // etcd 3.4 wants a user named root holding the role root before `auth enable`.
      await client.role('root').create();
      await (await client.user(plan.root.username).create(plan.root.password)).addRole('root');
    }
    const role = await client.role(plan.roleName).create();
    await role.grant({ permission: 'Readwrite', range: Range.prefix(`${plan.prefix}/`) });
    await (await client.user(plan.spec.username).create(plan.spec.password)).addRole(plan.roleName);
    if (plan.firstTime) await client.auth.authEnable();
  });
}

async function configureV2(endpoint: V2Target, plan: Plan): Promise<void> {
  const asRoot: V2Target = { ...endpoint, auth: plan.root };
  // Before v2 auth is on, root may not authenticate (it does not exist yet); afterwards it must.
  const admin = plan.firstTime ? endpoint : asRoot;
  const patterns = plan.spec.v2Patterns ?? [`${plan.prefix}/*`];
  if (plan.firstTime) {
    expectOk(await v2Request(admin, 'PUT', '/v2/auth/users/root', { json: { user: 'root', password: plan.root.password } }), 'create the v2 root user');
  }
  expectOk(
    await v2Request(admin, 'PUT', `/v2/auth/roles/${plan.roleName}`, {
      json: { role: plan.roleName, permissions: { kv: { read: patterns, write: patterns } } },
    }),
    'create the v2 role',
  );
  expectOk(
    await v2Request(admin, 'PUT', `/v2/auth/users/${plan.spec.username}`, {
      json: { user: plan.spec.username, password: plan.spec.password, roles: [plan.roleName] },
    }),
    'create the v2 user',
  );
  if (!plan.firstTime) return;
  expectOk(await v2Request(admin, 'PUT', '/v2/auth/enable'), 'enable v2 auth');
  // Enabling v2 auth creates a "guest" role with read and write on /* for requests without
  // credentials (etcd 2.1+ behaviour, kept in 3.4). Remove it, so that no credentials means no access.
  expectOk(await v2Request(asRoot, 'DELETE', '/v2/auth/roles/guest'), 'remove the v2 guest role');
  // Root must be able to write anywhere now; fail here rather than in a test if it cannot.
  expectOk(await v2Request(asRoot, 'GET', keyPath('/')), 'read the v2 root as root');
}

function expectOk(reply: V2Reply, what: string): void {
  // Bodies of these replies never carry a password (etcd blanks it), so they are safe to show.
  if (reply.status < 200 || reply.status > 299) throw new Error(`could not ${what}: ${reply.status} ${reply.body.trim()}`);
}
