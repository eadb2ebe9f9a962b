import { execa, type ResultPromise } from 'execa';
import { withEtcdClient, type EtcdAccess } from './etcd-access.js';
import type { EtcdTls } from './etcd-tls.js';
import { waitFor } from './wait.js';

/** One etcd process (Debian's etcd 3.4) of a single server or a cluster, on loopback. */

/** Raft timing; etcd's own defaults are 100 ms heartbeats and a 1000 ms election timeout. */
export interface EtcdTiming {
  readonly heartbeatMs: number;
  readonly electionMs: number;
}

export interface MemberSpec {
  readonly name: string;
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** `name=peerURL` of every member, comma-separated, as `--initial-cluster` takes it. */
  readonly initialCluster: string;
  readonly clusterToken: string;
  readonly enableV2: boolean;
  readonly tls?: EtcdTls;
  readonly timing?: EtcdTiming;
}

export interface EtcdProcess {
  readonly spec: MemberSpec;
  readonly endpoint: string;
  readonly running: boolean;
  /** Starts the process; returns at once (a cluster member cannot answer before a quorum runs). */
  spawn(): void;
  /** Polls until a read through this member succeeds as `access`. */
  waitServing(access: EtcdAccess, timeoutMs?: number): Promise<void>;
  /** Signals the process and waits for it to exit; the data dir stays. */
  halt(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

export function peerUrl(spec: MemberSpec): string {
  return `http://127.0.0.1:${spec.peerPort}`;
}

export function clientUrl(spec: MemberSpec): string {
  return `${spec.tls ? 'https' : 'http'}://127.0.0.1:${spec.clientPort}`;
}

function etcdArgs(spec: MemberSpec): string[] {
  const endpoint = clientUrl(spec);
  const args = [
    '--name',
    spec.name,
    '--data-dir',
    spec.dataDir,
    '--listen-client-urls',
    endpoint,
    '--advertise-client-urls',
    endpoint,
    // Peers stay on plain http: the tests are about what clients see.
    '--listen-peer-urls',
    peerUrl(spec),
    '--initial-advertise-peer-urls',
    peerUrl(spec),
    '--initial-cluster',
    spec.initialCluster,
    '--initial-cluster-state',
    'new',
    '--initial-cluster-token',
    spec.clusterToken,
    '--log-level',
    'error',
    '--logger',
    'zap',
  ];
  if (spec.enableV2) args.push('--enable-v2');
  if (spec.tls) {
    args.push('--cert-file', spec.tls.server.certFile, '--key-file', spec.tls.server.keyFile, '--trusted-ca-file', spec.tls.caFile, '--client-cert-auth');
  }
  if (spec.timing) {
    args.push('--heartbeat-interval', String(spec.timing.heartbeatMs), '--election-timeout', String(spec.timing.electionMs));
  }
  return args;
}

export function etcdProcess(spec: MemberSpec): EtcdProcess {
  let child: ResultPromise | undefined;
  let exited = false;
  let stderrTail = '';

  return {
    spec,
    endpoint: clientUrl(spec),
    get running() {
      return child !== undefined && !exited;
    },
    spawn() {
      if (child) throw new Error(`etcd ${spec.name} is already running`);
      exited = false;
      stderrTail = '';
      child = execa('etcd', etcdArgs(spec), { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: false, cleanup: true });
      // Read stderr so etcd never blocks on a full pipe; keep the end for the error when it dies.
      child.stderr?.on('data', (chunk: Buffer) => {
        stderrTail = (stderrTail + chunk.toString('utf8')).slice(-2000);
      });
      void child.then(() => {
        exited = true;
      });
    },
    async waitServing(access, timeoutMs = 20_000) {
      await waitFor(() => withEtcdClient(clientUrl(spec), access, (client) => client.get('probe').then(() => true)), {
        timeoutMs,
        what: `etcd ${spec.name} to serve at ${clientUrl(spec)}`,
        bail: () => {
          if (exited) throw new Error(`etcd ${spec.name} exited: ${stderrTail.trim() || 'no output'}`);
        },
      });
    },
    async halt(signal) {
      if (!child) return;
      child.kill(signal);
      await child;
      child = undefined;
    },
  };
}
