import { getFromUnixSocket, startAdminServer, type AdminServer } from './admin/server.js';
import { readServerStats } from './admin/haproxy-stats.js';
import { readPeerSessions } from './admin/haproxy-peers.js';
import { PeerMonitor } from './admin/peer-monitor.js';
import { ApplyRetry } from './apply-retry.js';
import type { Config } from './config.js';
import { Controller } from './controller/controller.js';
import { EtcdClient } from './etcd/client.js';
import { ConfigApplier } from './haproxy/apply.js';
import { HaproxyProcess } from './haproxy/process.js';
import type { Logger } from './log.js';
import { CertFiles } from './haproxy/cert-files.js';
import { preparePeerTls } from './haproxy/peer-cert-files.js';
import { ChallengeMap } from './haproxy/challenge-map.js';
import { HaproxyRuntime } from './haproxy/runtime.js';
import { ServerUpdater } from './haproxy/server-updater.js';
import { ServerProver } from './haproxy/server-prover.js';
import { probeServer } from './haproxy/health-probe.js';
import {
  createChallengeMapRenderer,
  createCrtListRenderer,
  createSectionRenderer,
  createServerArgsRenderer,
  createServerStateRenderer,
} from './render/render.js';
import { parseOptionsOf, settingsBaseOf, statePaths } from './pipeline/settings-of.js';
import { withheldFromHook } from './settings/acme-dns.js';
import { SETTINGS } from './settings/schema.js';

import type { DesiredState } from './model/types.js';
import { certsDirProvider, envCertProvider } from './sources/cert-providers.js';
import type { CertOffer } from './tls/cert-provider.js';
import { EtcdSource, type Snapshot } from './sources/etcd.js';
import { PeerRegistration } from './sources/peer-registration.js';
import type { RawCert } from './tls/bundle.js';
import { dnsSolverOf } from './acme/dns-solver.js';
import { AcmeManager } from './acme/manager.js';
import { caStoreFromEntries } from './tls/ca-bundles.js';
import { vaultCertsFromEntries } from './tls/vault.js';
import { packageVersion } from './util/package-root.js';

export interface Edgelb {
  readonly controller: Controller;
  readonly haproxy: HaproxyProcess;
  readonly source: EtcdSource;
  /** /healthz, /status and /metrics on KONTENA_LB_ADMIN_PORT. */
  readonly admin: AdminServer;
  readonly configFile: string;
  /** SIGHUP: read everything from etcd again and re-apply. */
  resync(): void;
  stop(options?: { graceful?: boolean }): Promise<void>;
}

/**
 * The controller's first probe of a new server: one attempt may take up to a second (less with a
 * shorter check interval); a starting instance is retried for two check intervals (at most 10 s),
 * by when HAProxy's own checks have had their say.
 */
export function proofTimings(checkIntervalMs: number): { timeoutMs: number; windowMs: number } {
  return { timeoutMs: Math.min(checkIntervalMs, 1000), windowMs: Math.min(2 * checkIntervalMs, 10_000) };
}

/** Wires the pipeline: etcd source → controller (parse, render) → applier → supervised HAProxy. */
export interface EnvironmentInputs {
  readonly envCerts?: readonly RawCert[];
  readonly envChallenges?: Readonly<Record<string, string | undefined>>;
  /** How long a lost etcd watch may take to resume by itself before everything is read again (default 5 s; tests lengthen it). */
  readonly etcdResumeTimeoutMs?: number;
  /** How long after a runtime change haproxy.cfg is written (default 500 ms; tests lengthen it). */
  readonly configWriteDelayMs?: number;
  /** A file descriptor for HAProxy's stdout (its access log); default: edgelb's own stdout, inherited. Tests set it. */
  readonly haproxyStdout?: number;
  /** KONTENA_LB_PEERS=etcd: how long a peer may stay unconnected before a warning, how often HAProxy is asked (default 30 s, 5 s; tests shorten them). */
  readonly peerMonitor?: { readonly graceMs: number; readonly intervalMs: number };
  /** edgelb cannot start as configured (nothing was started that serves): main.ts stops the program. */
  readonly onFatal?: (message: string) => void;
}

