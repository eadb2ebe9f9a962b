import { createLogger } from '../../src/log.js';
import { EtcdSource } from '../../src/sources/etcd.js';
import { AcmeManager, type AcmeManagerOptions } from '../../src/acme/manager.js';
import { feedAcme } from './acme-feed.js';
import { etcdClient } from './etcd-connection.js';

/**
 * An AcmeManager in a process of its own, so a test can SIGKILL it mid-order (a real crash: no
 * resign, no cleanup, the lease just stops being renewed). Settings come as JSON in
 * EDGELB_ACME_REPLICA; logs are JSON lines on stdout. SIGTERM stops it gracefully.
 */
type ReplicaSettings = Omit<AcmeManagerOptions, 'store' | 'logger'> & { readonly endpoint: string };

const settings = JSON.parse(process.env.EDGELB_ACME_REPLICA ?? '{}') as ReplicaSettings;
const logger = createLogger('debug', false);
const client = etcdClient(settings.endpoint);
const { endpoint: _endpoint, ...options } = settings;
const manager = new AcmeManager({ ...options, store: client.store('v3'), logger: logger.child({ component: 'acme' }) });
const source = new EtcdSource({
  client,
  prefix: settings.prefix,
  logger: logger.child({ component: 'etcd' }),
  onSnapshot: feedAcme(manager),
});
source.start();
manager.start();

process.on('SIGTERM', () => {
  void (async () => {
    await manager.stop();
    await source.stop();
    client.close();
    process.exit(0);
  })();
});
