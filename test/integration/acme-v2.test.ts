import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerCertCommands, type CertListRow } from '../../src/cli/cert.js';
import { parseState } from '../../src/acme/state.js';
import { isEncrypted } from '../../src/tls/vault.js';
import { makeLeaf, removeCertFiles } from '../support/certs.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startEtcd, v2Admin, type EtcdServer } from '../support/etcd.js';
import { etcdConnection } from '../support/etcd-connection.js';
import { keyPath, v2Json, v2Request, type V2KeyReply } from '../support/etcd-v2.js';
import { addInstance, linkService } from '../support/kontena-agent.js';
import { logsWithMsg } from '../support/lb.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

// Everything edgelb stores in etcd works over the v2 API too (a Kontena grid's etcd 2.3 has no
// other): the ACME leader key (a TTL key refreshed without waking watchers), the replicas'
// announcements and challenge confirmations, the fenced state writes, the encrypted
// certificates in the vault and `edgelb cert import/list`. Two real edgelb replicas on one
// prefix with ETCD_API=v2, pebble as the CA validating through replica B.

const VAULT_KEY = 'acme over v2 vault key 0123456789';
let etcd: EtcdServer;
let pebble: Pebble;
let lbA: TestEdgelb;
let lbB: TestEdgelb;
let prefix: string;
let pebbleRoot: string;
const dirs: string[] = [];

async function v2Value(key: string): Promise<string | undefined> {
  const reply = await v2Request(v2Admin(etcd), 'GET', keyPath(`${prefix}/${key}`));
  return reply.status === 200 ? v2Json<V2KeyReply>(reply)?.node?.value : undefined;
}

/** The keys directly under `dir` (relative to the prefix). */
async function v2Keys(dir: string): Promise<string[]> {
  const reply = await v2Request(v2Admin(etcd), 'GET', keyPath(`${prefix}/${dir}/`));
  return (v2Json<{ node?: { nodes?: { key: string }[] } }>(reply)?.node?.nodes ?? []).map((n) => n.key);
}

/** Subject alternative names the HTTPS port presents for `servername`, and whether they chain to `ca`. */
function served(lb: TestEdgelb, servername: string, ca: string): Promise<{ names: string; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: lb.config.httpsPort, servername, ca, rejectUnauthorized: false, timeout: 3000 }, () => {
      resolve({ names: socket.getPeerCertificate().subjectaltname ?? '', authorized: socket.authorized });
      socket.end();
    });
    socket.on('timeout', () => socket.destroy(new Error('TLS timeout')));
    socket.on('error', reject);
  });
}

async function cli(args: string[]): Promise<string[]> {
  const lines: string[] = [];
  const program = new Command('edgelb').exitOverride();
  registerCertCommands(program, {
    loadSettings: () => ({ etcd: etcdConnection(etcd.endpoint, { api: 'v2' }), etcdPath: prefix, vaultKey: VAULT_KEY }),
    out: (line) => void lines.push(line),
    fail: (message) => {
      throw new Error(message);
    },
  });
  await program.parseAsync(args, { from: 'user' });
  return lines;
}

beforeAll(async () => {
  etcd = await startEtcd({ enableV2: true });
  prefix = `/kontena/haproxy/acme-v2-${process.pid}`;
  const [portA, portB] = await Promise.all([freePort(), freePort()]);
  dirs.push(...(await Promise.all([0, 1].map(() => mkdtemp(path.join(os.tmpdir(), 'edgelb-acme-v2-'))))));
  pebble = await startPebble({ httpPort: portB });
  pebbleRoot = await pebble.rootCa();
  const caFile = path.join(dirs[0]!, 'pebble-ca.pem');
  await writeFile(caFile, pebble.caPem);
  const env = {
    ETCD_API: 'v2',
    KONTENA_LB_VAULT_KEY: VAULT_KEY,
    KONTENA_LB_ACME_EMAIL: 'ops@example.com',
    KONTENA_LB_ACME_DIRECTORY: pebble.directoryUrl,
    KONTENA_LB_ACME_DIRECTORY_CA: caFile,
    KONTENA_LB_ACME_LEADER_TTL: '2',
  };
  lbA = await startTestEdgelb(etcd, env, { stateDir: dirs[0]!, prefix, httpPort: portA });
  await waitFor(() => logsWithMsg(lbA, 'ACME leader: this replica orders certificates').length > 0, { what: 'A to lead' });
  lbB = await startTestEdgelb(etcd, env, { stateDir: dirs[1]!, prefix, httpPort: portB });
  await waitFor(async () => (await v2Keys('acme/replicas')).length === 2, { what: 'both replicas to announce themselves' });
});

