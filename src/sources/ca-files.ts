import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import { CA_DIRS, caStoreFromFiles, type CaKind, type CaStore } from '../tls/ca-bundles.js';
import { CertsDirSource, readCertsDir } from './certs-dir.js';

/**
 * The CA bundles of KONTENA_LB_CERTS_DIR: `client-cas/<name>.pem`, `client-crls/<name>.pem`,
 * `backend-cas/<name>.pem` (tls/ca-bundles.ts). Each subdirectory that exists at start is watched
 * like the directory itself (CertsDirSource: renames, symlink swaps, settling); one created later
 * is read after a restart. The whole store is delivered again after any change.
 */
export class CaFilesSource {
  private readonly sources: CertsDirSource[] = [];
  private readonly files = new Map<CaKind, ReadonlyMap<string, string>>();
  private started = false;

  constructor(private readonly options: { readonly dir: string; readonly logger: Logger; readonly onChange: (store: CaStore) => void }) {}

  async start(): Promise<void> {
    for (const [kind, dir] of Object.entries(CA_DIRS) as [CaKind, string][]) {
      const sub = path.join(this.options.dir, dir);
      if (!(await isDirectory(sub))) continue;
      const source = new CertsDirSource({
        dir: sub,
        logger: this.options.logger,
        onChange: (files) => {
          this.files.set(kind, relative(dir, files));
          // Not before every subdirectory's first read: the first store is whole.
          if (this.started) this.options.onChange(this.store());
        },
      });
      this.sources.push(source);
    }
    for (const source of this.sources) await source.start();
    this.started = true;
    if (this.sources.length > 0) this.options.onChange(this.store());
  }

  async stop(): Promise<void> {
    for (const source of this.sources) await source.stop();
  }

  private store(): CaStore {
    return caStoreFromFiles(new Map([...this.files.values()].flatMap((files) => [...files])));
  }
}

/** One read of the subdirectories, without watching (`edgelb check`, `render`). */
export async function readCaFiles(dir: string): Promise<CaStore> {
  const files = new Map<string, string>();
  for (const sub of Object.values(CA_DIRS)) {
    if (await isDirectory(path.join(dir, sub))) for (const [file, text] of relative(sub, await readCertsDir(path.join(dir, sub)))) files.set(file, text);
  }
  return caStoreFromFiles(files);
}

/** Absolute paths → `client-cas/<file>`, as caStoreFromFiles reads them. */
function relative(dir: string, files: ReadonlyMap<string, string>): Map<string, string> {
  return new Map([...files].map(([file, text]) => [`${dir}${path.basename(file)}`, text]));
}

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then(
    (info) => info.isDirectory(),
    () => false,
  );
}
