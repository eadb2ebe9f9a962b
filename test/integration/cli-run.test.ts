import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../support/backend.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const MAIN = path.join(import.meta.dirname, '../../src/main.ts');
const run = (args: string[], env: Record<string, string>) =>
  execa('node', ['--import', 'tsx', MAIN, ...args], { env: { ...env, PATH: process.env.PATH ?? '' }, extendEnv: false, reject: false, all: true });

describe('edgelb run as a process', () => {
  let etcd: EtcdServer;
  let backend: Backend;
  let stateDir: string;

  beforeAll(async () => {
    etcd = await startEtcd();
    backend = await startBackend('cli');
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-cli-'));
  });
  afterAll(async () => {
    await backend?.close();
    await etcd?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('refuses a bad setting with one line and exit code 2', async () => {
    const result = await run(['run'], { KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_HTTP_PORT: 'eighty', KONTENA_LB_STATE_DIR: stateDir });
    expect(result.exitCode).toBe(2);
    expect(result.all?.trim().split('\n')).toEqual(['edgelb: KONTENA_LB_HTTP_PORT must be a port number between 1 and 65535, got "eighty"']);
  });

  it('serves routes, re-reads etcd on SIGHUP, and exits 0 on SIGTERM after in-flight requests', async () => {
    const httpPort = await freePort();
    const prefix = '/kontena/haproxy/cli-test';
    const child: ResultPromise = run(['run', '--http-port', String(httpPort)], {
      ETCD_ENDPOINTS: etcd.endpoint,
      KONTENA_SERVICE_NAME: 'cli-test',
      KONTENA_LB_HTTPS_PORT: String(await freePort()),
      KONTENA_LB_STATS_PORT: String(await freePort()),
      KONTENA_LB_ADMIN_PORT: String(await freePort()),
      KONTENA_LB_STATE_DIR: stateDir,
      KONTENA_LB_VAULT_KEY: 'a-test-vault-key-that-must-not-be-logged',
    });
    let output = '';
    child.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await etcd.client.put(`${prefix}/services/web/virtual_hosts`).value('cli.test');
      await etcd.client.put(`${prefix}/services/web/upstreams/a`).value(backend.address);
      await waitFor(async () => (await get(httpPort, '/', 'cli.test')).backend === 'cli', { timeoutMs: 20_000, what: 'route via the CLI' });

      child.kill('SIGHUP');
      await waitFor(() => output.includes('SIGHUP: re-reading etcd') && output.split('watching etcd').length >= 3, { what: 'a re-read after SIGHUP' });

      child.kill('SIGTERM');
      const result = await child;
      expect(result.exitCode).toBe(0);
      expect(output).toContain('stopping: HAProxy finishes in-flight requests');
      await expect(get(httpPort, '/', 'cli.test')).rejects.toThrow(/ECONNREFUSED/);
      expect(output).not.toContain('a-test-vault-key-that-must-not-be-logged');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
