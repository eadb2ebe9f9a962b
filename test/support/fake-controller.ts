import { Controller, type ControllerOptions } from '../../src/controller/controller.js';
import type { ConfigApplier } from '../../src/haproxy/apply.js';
import type { CertFiles } from '../../src/haproxy/cert-files.js';
import type { ChallengeMap } from '../../src/haproxy/challenge-map.js';
import type { ConfigContent } from '../../src/haproxy/config-file.js';
import { createLogger } from '../../src/log.js';
import { createSectionRenderer, createServerArgsRenderer } from '../../src/render/render.js';
import { EntryStore } from '../../src/sources/entry-store.js';
import { renderSettingsIn } from './render-settings.js';

/** How a fake applier got a config: a first start, a reload, or a change adopted from the runtime API. */
export type ApplierEvent = 'started' | 'reloaded' | 'runtime';

/**
 * An applier that serves whatever it is given, tells `onEvent` each time, and never runs HAProxy.
 * `commitFailsAfterMs`: a reload takes that long (in timers) and then fails as a full disk does.
 */
export function fakeApplier(onEvent: (event: ApplierEvent, config: ConfigContent) => void, options: { commitFailsAfterMs?: number } = {}): ConfigApplier {
  let serving: ConfigContent | undefined;
  const serve = (event: ApplierEvent, config: ConfigContent) => {
    serving = config;
    onEvent(event, config);
  };
  return {
    get serving() {
      return serving;
    },
    startLastGood: async () => false,
    flush: async () => undefined,
    validate: async () => ({ ok: true, errors: [] }),
    startUnchecked: async (config: ConfigContent) => {
      serve('started', config);
      return { action: 'started', startedDown: [] };
    },
    commit: async (config: ConfigContent) => {
      if (options.commitFailsAfterMs !== undefined) {
        await new Promise((resolve) => setTimeout(resolve, options.commitFailsAfterMs));
        throw new Error('ENOSPC: no space left on device');
      }
      serve('reloaded', config);
      return { action: 'reloaded', startedDown: [] };
    },
    adoptRuntimeChange: (config: ConfigContent) => serve('runtime', config),
  } as unknown as ConfigApplier;
}

/**
 * A controller on fakes (files and maps that accept everything, a silent logger, no last-good
 * start), real renderers, and a function that offers it a snapshot of `entries`.
 */
export function fakeController(options: Pick<ControllerOptions, 'applier'> & Partial<ControllerOptions>) {
  const certFiles = { crtList: '/x/crt-list', write: async () => undefined, prune: async () => undefined, applyRuntime: async () => 0 } as unknown as CertFiles;
  const maps = { write: async () => undefined, applyRuntime: async () => 0 } as unknown as ChallengeMap;
  const controller = new Controller({
    render: createSectionRenderer(),
    serverArgs: createServerArgsRenderer(),
    settings: {
      render: renderSettingsIn('/x'),
      tls: { port: 8443, http2: true, minVersion: 'TLSv1.2', ciphers: 'DEFAULT' },
      crtList: '/x/crt-list',
      caDir: '/x/certs',
    },
    parseOptions: { reservedPorts: [] },
    certFiles,
    challengeMap: maps,
    canaryMap: maps,
    logger: createLogger('silent', false),
    lastGoodAfterMs: 60_000,
    ...options,
  });
  const store = new EntryStore();
  let revision = 0;
  const offer = (entries: Record<string, string>) => {
    store.replace(new Map(Object.entries(entries)));
    controller.offer(store.seal(String(++revision)));
  };
  return { controller, offer };
}
