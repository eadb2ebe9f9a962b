#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { Command } from 'commander';
import { startEdgelb } from './app.js';
import { ConfigError, loadConfig, SETTINGS, type SettingsInput } from './config.js';
import { registerCertCommands } from './cli/cert.js';
import { registerCheckCommand } from './cli/check.js';
import { addSettingFlags, type CliDeps } from './cli/deps.js';
import { createProgress } from './cli/progress.js';
import { registerRenderCommand } from './cli/render.js';
import { registerStatusCommand } from './cli/status.js';
import { describeConnection } from './etcd/connection.js';
import { platformFacts } from './etcd/platform.js';
import { createLogger } from './log.js';
import { withFlags } from './settings/flags.js';
import { readEnvCerts } from './sources/env-certs.js';
import { packageRoot } from './util/package-root.js';

// The composition root: the only module that reads process.env, handles signals or exits.

const version = (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

/** The environment with the command's setting flags written over it. */
function settingsFrom(flags: Readonly<Record<string, unknown>>): SettingsInput {
  return withFlags(process.env, flags, SETTINGS);
}

/** Inside a container the platform's etcd is at the default gateway (as with the Kontena image). */
const platform = platformFacts({
  exists: existsSync,
  readFile: (file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  },
  env: process.env,
});

// grpc-js (under etcd3) hands an endpoint's host to TLS as the server name even when it is an
// IP address (https://10.0.0.1:2379, what ETCD_NODE gives), and Node then prints DEP0123 on
// stderr: two lines that are not log lines and break a command's one-line failure. The
// certificate is still checked against the IP; only that warning is dropped.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const options = rest[0];
  const code = typeof options === 'object' && options !== null ? (options as { code?: unknown }).code : rest[1];
  if (code === 'DEP0123') return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

function fail(message: string, code = 2): never {
  process.stderr.write(`edgelb: ${message}\n`);
  process.exit(code);
}

const program = new Command('edgelb')
  .description('Edge load balancer controller: serves the service links in etcd through a supervised HAProxy')
  .version(version)
  .showHelpAfterError('(run with --help for usage)');

const run = program.command('run').description('run the controller: watch etcd and keep HAProxy serving it');
addSettingFlags(run);
run.action(async (flags: Record<string, string | undefined>) => {
  // The controller's heap peaks at the start (a full parse and render, HAProxy's first states,
  // every server probed once: with 10,000 services some 60 MB more for a few seconds), and by
  // default V8 keeps that much memory while the controller then idles. Favouring size over speed
  // keeps it near what is live; a change touches a few services, so its cost does not show.
  // Measured in BENCHMARKS.md ("Scale").
  v8.setFlagsFromString('--optimize-for-size');
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(settingsFrom(flags), { platform });
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  const logger = createLogger(config.logLevel, process.stdout.isTTY === true);
  logger.info({ version, etcd: describeConnection(config.etcd), path: config.etcdPath, stateDir: config.stateDir }, 'edgelb starting');
  if (config.etcd.endpointsFrom === 'default gateway') {
    logger.info(
      { endpoint: config.etcd.endpoints[0] },
      "neither ETCD_ENDPOINTS nor ETCD_NODE is set: using etcd on the container's default gateway, as the Kontena load balancer did",
    );
  }
  if (config.etcd.auth && config.etcd.endpoints.some((url) => url.startsWith('http://'))) {
    logger.warn({ endpoints: config.etcd.endpoints }, 'the etcd password travels unencrypted over http:// endpoints: use https:// (with ETCD_CA_FILE)');
  }
  const edgelb = startEdgelb(config, logger, {
    envCerts: readEnvCerts(process.env),
    envChallenges: process.env,
    // Before etcd is read, so before HAProxy runs: the admin port is all there is to close.
    onFatal: (message) => void edgelb.stop().finally(() => fail(message, 1)),
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: HAProxy finishes in-flight requests');
    edgelb.stop({ graceful: true }).then(
      () => process.exit(0),
      (error: Error) => {
        logger.error({ err: error.message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: re-reading etcd');
    edgelb.resync();
  });
});

const cliDeps: CliDeps = {
  loadConfig: (flags, { needsEtcd }) => {
    const input = settingsFrom(flags);
    // Without etcd (--from-file, status) the load balancer's name does not matter.
    const named = needsEtcd || input.ETCD_PATH || input.KONTENA_SERVICE_NAME ? input : { ...input, ETCD_PATH: '/' };
    try {
      return loadConfig(named, { checkFilesystem: false, platform });
    } catch (error) {
      if (error instanceof ConfigError) fail(error.message);
      throw error;
    }
  },
  out: (text) => process.stdout.write(text),
  warn: (line) => process.stderr.write(`${line}\n`),
  progress: createProgress(process.stderr, process.stderr.isTTY === true),
  fail,
  exitCode: (code) => {
    process.exitCode = code;
  },
  searchPath: process.env.PATH ?? '',
  env: process.env,
};
registerRenderCommand(program, cliDeps);
registerCheckCommand(program, cliDeps);
registerStatusCommand(program, cliDeps);

registerCertCommands(program, {
  loadSettings: (flags) => {
    try {
      const config = loadConfig(settingsFrom(flags), { checkFilesystem: false, platform });
      const { certWarnDays, defaultCert } = config;
      return {
        etcd: config.etcd,
        etcdPath: config.etcdPath,
        vaultKey: config.vaultKey,
        env: process.env,
        certsDir: config.certsDir,
        certWarnDays,
        defaultCert,
        ...(config.acme ? { acme: { envDomains: config.acme.domains, dns01: config.acmeDns.publisher !== undefined } } : {}),
      };
    } catch (error) {
      if (error instanceof ConfigError) fail(error.message);
      throw error;
    }
  },
  out: (line) => process.stdout.write(`${line}\n`),
  fail: (message) => fail(message, 1),
});

program.parseAsync(process.argv).catch((error: Error) => fail(error.message, 1));
