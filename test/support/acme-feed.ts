import { SnapshotParser } from '../../src/model/incremental.js';
import type { Snapshot } from '../../src/model/snapshot.js';
import type { AcmeManager } from '../../src/acme/manager.js';

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
