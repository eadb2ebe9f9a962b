import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { closeBackends, expectRoute, logsWithMsg, putKeys, settled, startBackends, startLbWith } from '../support/lb.js';
import { get as httpGet } from '../support/http.js';
import { basicAuth, request } from '../support/requests.js';
import { waitFor } from '../support/wait.js';

// basic_auth_secrets through a real HAProxy: 401 with a realm without valid credentials, the
// backend reached with them (plain and SHA-512/SHA-256/MD5 crypt hashes made by openssl, and the
// bcrypt forms Kontena's docs show), and a service whose secrets cannot be used closed to
// everyone rather than left open.

const HOST = 'private.foo.com';
const PASSWORDS = {
  alice: 'alice-Pa55:w0rd!',
  bob: 'bob-S3cret',
  carol: 'carol-S3cret',
  dave: 'dave-S3cret',
  erin: 'erin-Bcrypt5',
  frank: 'frank-Bcrypt5',
  gina: 'gina-Bcrypt5',
};
// Fixed bcrypt hashes of the passwords above, cost 04 (cheap for a test), made with python3's crypt
// module (libxcrypt, the library HAProxy calls): one per prefix. That HAProxy lets the right
// password through and not a wrong one, below, is the proof that each prefix verifies.
const BCRYPT = {
  erin: '$2b$04$.tkkPBiJGtmnTnwyM1BWBuD1Vgtep16tqZcbCuBTnKDfSXrW1DZUS',
  frank: '$2y$04$2Qdo8k6rYcXIVUbzHK63y.VpNKqgVDSBU5Up2Jby39WppSAHKBD8q',
  gina: '$2a$04$gazQRtnadjYA3fAtlSW/RONrdmHMcnmxOzyTLZJ1VylYmUtd5lby.',
};

let etcd: EtcdServer;
let lb: TestEdgelb;
let b: Record<'private' | 'catchall', Backend>;
let secrets: string;

const opensslHash = async (algorithm: '-6' | '-5' | '-1', password: string) =>
  (await execa('openssl', ['passwd', algorithm, '-stdin'], { input: password })).stdout.trim();

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('private', 'catchall');
  secrets = [
    `user alice insecure-password ${PASSWORDS.alice}`,
    `user bob password ${await opensslHash('-6', PASSWORDS.bob)}`,
    `user carol password ${await opensslHash('-5', PASSWORDS.carol)}`,
    `user dave password ${await opensslHash('-1', PASSWORDS.dave)}`,
    ...Object.entries(BCRYPT).map(([user, hash]) => `user ${user} password ${hash}`),
  ].join('\n');
  lb = await startLbWith(etcd, {
    'services/private/virtual_hosts': HOST,
    'services/private/basic_auth_secrets': secrets,
    'services/private/upstreams/one': b.private.address,
    // Takes every request no other service matches: where a left-out service's traffic would go.
    'services/catchall/virtual_path': '/',
    'services/catchall/upstreams/one': b.catchall.address,
  });
  // Both instances take traffic once their first health check has passed.
  await expectRoute(lb, '/', 'other.foo.com', 'catchall');
  await waitFor(async () => (await request(lb.httpPort, { host: HOST, headers: basicAuth('alice', PASSWORDS.alice) })).backend === 'private', {
    timeoutMs: 5000,
    what: 'the private service to answer',
  });
});

afterAll(async () => {
  await lb?.stopAll();
  await closeBackends(b);
  await etcd?.stop();
});

const get = (headers: Record<string, string> = {}, path = '/doc') => request(lb.httpPort, { path, host: HOST, headers });

function expect401(reply: Awaited<ReturnType<typeof get>>) {
  expect(reply.status).toBe(401);
  expect(reply.headers['www-authenticate']).toBe('Basic realm="private"');
  expect(reply.backend).toBeUndefined();
}