afterAll(async () => {
  await Promise.allSettled([lbA?.stopAll(), lbB?.stopAll(), pebble?.stop()]);
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  await etcd?.stop();
  removeCertFiles();
});

describe('ACME and the vault over etcd v2', () => {
  it('orders a certificate for a service linked through v2 with acme=true; both replicas serve it', async () => {
    const domain = 'grid-shop.example.com';
    const backendPort = await freePort();
    await linkService(v2Admin(etcd), prefix, 'shop', { virtualHosts: domain, extra: { acme: 'true' } });
    await addInstance(v2Admin(etcd), prefix, 'shop', 'shop-1', `127.0.0.1:${backendPort}`);

    for (const lb of [lbA, lbB]) {
      const answer = await waitFor(
        async () => {
          const cert = await served(lb, domain, pebbleRoot).catch(() => undefined);
          return cert?.names.includes(`DNS:${domain}`) && cert;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: `${domain} served by ${lb.config.httpsPort}` },
      );
      expect(answer.authorized).toBe(true);
    }
    // Stored in the v2 keyspace: state written by the leader, the certificate encrypted, tokens and acks gone.
    expect(parseState(await v2Value(`acme/state/${domain}`), domain)).toMatchObject({ status: 'valid', failures: 0 });
    expect(isEncrypted((await v2Value(`certs/acme-${domain}`))!)).toBe(true);
    expect(await v2Value('acme/account')).toMatch(/^edgelb-vault:/);
    expect(await v2Keys('acme/challenges')).toEqual([]);
    expect(await v2Keys('acme/acks')).toEqual([]);

    const rows = JSON.parse((await cli(['cert', 'list', '--json'])).join('\n')) as CertListRow[];
    expect(rows.find((r) => r.name === `acme-${domain}`)).toMatchObject({ status: 'valid', encrypted: true, names: [domain] });
  });

  it('edgelb cert import writes the vault through v2, and every replica serves the bundle', async () => {
    const leaf = await makeLeaf({ names: ['vault-v2.example.com'] });
    const file = path.join(dirs[0]!, 'vault.pem');
    await writeFile(file, leaf.bundlePem);
    expect(await cli(['cert', 'import', file])).toEqual([
      expect.stringMatching(/^imported .*\/certs\/vault-v2\.example\.com: vault-v2\.example\.com, expires .*, encrypted$/),
    ]);
    expect(isEncrypted((await v2Value('certs/vault-v2.example.com'))!)).toBe(true);
    for (const lb of [lbA, lbB]) {
      await waitFor(async () => (await served(lb, 'vault-v2.example.com', leaf.certPem).catch(() => undefined))?.authorized === true, {
        what: 'the vault bundle served',
      });
    }
  });

  it('a leader that stops hands over at once: its key is deleted with compare-and-delete and B takes it', async () => {
    const leaderBefore = await v2Value('acme/leader');
    expect(leaderBefore).toBeDefined();
    const [leader, follower] =
      logsWithMsg(lbA, 'ACME leader: this replica orders certificates').length > logsWithMsg(lbA, 'ACME leader: no longer leading').length
        ? [lbA, lbB]
        : [lbB, lbA];
    const stoppedAt = Date.now();
    await leader.stopAll();
    await waitFor(() => logsWithMsg(follower, 'ACME leader: this replica orders certificates').length > 0, { timeoutMs: 5000, what: 'the follower to lead' });
    // Well within the 2 s TTL: the follower saw the key go instead of waiting for it to expire.
    expect(Date.now() - stoppedAt).toBeLessThan(2000);
    const leaderAfter = await v2Value('acme/leader');
    expect(leaderAfter).toBeDefined();
    expect(leaderAfter).not.toBe(leaderBefore);
  });
});
