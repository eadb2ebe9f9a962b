import { AcmeManager, type AcmeManagerOptions } from '../../src/acme/manager.js';
import { createLogger } from '../../src/log.js';
import { SnapshotParser } from '../../src/model/incremental.js';
import type { Snapshot } from '../../src/model/snapshot.js';
import { EtcdSource } from '../../src/sources/etcd.js';
import { etcdClient } from './etcd-connection.js';
import { logSink } from './log-capture.js';

/**
 * The source's snapshots for an AcmeManager running without a controller: its own keys, and
 * the routes (its domains) parsed here, as the controller hands them over in edgelb (app.ts).
 */
export function feedAcme(manager: AcmeManager): (snapshot: Snapshot) => void {
  const parser = new SnapshotParser({ reservedPorts: [] });
  return (snapshot) => {
    manager.offerServices(parser.parse(snapshot).state);
    manager.offer(snapshot);
  };
}

export interface TestManager {
  readonly manager: AcmeManager;
  readonly logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** An AcmeManager in this process with its own etcd client and source (on its prefix), logging into an array. */
export function startTestManager(etcdEndpoint: string, options: Omit<AcmeManagerOptions, 'store' | 'logger'>): TestManager {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('debug', false, logSink(logs));
  const client = etcdClient(etcdEndpoint);
  const manager = new AcmeManager({ store: client.store('v3'), logger, ...options });
  const source = new EtcdSource({ client, prefix: options.prefix, logger: logger.child({ component: 'etcd' }), onSnapshot: feedAcme(manager) });
  source.start();
  manager.start();
  let stopped = false;
  return {
    manager,
    logs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await manager.stop();
      await source.stop();
      client.close();
    },
  };
}