describe('basic auth', () => {
  it('answers 401 with a WWW-Authenticate realm without credentials, and never reaches the backend', async () => {
    const before = b.private.requests.length;
    expect401(await get());
    expect(b.private.requests.length).toBe(before);
  });

  it('answers 401 to a wrong password, an unknown user and a hash sent as the password', async () => {
    expect401(await get(basicAuth('alice', 'wrong')));
    expect401(await get(basicAuth('mallory', PASSWORDS.alice)));
    const bobHash = /user bob password (\S+)/.exec(secrets)![1]!;
    expect401(await get(basicAuth('bob', bobHash)));
  });

  it.each([
    ['a plain password', 'alice'],
    ['a SHA-512 hash', 'bob'],
    ['a SHA-256 hash', 'carol'],
    ['an MD5 hash', 'dave'],
    ['a $2b$ bcrypt hash', 'erin'],
    ['a $2y$ bcrypt hash', 'frank'],
    ['a $2a$ bcrypt hash', 'gina'],
  ] as const)('lets %s through to the backend', async (_label, user) => {
    const reply = await get(basicAuth(user, PASSWORDS[user]), '/doc?x=1');
    expect(reply.status).toBe(200);
    expect(reply.backend).toBe('private');
    expect(reply.backendUrl).toBe('/doc?x=1');
  });

  it.each(['erin', 'frank', 'gina'] as const)('answers 401 to %s (bcrypt) with a wrong password', async (user) => {
    expect401(await get(basicAuth(user, `${PASSWORDS[user]}x`)));
    expect401(await get(basicAuth(user, BCRYPT[user])));
  });

  it('logs once that the bcrypt hashes cost a bcrypt run per request, naming users and costs, never the hashes; /status lists it', async () => {
    const warning = {
      key: 'services/private/basic_auth_secrets',
      reason: expect.stringMatching(
        /^bcrypt hashes \(erin \(cost 04\), frank \(cost 04\), gina \(cost 04\)\): HAProxy runs a bcrypt verification on every request .*openssl passwd -6/,
      ),
    };
    expect(logsWithMsg(lb, 'entry warning')).toEqual([expect.objectContaining(warning)]);
    const status = await httpGet(lb.config.adminPort, '/status');
    expect((JSON.parse(status.body) as { warnings: unknown[] }).warnings).toEqual([warning]);
    expect(status.body).not.toMatch(/\$2[aby]\$/);
  });

  it('does not guard other services', async () => {
    const reply = await request(lb.httpPort, { path: '/open', host: 'other.foo.com' });
    expect(reply.backend).toBe('catchall');
  });

  it('closes the service (401 to all) when a line is malformed, logs key and reason without the secret, and reopens once fixed', async () => {
    const broken = `${secrets}\nadmin:Leaked-If-Logged`;
    await settled(lb, await putKeys(etcd, lb, { 'services/private/basic_auth_secrets': broken }));
    // Valid credentials no longer open it, and the request does not fall through to the catch-all.
    await waitFor(async () => (await get(basicAuth('alice', PASSWORDS.alice))).status === 401, { timeoutMs: 5000, what: 'the service to close' });
    expect401(await get(basicAuth('alice', PASSWORDS.alice)));
    expect401(await get());
    const rejected = logsWithMsg(lb, 'entry rejected').filter((l) => String(l.key).endsWith('services/private/basic_auth_secrets'));
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.reason).toMatch(/^line 8 is not "user <name>.*closed \(401 to every request\)/);

    await settled(lb, await putKeys(etcd, lb, { 'services/private/basic_auth_secrets': secrets }));
    await waitFor(async () => (await get(basicAuth('alice', PASSWORDS.alice))).backend === 'private', { timeoutMs: 5000, what: 'the service to open again' });
    expect401(await get());

    const everything = JSON.stringify(lb.logs);
    for (const secret of [...Object.values(PASSWORDS), 'Leaked-If-Logged', '$6$', '$5$', '$1$', '$2a$', '$2b$', '$2y$'])
      expect(everything).not.toContain(secret);
  });
});