export function startEdgelb(config: Config, logger: Logger, options: EnvironmentInputs = {}): Edgelb {
  const paths = statePaths(config.stateDir);
  const settingsBase = settingsBaseOf(config);
  if (config.statsPassword === undefined) {
    logger.info({ statsPort: config.statsPort }, 'statistics page off: set STATS_PASSWORD to turn it on');
  }
  const haproxy = new HaproxyProcess({
    // A runtime change reaches haproxy.cfg a moment after it is applied: a restart waits for it.
    beforeRestart: (): Promise<void> => applier.beforeRestart(),
    bin: config.haproxyBin,
    configFile: paths.configFile,
    masterSocket: paths.masterSocket,
    adminSocket: paths.adminSocket,
    pidFile: paths.masterPidFile,
    logger: logger.child({ component: 'haproxy' }),
    stdout: options.haproxyStdout ?? 'inherit',
  });
  const runtime = new HaproxyRuntime(paths.adminSocket);
  const applier = new ConfigApplier({
    configFile: paths.configFile,
    haproxyBin: config.haproxyBin,
    haproxy,
    logger,
    runtime,
    serverStateFile: paths.serverStateFile,
    renderServerState: createServerStateRenderer(),
    writeDelayMs: options.configWriteDelayMs,
  });
  const serversLogger = logger.child({ component: 'servers' });
  const prover = new ServerProver({ probe: probeServer, logger: serversLogger, ...proofTimings(config.checkIntervalMs) });
  const servers = new ServerUpdater(runtime, serversLogger, config.drainTimeoutMs, prover);
  let latestSnapshot: Snapshot | undefined;
  let parsedRoutes: DesiredState | undefined;
  const applyRetry = new ApplyRetry({
    retry: () => latestSnapshot && controller.offer(latestSnapshot),
    logger: logger.child({ component: 'controller' }),
  });
  const controller = new Controller({
    render: createSectionRenderer(),
    serverArgs: createServerArgsRenderer(),
    settings: settingsBase,
    parseOptions: parseOptionsOf(config),
    applier,
    certFiles: new CertFiles({ dir: paths.certsDir, crtList: paths.crtList, renderCrtList: createCrtListRenderer(), runtime }),
    challengeMap: new ChallengeMap(paths.challengeMap, runtime, createChallengeMapRenderer()),
    canaryMap: new ChallengeMap(paths.canaryMap, runtime, createChallengeMapRenderer()),
    servers,
    envChallenges: options.envChallenges,
    defaultCert: config.defaultCert,
    certWarnDays: config.certWarnDays,
    // Known once ACME started (undefined meanwhile, and with ACME off: every state in etcd counts).
    acmeDomains: () => acme?.wanted.domains,
    vaultCerts: (entries) => vaultCertsFromEntries(entries, config.vaultKey),
    localPeer: config.peers,
    caBundles: (entries) => caStoreFromEntries(entries, config.vaultKey),
    // ACME takes its domains from the controller's parse, never parsing the keyspace itself.
    onParsed: (state) => {
      parsedRoutes = state;
      acme?.offerServices(state);
    },
    onApplyFailed: (error) => applyRetry.failed(error),
    logger: logger.child({ component: 'controller' }),
  });
  const client = new EtcdClient(config.etcd);
  // ACME writes to etcd (its state, the leader key): it starts once the API in use is known,
  // which with ETCD_API=auto and an empty prefix is when the platform first writes.
  let acme: AcmeManager | undefined;
  let stopping = false;
  // KONTENA_LB_PEERS=etcd: this replica's peer address, registered once the API in use is known.
  let peerRegistration: PeerRegistration | undefined;
  const peer = config.peers;
  if (peer) {
    void client.whenDecided().then((store) => {
      if (stopping) return;
      peerRegistration = new PeerRegistration({ store, prefix: config.etcdPath, peer, logger: logger.child({ component: 'peers' }) });
      peerRegistration.start();
    });
  }
  // The peer sessions HAProxy holds, with a warning for one down past the grace period (/status, /metrics).
  const peerMonitor = peer
    ? new PeerMonitor({
        readSessions: () => readPeerSessions(paths.adminSocket),
        applied: () => controller.status().peers,
        running: () => haproxy.running,
        authenticated: config.peersCert !== undefined,
        logger: logger.child({ component: 'peers' }),
        ...options.peerMonitor,
      })
    : undefined;
  peerMonitor?.start();
  const acmeSettings = config.acme;
  if (acmeSettings) {
    void client.whenDecided().then((store) => {
      if (stopping) return;
      acme = new AcmeManager({
        store,
        prefix: config.etcdPath,
        logger: logger.child({ component: 'acme' }),
        email: acmeSettings.email,
        directoryUrl: acmeSettings.directoryUrl,
        directoryCa: acmeSettings.directoryCa,
        envDomains: acmeSettings.domains,
        renewDays: acmeSettings.renewDays,
        checkIntervalMs: acmeSettings.checkIntervalMs,
        leaderTtlSeconds: acmeSettings.leaderTtlSeconds,
        challenge: config.acmeDns.challenge,
        dns: dnsSolverOf(config.acmeDns, withheldFromHook(SETTINGS, Object.keys(options.envChallenges ?? {}))),
        vaultKey: config.vaultKey,
        httpPort: config.httpPort,
      });
      if (parsedRoutes) acme.offerServices(parsedRoutes);
      if (latestSnapshot) acme.offer(latestSnapshot);
      acme.start();
    });
  }
  const source = new EtcdSource({
    client,
    prefix: config.etcdPath,
    logger: logger.child({ component: 'etcd' }),
    ...(options.etcdResumeTimeoutMs !== undefined ? { resumeTimeoutMs: options.etcdResumeTimeoutMs } : {}),
    onSnapshot: (snapshot) => {
      latestSnapshot = snapshot;
      controller.offer(snapshot);
      acme?.offer(snapshot);
      peerRegistration?.offer(snapshot);
    },
  });
  const admin = startAdminServer({
    port: config.adminPort,
    host: config.adminBind,
    inputs: {
      version: packageVersion(),
      etcdPrefix: config.etcdPath,
      controller,
      haproxy,
      etcd: source,
      renderSettings: settingsBase.render,
      serverStats: () => readServerStats(paths.adminSocket),
      probes: prover,
      ...(peerMonitor ? { peers: peerMonitor } : {}),
    },
    haproxyMetrics: () => getFromUnixSocket(paths.metricsSocket, '/metrics'),
    logger: logger.child({ component: 'admin' }),
    password: config.adminPassword,
    acme: () => acme?.status(),
  });
  const offer = (certs: CertOffer) => controller.offerCerts(certs);
  void envCertProvider(options.envCerts ?? []).start(offer);
  const certsDir = config.certsDir === undefined ? undefined : certsDirProvider(config.certsDir, logger.child({ component: 'certs-dir' }));
  // The directory is read before etcd, so the first config already has its certificates.
  const certsRead = (certsDir?.start(offer) ?? Promise.resolve()).catch((error: Error) => {
    logger.error({ err: error.message }, 'cannot watch KONTENA_LB_CERTS_DIR; serving the other certificates');
  });
  // The peers' TLS files exist before the first config names them. Without them nothing starts:
  // never a config that would fall back to plain peer traffic.
  const peerFiles = config.peers
    ? preparePeerTls(config.peersCert, settingsBase.render.peersTls, config.certWarnDays, logger.child({ component: 'peers' }))
    : undefined;
  void Promise.all([certsRead, peerFiles]).then(
    () => source.start(),
    (error: Error) => {
      const message = `cannot write the peers certificate (KONTENA_LB_PEERS_CERT) to the state dir: ${error.message}`;
      logger.error({ err: error.message }, message);
      options.onFatal?.(message);
    },
  );

  return {
    controller,
    haproxy,
    source,
    admin,
    configFile: paths.configFile,
    resync: () => source.resync(),
    async stop(options = {}) {
      // First: interrupts orders (deleting their challenge tokens) and resigns, so another replica takes over at once.
      stopping = true;
      await acme?.stop();
      // The other replicas drop this one from their peers at once rather than after the lease's TTL.
      await peerRegistration?.stop();
      await peerMonitor?.stop();
      await admin.close();
      controller.stop();
      await certsDir?.stop();
      await source.stop();
      client.close();
      await controller.whenIdle();
      // The next run may start from this file (the last good config): it must hold what is served.
      await applier.flush().catch((error: Error) => logger.error({ err: error }, 'cannot write the config file before stopping'));
      applier.stop();
      // After the last apply: it could still start a drain or schedule a retry.
      servers.stop();
      applyRetry.stop();
      await haproxy.stop({ graceful: options.graceful, timeoutMs: options.graceful ? 30_000 : 5000 });
    },
  };
}
