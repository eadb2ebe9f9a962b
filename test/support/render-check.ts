import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderSettingsOf } from '../../src/pipeline/settings-of.js';
import { loadConfig } from '../../src/config.js';
import { parseEntries } from '../../src/model/parse.js';
import type { Entries, ParseResult } from '../../src/model/types.js';
import { createRenderer } from '../../src/render/render.js';
import type { RenderSettings } from '../../src/render/view.js';

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

export function parseAndRender(entries: Entries, settings: RenderSettings, maxServices?: number): { parsed: ParseResult; config: string } {
  const parsed = parseEntries(entries, { reservedPorts: RESERVED_PORTS, maxServices });
  return { parsed, config: render(parsed.state, settings) };
}
