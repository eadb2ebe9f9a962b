import type { PeersSettings } from '../render/peers-view.js';
import type { DesiredState, EntryWarning, Rejection } from '../model/types.js';
import type { CertWarning } from '../tls/cert-warnings.js';
import type { CertSet } from '../tls/store.js';
import type { ApplyCounters, ApplyRecord } from './recorder.js';

/** What the controller serves and how its applies went: /status, the dashboard, the metrics. */
export interface ControllerStatus {
  readonly revision: string | undefined;
  readonly state: DesiredState | undefined;
  readonly certs: CertSet;
  readonly rejected: readonly Rejection[];
  readonly warnings: readonly EntryWarning[];
  readonly excluded: readonly { service: string; reason: string }[];
  readonly lastApply: ApplyRecord | undefined;
  readonly counters: ApplyCounters;
  readonly certificateWarnings: readonly CertWarning[];
  /** KONTENA_LB_PEERS=etcd: the peers section of the config HAProxy serves (absent: off, or nothing applied yet). */
  readonly peers?: PeersSettings | undefined;
}
