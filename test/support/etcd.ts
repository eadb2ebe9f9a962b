import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Etcd3 } from 'etcd3';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface EtcdServer {
  readonly endpoint: string;
  readonly client: Etcd3;
  readonly dataDir: string;
  /** Stops the server (SIGKILL when `kill`), keeping its data dir. */
  halt(kill?: boolean): Promise<void>;
  /** Starts it again on the same ports and data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A real etcd (Debian's etcd-server) on random loopback ports with a temp data dir. */
export async function startEtcd(): Promise<EtcdServer> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  let child: ResultPromise | undefined;

  const launch = async () => {
    child = execa('etcd', [
      '--name', 'test', '--data-dir', dataDir,
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `test=http://127.0.0.1:${peerPort}`,
      '--log-level', 'error', '--logger', 'zap',
    ], { reject: false, stdio: 'ignore', cleanup: true });
    // A new client per attempt: one client's circuit breaker stays open for 5 s after three
    // refused attempts, which would make every restart look 5 s slower than it is.
    await waitFor(async () => {
      const probe = new Etcd3({ hosts: endpoint, dialTimeout: 1000 });
      try {
        return await probe.get('probe').then(() => true);
      } finally {
        probe.close();
      }
    }, { timeoutMs: 20_000, what: 'etcd to start' });
  };
  const halt = async (kill = false) => {
    if (!child) return;
    child.kill(kill ? 'SIGKILL' : 'SIGTERM');
    await child;
    child = undefined;
  };
  await launch();
  const client = new Etcd3({ hosts: endpoint });
  return {
    endpoint,
    client,
    dataDir,
    halt,
    restart: launch,
    async stop() {
      client.close();
      await halt();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
