import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveCaBundles } from '../../src/pipeline/ca-resolution.js';
import { renderSettingsOf, statePaths } from '../../src/pipeline/settings-of.js';
import { loadConfig } from '../../src/config.js';
import { parseEntries } from '../../src/model/parse.js';
import type { Entries, ParseResult } from '../../src/model/types.js';
import { createRenderer } from '../../src/render/render.js';
import type { RenderSettings } from '../../src/render/render-settings.js';
import { type CaStore, EMPTY_CA_STORE } from '../../src/tls/ca-bundles.js';

/** Render settings as edgelb run would build them, for a throwaway state dir (the files haproxy -c reads exist). */
export function testRenderSettings(options: { tls?: boolean } = {}): RenderSettings & { stateDir: string } {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-render-'));
  const config = loadConfig(
    {
      ETCD_PATH: '/kontena/haproxy/fuzz',
      KONTENA_LB_STATE_DIR: stateDir,
      KONTENA_LB_HTTP_PORT: '18080',
      KONTENA_LB_HTTPS_PORT: '18443',
      KONTENA_LB_STATS_PORT: '18100',
      KONTENA_LB_ADMIN_PORT: '18404',
    },
    { checkFilesystem: false },
  );
  const settings = renderSettingsOf(config);
  writeFileSync(settings.challengeMap, '');
  writeFileSync(settings.canaryMap, '');
  const tls = options.tls
    ? {
        tls: {
          port: 18443,
          crtList: path.join(stateDir, 'crt-list'),
          http2: true,
          minVersion: 'TLSv1.2' as const,
          ciphers: 'ECDHE-RSA-AES128-GCM-SHA256',
          defaultCert: 'fuzz',
        },
      }
    : {};
  return { ...settings, ...tls, stateDir };
}

export const RESERVED_PORTS = [18080, 18443, 18100, 18404];

const render = createRenderer();

/**
 * Entries → config as `edgelb run` renders them: parsed, then the CA bundles services name resolved
 * against `cas` (none by default, so a service naming one is closed), as desiredConfig does.
 * `caFiles` are the bundles the config names: a caller running `haproxy -c` writes them first.
 */
export function parseAndRender(
  entries: Entries,
  settings: RenderSettings & { stateDir?: string },
  maxServices?: number,
  cas: CaStore = EMPTY_CA_STORE,
): { parsed: ParseResult; config: string; caFiles: readonly { file: string; pem: string }[] } {
  const parsed = parseEntries(entries, { reservedPorts: RESERVED_PORTS, maxServices });
  const resolved = resolveCaBundles(parsed.state, cas, statePaths(settings.stateDir ?? os.tmpdir()).certsDir);
  return { parsed, config: render(resolved.state, settings), caFiles: resolved.files };
}
