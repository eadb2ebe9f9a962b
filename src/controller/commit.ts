import type { CommitResult, ConfigApplier } from '../haproxy/apply.js';
import type { CertFiles } from '../haproxy/cert-files.js';
import type { Logger } from '../log.js';
import type { ServerUpdater } from '../haproxy/server-updater.js';
import type { HealthCheck } from '../model/health-check.js';
import type { DesiredState } from '../model/types.js';
import type { RenderedConfig } from '../render/render.js';
import { checksByProxy, configServers, type ConfigServer } from '../render/servers.js';
import type { CertSet } from '../tls/store.js';

export interface CommitTargets {
  readonly applier: ConfigApplier;
  readonly servers?: ServerUpdater;
  readonly certFiles: CertFiles;
  readonly logger: Logger;
}

export interface Committed {
  readonly result: CommitResult;
  /** The health check of each proxy's servers in the config now served. */
  readonly checks: ReadonlyMap<string, HealthCheck>;
}

/**
 * Starts HAProxy with a config, or reloads it: `unchecked` for a first start (HAProxy's start
 * checks the config itself), else a validated seamless reload. Undefined: an unchecked start
 * HAProxy refused (the caller runs haproxy -c to find out why). Throws when the apply failed.
 */
export async function commitConfig(
  rendered: RenderedConfig,
  state: DesiredState,
  certs: CertSet,
  how: 'unchecked' | 'checked',
  targets: CommitTargets,
): Promise<Committed | undefined> {
  const { applier, servers: updater } = targets;
  const defaults = rendered.settings.defaultsSettings;
  const servers = configServers(state, defaults);
  let next: readonly ConfigServer[] | undefined;
  let result: CommitResult | undefined;
  // Results of first probes wait until the new worker runs (they would reach the old one).
  await updater?.beginCommit();
  try {
    if (how === 'unchecked') {
      result = await applier.startUnchecked(rendered, servers);
    } else {
      // The next worker has none of the draining servers (the old one finishes them): stop
      // sending drain commands now, before the admin socket belongs to the new worker.
      updater?.forget();
      result = await applier.commit(rendered, servers, updater?.pendingMoves(servers));
    }
    if (result) next = servers;
  } finally {
    updater?.endCommit(next);
  }
  if (!result) return undefined;
  // Servers new to this worker start DOWN; a reload's are new instances, so their probe is retried.
  updater?.proveStarted(result.startedDown, result.action === 'reloaded');
  // HAProxy serves the new config now: a certificate file left behind is only untidy.
  await targets.certFiles.prune(certs).catch((error: Error) => targets.logger.warn({ err: error.message }, 'cannot remove certificate files no longer served'));
  return { result, checks: checksByProxy(state, defaults) };
}
