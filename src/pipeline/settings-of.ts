import path from 'node:path';
import type { Config } from '../config.js';
import type { ParseOptions } from '../model/parse.js';
import { TEMPLATES_DIR } from '../render/render.js';
import type { RenderSettings } from '../render/render-settings.js';
import type { SettingsBase, TlsOptions } from './desired-config.js';

/** Paths inside the state dir; one place, so code and templates never repeat them. */
export function statePaths(stateDir: string) {
  return {
    configFile: path.join(stateDir, 'haproxy.cfg'),
    adminSocket: path.join(stateDir, 'haproxy.sock'),
    masterSocket: path.join(stateDir, 'master.sock'),
    masterPidFile: path.join(stateDir, 'haproxy.pid'),
    certsDir: path.join(stateDir, 'certs'),
    crtList: path.join(stateDir, 'certs', 'crt-list'),
    challengeMap: path.join(stateDir, 'acme-challenges.map'),
    canaryMap: path.join(stateDir, 'canary.map'),
    serverStateFile: path.join(stateDir, 'server-state'),
    peerSocket: path.join(stateDir, 'peers.sock'),
    peersCert: path.join(stateDir, 'peers.pem'),
    peersCa: path.join(stateDir, 'peers-ca.pem'),
    metricsSocket: path.join(stateDir, 'metrics.sock'),
  };
}

export function renderSettingsOf(config: Config): RenderSettings {
  return {
    httpPort: config.httpPort,
    adminSocket: statePaths(config.stateDir).adminSocket,
    errorsDir: path.join(TEMPLATES_DIR, 'errors'),
    challengeMap: statePaths(config.stateDir).challengeMap,
    canaryMap: statePaths(config.stateDir).canaryMap,
    globalSettings: config.globalSettings,
    defaultsSettings: config.customSettings,
    hardStopAfter: config.hardStopAfter,
    serverStateFile: statePaths(config.stateDir).serverStateFile,
    peerSocket: statePaths(config.stateDir).peerSocket,
    ...(config.peersCert ? { peersTls: { crt: statePaths(config.stateDir).peersCert, caFile: statePaths(config.stateDir).peersCa } } : {}),
    checkInterval: `${config.checkIntervalMs}ms`,
    checkFastInterval: `${Math.min(250, config.checkIntervalMs)}ms`,
    metricsSocket: statePaths(config.stateDir).metricsSocket,
    acceptProxy: config.acceptProxy,
    trustedProxies: config.trustedProxies,
    tunnelTimeout: config.tunnelTimeout,
    healthUri: config.healthUri,
    accessLog: config.accessLog,
    syslog: config.syslogTarget,
    stats: config.statsPassword === undefined ? undefined : { port: config.statsPort, password: config.statsPassword },
  };
}

/** The ports the load balancer itself listens on, which no TCP service may take. */
export function parseOptionsOf(config: Config): ParseOptions {
  return { reservedPorts: [config.httpPort, config.httpsPort, config.statsPort, config.adminPort] };
}

/** The HTTPS listener as configured (used whenever at least one certificate is served). */
function tlsOptionsOf(config: Config): TlsOptions {
  const { sslCiphersuites } = config;
  return {
    port: config.httpsPort,
    http2: config.http2,
    minVersion: config.sslMinVersion,
    ciphers: config.sslCiphers,
    ...(sslCiphersuites ? { ciphersuites: sslCiphersuites } : {}),
  };
}

/** What every render of `run`, `check` and `render` starts from, with the state files under `stateDir`. */
export function settingsBaseOf(config: Config, stateDir: string = config.stateDir): SettingsBase {
  return {
    render: renderSettingsOf({ ...config, stateDir }),
    tls: tlsOptionsOf(config),
    crtList: statePaths(stateDir).crtList,
    caDir: statePaths(stateDir).certsDir,
  };
}
