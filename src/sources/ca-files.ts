import { stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';
import { CA_DIRS, caStoreFromFiles, type CaKind, type CaStore } from '../tls/ca-bundles.js';
import { CertsDirSource, readCertsDir } from './certs-dir.js';

/**
 * The CA bundles of KONTENA_LB_CERTS_DIR: `client-cas/<name>.pem`, `client-crls/<name>.pem`,
 * `backend-cas/<name>.pem` (tls/ca-bundles.ts). Each subdirectory is watched like the directory
 * itself (CertsDirSource: renames, symlink swaps, settling), from start or from when it appears
 * (an operator adding mTLS to a running load balancer creates `client-cas/` then). The whole
 * store is delivered again after any change.
 */
export class CaFilesSource {
  private readonly sources = new Map<CaKind, CertsDirSource>();
  private readonly files = new Map<CaKind, ReadonlyMap<string, string>>();
  /** The certificate directory, for subdirectories created after start. */
  private parentWatcher: FSWatcher | undefined;
  private started = false;
  private stopped = false;

  constructor(private readonly options: { readonly dir: string; readonly logger: Logger; readonly onChange: (store: CaStore) => void }) {}

  async start(): Promise<void> {
    const kinds = Object.keys(CA_DIRS) as CaKind[];
    for (const kind of kinds) if (await isDirectory(this.subdirOf(kind))) await this.watchKind(kind);
    this.started = true;
    if (this.sources.size > 0) this.options.onChange(this.store());
    if (this.sources.size === kinds.length) return;
    const watcher = watch(this.options.dir, { depth: 0, ignoreInitial: true, persistent: true });
    this.parentWatcher = watcher;
    watcher.on('addDir', (dir) => {
      const kind = kinds.find((k) => this.subdirOf(k) === path.resolve(dir));
      if (kind === undefined || this.sources.has(kind) || this.stopped) return;
      // Its first read delivers the store (watchKind's onChange).
      this.watchKind(kind).catch((error: Error) =>
        this.options.logger.warn({ dir, err: error.message }, 'cannot watch a new CA bundle directory; restart to read it'),
      );
    });
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.parentWatcher?.close();
    for (const source of this.sources.values()) await source.stop();
  }

  private subdirOf(kind: CaKind): string {
    return path.resolve(this.options.dir, CA_DIRS[kind]);
  }

  /** Watches one subdirectory; resolves after its first read. */
  private async watchKind(kind: CaKind): Promise<void> {
    const dir = CA_DIRS[kind];
    const source = new CertsDirSource({
      dir: this.subdirOf(kind),
      logger: this.options.logger,
      onChange: (files) => {
        this.files.set(kind, relative(dir, files));
        // Not before every subdirectory's first read: the first store is whole.
        if (this.started && this.sources.get(kind) === source) this.options.onChange(this.store());
      },
    });
    this.sources.set(kind, source);
    await source.start();
    if (this.stopped) await source.stop();
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
