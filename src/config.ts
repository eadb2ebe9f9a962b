import { accessSync, chmodSync, constants, mkdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from './settings/config-error.js';
import { parseSettings, type Config, type SettingsInput } from './settings/schema.js';
import type { PlatformFacts } from './settings/setting.js';

// Environment and flags → one validated, frozen Config. What each setting is, its default and
// its syntax are in src/settings/ (one schema per setting); this adds what the file system says.

export { ConfigError };
export type { Config, SettingsInput, PlatformFacts };
export type { AcmeSettings } from './settings/acme.js';
export { SETTINGS } from './settings/schema.js';
export { flagProperty } from './settings/flags.js';

const NO_PLATFORM: PlatformFacts = { inContainer: false, defaultGateway: undefined };

/**
 * `checkFilesystem: false` (the CLI's dry runs, tests) neither creates the state dir nor looks
 * for haproxy, and reads no file a setting names except etcd's TLS and password files and the peers'
 * certificate (KONTENA_LB_PEERS_CERT_FILE: a dry run checks it too).
 */
export function loadConfig(input: SettingsInput, options: { checkFilesystem?: boolean; platform?: PlatformFacts } = {}): Config {
  const checkFilesystem = options.checkFilesystem !== false;
  const config = parseSettings(input, { platform: options.platform ?? NO_PLATFORM, readFiles: checkFilesystem });
  if (!checkFilesystem) return Object.freeze(config);
  prepareStateDir(config.stateDir);
  const haproxyBin = findExecutable(config.haproxyBin, input.PATH ?? '');
  if (config.certsDir !== undefined && !statSync(config.certsDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ConfigError(`KONTENA_LB_CERTS_DIR ${config.certsDir} is not a directory`);
  }
  if (config.peers) checkLocalAddress(config.peers.address);
  return Object.freeze({ ...config, haproxyBin });
}

/**
 * HAProxy binds the local peer on KONTENA_LB_PEERS_ADDRESS: an address this host does not have
 * would make it refuse every config, so it stops the program here, in one line, instead.
 */
function checkLocalAddress(address: string): void {
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const local = Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
  if (!local.includes(host)) {
    throw new ConfigError(
      `KONTENA_LB_PEERS_ADDRESS ${address}: ${host} is not an address of this host (it has ${local.join(', ')}); give the container's own address the other replicas reach`,
    );
  }
}

/** The executable `bin` names, looked up on `searchPath` (and the sbin dirs) unless it has a slash. */
export function locateExecutable(bin: string, searchPath: string): string | undefined {
  // Debian installs haproxy in /usr/sbin, which a non-login shell's PATH often lacks.
  const candidates = bin.includes('/')
    ? [path.resolve(bin)]
    : [...searchPath.split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean).map((dir) => path.join(dir, bin));
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
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
  const found = locateExecutable(bin, searchPath);
  if (found) return found;
  throw new ConfigError(
    `KONTENA_LB_HAPROXY_BIN: cannot find an executable ${JSON.stringify(bin)}${bin.includes('/') ? '' : ' on PATH'} (install haproxy or set the path)`,
  );
}
