import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.js';
import type { RawCert } from '../tls/bundle.js';

export interface CertsDirSourceOptions {
  /** KONTENA_LB_CERTS_DIR; made absolute. */
  readonly dir: string;
  readonly logger: Logger;
  /** The whole set of bundle files (absolute path → content) after every change; never deltas. */
  readonly onChange: (files: ReadonlyMap<string, string>) => void;
  /** A file must have been left alone this long before it is read (ms, default 50). */
  readonly settleMs?: number;
  /**
   * A rescan also runs this often (ms, default 60 s; 0: never), for changes no watcher reports:
   * a symlink whose target outside the directory appears or changes, network filesystems.
   * It costs a stat per file; nothing is delivered unless something changed.
   */
  readonly rescanIntervalMs?: number;
}

/** `*.pem` directly in the directory; dotfiles (editor swap files, atomic-write temp files) are not. */
export function isCertFileName(name: string): boolean {
  return !name.startsWith('.') && name.toLowerCase().endsWith('.pem') && name.length > 4;
}

/**
 * Watches a directory of PEM bundles (KONTENA_LB_CERTS_DIR) with chokidar: adding, replacing or
 * removing a `*.pem` file there is delivered as a new full map of files.
 *
 * Every change triggers a rescan of the directory, not an update of one file, so that every way of
 * replacing a file gives the same result: written in place, renamed over (atomic writes), a
 * symlink re-pointed, or a Kubernetes secret volume swapping its `..data` symlink (which changes
 * no `*.pem` entry itself). A rescan re-reads only files whose device, inode, size or mtime
 * changed, or that chokidar reported, so a directory of 1,000 bundles costs 1,000 stats.
 *
 * Half-written files: chokidar holds events until a file's size is stable (awaitWriteFinish),
 * and a rescan leaves a file modified less than `settleMs` ago for a later rescan (keeping its
 * previous content meanwhile), whatever triggered the rescan.
 *
 * A file that cannot be read is logged and left out; the rest are still delivered. Any event in
 * the directory triggers the rescan (a dangling `x.pem` symlink is fixed by creating its target,
 * which is no `*.pem`), and a slow periodic rescan catches what no event reports.
 */
export class CertsDirSource {
  private readonly dir: string;
  private readonly settleMs: number;
  private watcher: FSWatcher | undefined;
  private readonly cache = new Map<string, { identity: string; content: string }>();
  private forced = new Set<string>();
  private last: Map<string, string> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: CertsDirSourceOptions) {
    this.dir = path.resolve(options.dir);
    this.settleMs = options.settleMs ?? 50;
  }

  /** Starts watching; resolves once the initial scan has been delivered. */
  async start(): Promise<void> {
    let isDir = false;
    try {
      isDir = (await stat(this.dir)).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) throw new Error(`the certificate directory ${this.dir} does not exist or is not a directory`);

    const watcher = watch(this.dir, {
      depth: 0,
      ignoreInitial: true,
      persistent: true,
      // Every entry of the directory itself, not only *.pem: see the class comment.
      awaitWriteFinish: { stabilityThreshold: this.settleMs, pollInterval: Math.max(5, Math.floor(this.settleMs / 5)) },
    });
    this.watcher = watcher;
    watcher.on('all', (_event, file) => {
      this.forced.add(path.resolve(file));
      this.schedule(10);
    });
    watcher.on('error', (error) => {
      this.options.logger.warn({ dir: this.dir, err: (error as Error).message }, 'certificate directory watch error; rescanning');
      this.schedule(this.settleMs);
    });
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    if (this.stopped) return;
    await this.run(true);
    const every = this.options.rescanIntervalMs ?? 60_000;
    if (every > 0 && !this.stopped) {
      this.interval = setInterval(() => void this.run(false), every);
      this.interval.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.interval);
    await this.watcher?.close();
    this.watcher = undefined;
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(false), delayMs);
  }

  /** One scan at a time; a request during a scan runs another right after it. */
  private async run(initial: boolean): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.scan(initial);
          initial = false;
        } while (this.again && !this.stopped);
      } catch (error) {
        this.options.logger.error({ dir: this.dir, err: (error as Error).message }, 'certificate directory scan failed');
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async scan(initial: boolean): Promise<void> {
    const { logger } = this.options;
    const forced = this.forced;
    this.forced = new Set();
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter(isCertFileName).sort();
    } catch (error) {
      logger.warn({ dir: this.dir, err: (error as Error).message }, 'cannot read the certificate directory; serving none of its certificates');
      names = [];
    }
    const files = new Map<string, string>();
    let deferred = false;
    for (const name of names) {
      const file = path.join(this.dir, name);
      const cached = this.cache.get(file);
      try {
        const info = await stat(file);
        if (!info.isFile()) {
          logger.warn({ file }, 'not a regular file; leaving it out');
          continue;
        }
        const identity = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
        if (cached && cached.identity === identity && !forced.has(file)) {
          files.set(file, cached.content);
          continue;
        }
        const age = Date.now() - info.mtimeMs;
        if (age >= 0 && age < this.settleMs) {
          // Possibly still being written: look again once it has settled.
          deferred = true;
          if (forced.has(file)) this.forced.add(file);
          if (cached) files.set(file, cached.content);
          continue;
        }
        const content = await readFile(file, 'utf8');
        this.cache.set(file, { identity, content });
        files.set(file, content);
      } catch (error) {
        this.cache.delete(file);
        logger.warn({ file, err: (error as NodeJS.ErrnoException).code ?? (error as Error).message }, 'cannot read certificate file; leaving it out');
      }
    }
    for (const file of this.cache.keys()) if (!files.has(file)) this.cache.delete(file);
    if (deferred) this.schedule(this.settleMs);
    if (this.stopped) return;
    if (!initial && this.last && sameFiles(this.last, files)) return;
    this.last = files;
    logger.info({ dir: this.dir, files: files.size }, initial ? 'certificate directory read' : 'certificate directory changed');
    this.options.onChange(new Map(files));
  }
}

function sameFiles(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [file, content] of a) if (b.get(file) !== content) return false;
  return true;
}

/** The bundles of a files map, in path order; source kind 'dir', ref the file's path. */
export function certsFromFiles(files: ReadonlyMap<string, string>): RawCert[] {
  return [...files.keys()].sort().map((file) => ({ source: { kind: 'dir', ref: file }, pem: files.get(file)! }));
}

/** One read of the directory's bundles, without watching (for `edgelb cert list`). */
export async function readCertsDir(dir: string): Promise<Map<string, string>> {
  const absolute = path.resolve(dir);
  const files = new Map<string, string>();
  for (const name of (await readdir(absolute)).filter(isCertFileName).sort()) {
    const file = path.join(absolute, name);
    try {
      if ((await stat(file)).isFile()) files.set(file, await readFile(file, 'utf8'));
    } catch {
      // unreadable: left out, as the watcher does
    }
  }
  return files;
}
