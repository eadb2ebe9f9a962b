import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../support/backend.js';
import { startEtcd, v2Admin, type EtcdServer } from '../support/etcd.js';
import { addInstance, linkService, unlinkService } from '../support/kontena-agent.js';
import { canCreateNetns, createContainerNetwork, type ContainerNetwork } from '../support/netns.js';
import { startV2OnlyFront, type V2OnlyFront } from '../support/v2-only-front.js';
import { waitFor } from '../support/wait.js';

// What a Kontena grid gives the load balancer, and nothing more: a container (here a network
// namespace, marked as a container the way Podman and systemd-nspawn mark theirs) whose default
// gateway is the node, where the grid's etcd 2.3 listens on port 2379 (the v2-only stand-in);
// KONTENA_STACK_NAME, KONTENA_SERVICE_NAME and Kontena's numeric LOG_LEVEL. No ETCD_*, no ports:
// edgelb must find etcd at the gateway, choose the v2 API, and serve on port 80 what the platform
// links, as the Kontena image did.

const MAIN = path.join(import.meta.dirname, '../../dist/src/main.js');
let skip: string | undefined;
let net: ContainerNetwork | undefined;
let etcd: EtcdServer;
let front: V2OnlyFront;
let backend: Backend;
let stateDir: string;
let lb: ResultPromise | undefined;
let output = '';

beforeAll(async () => {
  skip = await canCreateNetns();
  if (skip) {
    console.log(`kontena-grid: skipped, a network namespace is needed (${skip})`);
    return;
  }
  net = await createContainerNetwork('kgrid');
  etcd = await startEtcd({ enableV2: true });
  try {
    front = await startV2OnlyFront(etcd.endpoint, { host: net.gateway, port: 2379 });
  } catch (error) {
    skip = `port 2379 on ${net.gateway} is taken: ${(error as Error).message}`;
    console.log(`kontena-grid: skipped, ${skip}`);
    return;
  }
  backend = await startBackend('grid-web', net.gateway);
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-kgrid-'));
});

afterAll(async () => {
  lb?.kill('SIGTERM');
  await lb?.catch(() => undefined);
  await backend?.close();
  await front?.stop();
  await etcd?.stop();
  await net?.remove();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

/** GET http://<container>:80/ with a Host header, from the node. */
function get(host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: net!.address, port: 80, path: '/', headers: { host }, timeout: 2000, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe('edgelb on a Kontena grid, configured only as the platform configures kontena/lb', () => {
  it('finds etcd at the gateway, reads v2, and serves linked services on port 80', async (context) => {
    if (skip || !net) return context.skip();
    const prefix = '/kontena/haproxy/grid-test/lb';
    lb = execa(net.exec[0]!, [...net.exec.slice(1), process.execPath, MAIN, 'run'], {
      env: {
        PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`,
        container: 'docker',
        KONTENA_STACK_NAME: 'grid-test',
        KONTENA_SERVICE_NAME: 'lb',
        LOG_LEVEL: '1',
        KONTENA_LB_STATE_DIR: stateDir,
      },
      extendEnv: false,
      reject: false,
      all: true,
      buffer: false,
    });
    lb.all?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const line = (msg: string) =>
      output
        .split('\n')
        .filter((l) => l.includes(`"msg":"${msg}`))
        .map((l) => JSON.parse(l) as Record<string, unknown>);

    await waitFor(() => line('watching etcd').length > 0, { timeoutMs: 20_000, what: `edgelb to watch etcd; output so far:\n${output.slice(-2000)}` });
    expect(line('neither ETCD_ENDPOINTS nor ETCD_NODE is set')[0]).toMatchObject({ endpoint: `http://${net.gateway}:2379` });
    expect(line('watching etcd')[0]).toMatchObject({ api: 'v2', apiReason: 'etcd 2.3.7 has no v3 API', prefix });

    await linkService(v2Admin(etcd), prefix, 'web', { virtualHosts: 'www.grid.test' });
    await addInstance(v2Admin(etcd), prefix, 'web', 'web-1', backend.address);
    // The migration section's step 4, in the same container and environment: `edgelb check`.
    const check = await execa(net.exec[0]!, [...net.exec.slice(1), process.execPath, MAIN, 'check', '--no-haproxy'], {
      env: { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`, container: 'docker', KONTENA_STACK_NAME: 'grid-test', KONTENA_SERVICE_NAME: 'lb' },
      extendEnv: false,
      reject: false,
    });
    expect(check.exitCode, `${check.stdout}\n${check.stderr}`).toBe(0);
    expect(check.stdout).toContain(`from etcd http://${net.gateway}:2379 (v2) ${prefix}/ at revision`);

    const served = await waitFor(
      async () => {
        const reply = await get('www.grid.test').catch(() => undefined);
        return reply?.status === 200 && reply;
      },
      { timeoutMs: 15_000, what: "www.grid.test to be served on the container's port 80" },
    );
    expect(JSON.parse(served.body)).toMatchObject({ backend: 'grid-web' });

    await unlinkService(v2Admin(etcd), prefix, 'web');
    await waitFor(async () => (await get('www.grid.test').catch(() => undefined))?.status === 503, { what: 'the unlinked service to be gone' });
    // LOG_LEVEL=1 is Ruby's info: no debug lines.
    expect(output).not.toContain('"level":20');
  });
});
