import { closeSync, openSync, readFileSync } from 'node:fs';
import { logSink } from './log-capture.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEdgelb, type Edgelb } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { readEnvCerts } from '../../src/sources/env-certs.js';
import type { RawCert } from '../../src/tls/bundle.js';
import type { EtcdServer } from './etcd.js';
import { freePort } from './ports.js';

export interface TestEdgelb extends Edgelb {
  readonly config: Config;
  readonly httpPort: number;
  readonly prefix: string;
  /** Every log line, parsed, in order. */
  readonly logs: Record<string, unknown>[];
  /**
   * What HAProxy wrote to its standard output so far (the access log): a file in the state dir
   * here, where `edgelb run` lets HAProxy inherit its own stdout. The logger never sees it.
   */
  haproxyStdout(): string;
  /** Writes `services/web/upstreams/a` style keys under this LB's prefix. */
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  stopAll(): Promise<void>;
}

let counter = 0;

export interface TestEdgelbOptions {
  /** Certificates as readEnvCerts delivers them from SSL_CERTS / SSL_CERT_* (fixed for the life of the LB). */
  readonly envCerts?: readonly RawCert[];
  /** The source's resume deadline (startEdgelb's etcdResumeTimeoutMs): a test that holds a watch back longer sets it. */
  readonly etcdResumeTimeoutMs?: number;
  /** How long after a runtime change haproxy.cfg is written (startEdgelb's configWriteDelayMs). */
  readonly configWriteDelayMs?: number;
  /** The peer monitor's grace period and interval (startEdgelb's peerMonitor). */
  readonly peerMonitor?: { readonly graceMs: number; readonly intervalMs: number };
}

/**
 * The controller in this process, with its own HAProxy on random loopback ports and a temp state dir.
 * `options.envCerts` stands in for the environment's certificates (startEdgelb's third argument).
 * `etcd` gives the default ETCD_ENDPOINTS and the client put/del write through (for a cluster:
 * every member's endpoint, comma-separated, and the cluster's client).
 */
export async function startTestEdgelb(
  etcd: Pick<EtcdServer, 'endpoint' | 'client'>,
  overrides: Record<string, string> = {},
  reuse?: { stateDir: string; prefix: string; httpPort: number },
  options: TestEdgelbOptions = {},
): Promise<TestEdgelb> {
  const stateDir = reuse?.stateDir ?? (await mkdtemp(path.join(os.tmpdir(), 'edgelb-state-')));
  const prefix = reuse?.prefix ?? `/kontena/haproxy/test-${process.pid}-${++counter}`;
  const httpPort = reuse?.httpPort ?? (await freePort());
  const config = loadConfig({
    PATH: process.env.PATH,
    ETCD_ENDPOINTS: etcd.endpoint,
    ETCD_PATH: prefix,
    KONTENA_LB_HTTP_PORT: String(httpPort),
    KONTENA_LB_HTTPS_PORT: String(await freePort()),
    KONTENA_LB_STATS_PORT: String(await freePort()),
    KONTENA_LB_ADMIN_PORT: String(await freePort()),
    KONTENA_LB_STATE_DIR: stateDir,
    LOG_LEVEL: 'debug',
    ...overrides,
  });
  const logs: Record<string, unknown>[] = [];
  const sink = logSink(logs);
  // Appended to, so a controller started again on the same state dir adds to it.
  const stdoutFile = path.join(stateDir, 'haproxy.stdout');
  const stdoutFd = openSync(stdoutFile, 'a', 0o600);
  // The overrides stand for the process environment, as main.ts passes process.env.
  const edgelb = startEdgelb(config, createLogger(config.logLevel, false, sink), {
    envCerts: options.envCerts ?? readEnvCerts(overrides),
    envChallenges: overrides,
    haproxyStdout: stdoutFd,
    ...(options.etcdResumeTimeoutMs !== undefined ? { etcdResumeTimeoutMs: options.etcdResumeTimeoutMs } : {}),
    ...(options.configWriteDelayMs !== undefined ? { configWriteDelayMs: options.configWriteDelayMs } : {}),
    ...(options.peerMonitor ? { peerMonitor: options.peerMonitor } : {}),
  });
  return {
    ...edgelb,
    config,
    httpPort,
    prefix,
    logs,
    haproxyStdout: () => readFileSync(stdoutFile, 'utf8'),
    put: async (key, value) => {
      await etcd.client.put(`${prefix}/${key}`).value(value);
    },
    del: async (key) => {
      await etcd.client.delete().key(`${prefix}/${key}`);
    },
    async stopAll() {
      await edgelb.stop();
      closeSync(stdoutFd);
      if (!reuse) await rm(stateDir, { recursive: true, force: true });
    },
  };
}
