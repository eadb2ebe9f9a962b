import path from 'node:path';
import { TEMPLATES_DIR } from '../../src/render/render.js';
import type { RenderSettings } from '../../src/render/render-settings.js';

/**
 * Render settings for tests that render with files in `dir` (state files, sockets) and the
 * repo's error pages: edgelb's defaults, overridden where a test needs something else.
 */
export function renderSettingsIn(dir: string, overrides: Partial<RenderSettings> = {}): RenderSettings {
  return {
    httpPort: 8080,
    adminSocket: path.join(dir, 'haproxy.sock'),
    errorsDir: path.join(TEMPLATES_DIR, 'errors'),
    challengeMap: path.join(dir, 'acme.map'),
    canaryMap: path.join(dir, 'canary.map'),
    globalSettings: [],
    defaultsSettings: [],
    hardStopAfter: '1h',
    serverStateFile: path.join(dir, 'server-state'),
    peerSocket: path.join(dir, 'peers.sock'),
    checkInterval: '2000ms',
    checkFastInterval: '250ms',
    acceptProxy: false,
    tunnelTimeout: '1h',
    accessLog: 'text',
    ...overrides,
  };
}
