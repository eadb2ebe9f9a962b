import { accessSync, constants, mkdirSync, statSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { parseSettingLines, EntryError } from './model/values.js';

/** Everything edgelb needs to know, validated once and frozen; passed down, never read globally. */
export interface Config {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPath: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly statsPort: number;
  readonly stateDir: string;
  readonly haproxyBin: string;
  readonly customSettings: readonly string[];
  readonly globalSettings: readonly string[];
  readonly hardStopAfter: string;
  readonly logLevel: string;
}

/** A setting that cannot work; the message is the one line the operator sees. */
export class ConfigError extends Error {}

/** Settings by their environment name; CLI flags are mapped onto the same names before validation. */
export type SettingsInput = Readonly<Record<string, string | undefined>>;

export const SETTINGS = [
  { env: 'ETCD_ENDPOINTS', flag: 'etcd-endpoints', help: 'comma-separated etcd v3 URLs', default: 'http://127.0.0.1:2379' },
  { env: 'ETCD_NODE', flag: 'etcd-node', help: 'an etcd host name, port 2379 (used when ETCD_ENDPOINTS is not set)' },
  { env: 'ETCD_PATH', flag: 'etcd-path', help: 'the load balancer\'s etcd prefix', default: '/kontena/haproxy/<lb-name>' },
  { env: 'KONTENA_STACK_NAME', flag: 'stack-name', help: 'stack of the load balancer service (part of lb-name)' },
  { env: 'KONTENA_SERVICE_NAME', flag: 'service-name', help: 'name of the load balancer service (part of lb-name)' },
  { env: 'KONTENA_LB_HTTP_PORT', flag: 'http-port', help: 'HTTP listening port', default: '80' },
  { env: 'KONTENA_LB_HTTPS_PORT', flag: 'https-port', help: 'HTTPS listening port', default: '443' },
  { env: 'KONTENA_LB_STATS_PORT', flag: 'stats-port', help: 'HAProxy statistics port', default: '1000' },
  { env: 'KONTENA_LB_STATE_DIR', flag: 'state-dir', help: 'rendered config, certificates and sockets', default: '/var/lib/edgelb' },
  { env: 'KONTENA_LB_HAPROXY_BIN', flag: 'haproxy-bin', help: 'the HAProxy executable', default: 'haproxy' },
  { env: 'KONTENA_LB_CUSTOM_SETTINGS', flag: 'custom-settings', help: 'lines appended to HAProxy\'s defaults section' },
  { env: 'KONTENA_LB_GLOBAL_SETTINGS', flag: 'global-settings', help: 'lines appended to HAProxy\'s global section' },
  { env: 'KONTENA_LB_HARD_STOP_AFTER', flag: 'hard-stop-after', help: 'longest time an old HAProxy worker may keep connections after a reload', default: '1h' },
  { env: 'LOG_LEVEL', flag: 'log-level', help: 'trace, debug, info, warn, error', default: 'info' },
] as const;

export function loadConfig(input: SettingsInput, options: { checkFilesystem?: boolean } = {}): Config {
  const get = (name: string) => {
    const value = input[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const httpPort = port(get('KONTENA_LB_HTTP_PORT') ?? '80', 'KONTENA_LB_HTTP_PORT');
  const httpsPort = port(get('KONTENA_LB_HTTPS_PORT') ?? '443', 'KONTENA_LB_HTTPS_PORT');
  const statsPort = port(get('KONTENA_LB_STATS_PORT') ?? '1000', 'KONTENA_LB_STATS_PORT');
  const stateDir = path.resolve(get('KONTENA_LB_STATE_DIR') ?? '/var/lib/edgelb');
  const haproxyBin = get('KONTENA_LB_HAPROXY_BIN') ?? 'haproxy';
  const config: Config = {
    etcdEndpoints: etcdEndpoints(get('ETCD_ENDPOINTS'), get('ETCD_NODE')),
    etcdPath: etcdPath(get('ETCD_PATH'), get('KONTENA_STACK_NAME'), get('KONTENA_SERVICE_NAME')),
    httpPort,
    httpsPort,
    statsPort,
    stateDir,
    haproxyBin,
    customSettings: settingLines(input.KONTENA_LB_CUSTOM_SETTINGS, 'KONTENA_LB_CUSTOM_SETTINGS'),
    globalSettings: settingLines(input.KONTENA_LB_GLOBAL_SETTINGS, 'KONTENA_LB_GLOBAL_SETTINGS'),
    hardStopAfter: duration(get('KONTENA_LB_HARD_STOP_AFTER') ?? '1h', 'KONTENA_LB_HARD_STOP_AFTER'),
    logLevel: logLevel(get('LOG_LEVEL') ?? 'info'),
  };
  if (new Set([httpPort, httpsPort, statsPort]).size !== 3) {
    throw new ConfigError('KONTENA_LB_HTTP_PORT, KONTENA_LB_HTTPS_PORT and KONTENA_LB_STATS_PORT must be three different ports');
  }
  if (options.checkFilesystem !== false) {
    prepareStateDir(stateDir);
    Object.assign(config, { haproxyBin: findExecutable(haproxyBin, input.PATH ?? '') });
  }
  return Object.freeze(config);
}

function port(raw: string, name: string): number {
  if (!/^[0-9]{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    throw new ConfigError(`${name} must be a port number between 1 and 65535, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function etcdEndpoints(endpoints: string | undefined, node: string | undefined): string[] {
  const list = endpoints
    ? endpoints.split(',').map((e) => e.trim()).filter(Boolean)
    : [node ? `http://${node}:2379` : 'http://127.0.0.1:2379'];
  for (const url of list) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`ETCD_ENDPOINTS must be comma-separated URLs like http://127.0.0.1:2379, got ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ConfigError(`ETCD_ENDPOINTS URLs must use http:// or https://, got ${JSON.stringify(url)}`);
    }
  }
  return list;
}

function etcdPath(explicit: string | undefined, stack: string | undefined, service: string | undefined): string {
  if (explicit) {
    if (!explicit.startsWith('/')) throw new ConfigError(`ETCD_PATH must start with '/', got ${JSON.stringify(explicit)}`);
    return explicit.replace(/\/+$/, '');
  }
  if (!service) throw new ConfigError('set KONTENA_SERVICE_NAME (with KONTENA_STACK_NAME) or ETCD_PATH to say which load balancer this is');
  const lbName = stack && stack !== 'null' ? `${stack}/${service}` : service;
  return `/kontena/haproxy/${lbName}`;
}

function settingLines(raw: string | undefined, name: string): string[] {
  if (raw === undefined) return [];
  try {
    return parseSettingLines(raw, name);
  } catch (error) {
    if (error instanceof EntryError) throw new ConfigError(error.message);
    throw error;
  }
}

function duration(raw: string, name: string): string {
  if (!/^[0-9]+(ms|s|m|h|d)?$/.test(raw)) throw new ConfigError(`${name} must be a duration like 30s, 15m or 1h, got ${JSON.stringify(raw)}`);
  return raw;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
function logLevel(raw: string): string {
  const level = raw.toLowerCase();
  if (!LOG_LEVELS.includes(level)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}`);
  return level;
}

/** The state dir holds keys and the admin socket: created 0700 and checked writable up front. */
function prepareStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    chmodSync(dir, 0o700);
    accessSync(dir, constants.W_OK | constants.R_OK);
  } catch (error) {
    throw new ConfigError(`KONTENA_LB_STATE_DIR ${dir} is not a writable directory (${(error as Error).message.split(',')[0]})`);
  }
}

function findExecutable(bin: string, searchPath: string): string {
  const candidates = bin.includes('/')
    ? [path.resolve(bin)]
    : searchPath.split(':').filter(Boolean).map((dir) => path.join(dir, bin));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // try the next one
    }
  }
  throw new ConfigError(`KONTENA_LB_HAPROXY_BIN: cannot find an executable ${JSON.stringify(bin)}${bin.includes('/') ? '' : ' on PATH'} (install haproxy or set the path)`);
}
