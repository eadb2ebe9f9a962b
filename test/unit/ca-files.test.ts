import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CaFilesSource } from '../../src/sources/ca-files.js';
import type { CaStore } from '../../src/tls/ca-bundles.js';
import { makeCa } from '../support/certs.js';
import { capturingLogger } from '../support/log-capture.js';
import { waitFor } from '../support/wait.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function watched(dir: string): Promise<{ stores: CaStore[] }> {
  const stores: CaStore[] = [];
  const source = new CaFilesSource({ dir, logger: capturingLogger().logger, onChange: (store) => stores.push(store) });
  await source.start();
  cleanups.push(() => source.stop());
  return { stores };
}

describe('the CA bundle subdirectories of KONTENA_LB_CERTS_DIR', () => {
  it('reads a subdirectory created after start, and the bundles added to it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-ca-files-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const { stores } = await watched(dir);
    expect(stores).toEqual([]); // no subdirectory yet: nothing to deliver

    const ca = await makeCa('late CA');
    await mkdir(path.join(dir, 'client-cas'));
    await writeFile(path.join(dir, 'client-cas', 'partners.pem'), ca.certPem);
    await waitFor(() => stores.at(-1)?.bundles.has('client-ca/partners') === true, { timeoutMs: 10_000, what: 'the new client-cas/partners.pem to be read' });

    const other = await makeCa('another CA');
    await writeFile(path.join(dir, 'client-cas', 'others.pem'), other.certPem);
    await waitFor(() => stores.at(-1)?.bundles.has('client-ca/others') === true, {
      timeoutMs: 10_000,
      what: 'a second bundle in the new directory to be read',
    });
    expect(stores.at(-1)?.bundles.has('client-ca/partners')).toBe(true);
  });
});
