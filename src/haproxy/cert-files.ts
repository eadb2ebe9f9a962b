import { mkdir, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { CrtListRenderer } from '../render/render.js';
import { pemHash, type CertSet, type ServedCert } from '../tls/store.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { HaproxyRuntime } from './runtime.js';

/**
 * The served certificates on disk (one 0600 file each in a 0700 dir, plus the crt-list HAProxy
 * loads at start and on reload) and, for a running HAProxy, in memory through the runtime API.
 */
export class CertFiles {
  readonly crtList: string;
  private written = new Map<string, string>();

  constructor(private readonly options: { dir: string; renderCrtList: CrtListRenderer; runtime: HaproxyRuntime }) {
    this.crtList = path.join(options.dir, 'crt-list');
  }

  fileOf(cert: ServedCert): string {
    return path.join(this.options.dir, `${cert.bundle.id}.pem`);
  }

  /**
   * Writes every served bundle and the crt-list atomically. Files of certificates no longer
   * served stay until `prune`, after the apply: the running config may still name them.
   */
  async write(set: CertSet): Promise<void> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    for (const cert of set.served) {
      const file = this.fileOf(cert);
      const hash = pemHash(cert.bundle);
      if (this.written.get(file) === hash) continue;
      await writeFileAtomic(file, cert.bundle.pem, 0o600);
      this.written.set(file, hash);
    }
    await writeFileAtomic(this.crtList, this.crtListText(set), 0o600);
  }

  /** Removes the files of certificates no longer served (once HAProxy no longer needs them). */
  async prune(set: CertSet): Promise<void> {
    const keep = new Set([...set.served.map((c) => path.basename(this.fileOf(c))), 'crt-list']);
    if (set.served.length === 0) keep.delete('crt-list');
    const names = await readdir(this.options.dir).catch(() => [] as string[]);
    for (const name of names) {
      if (keep.has(name) || name.startsWith('.')) continue;
      await unlink(path.join(this.options.dir, name)).catch(() => undefined);
      this.written.delete(path.join(this.options.dir, name));
    }
  }

  crtListText(set: CertSet): string {
    return this.options.renderCrtList(set.served.map((cert) => ({ file: this.fileOf(cert), sni: cert.sni })));
  }

  /**
   * Brings a running HAProxy from `before` to `after` without a reload. New and changed
   * certificates go in first, removals last, so a name moving between certificates is never
   * uncovered. Throws (and the caller reloads instead) on anything the runtime API cannot do,
   * such as changing the default certificate's line.
   */
  async applyRuntime(before: CertSet, after: CertSet): Promise<number> {
    const { runtime } = this.options;
    const old = new Map(before.served.map((c) => [c.bundle.id, c]));
    const next = new Map(after.served.map((c) => [c.bundle.id, c]));
    const defaultId = after.served[0]?.bundle.id;
    if (defaultId !== before.served[0]?.bundle.id) throw new Error('the default certificate changed');
    let operations = 0;
    for (const cert of after.served) {
      const file = this.fileOf(cert);
      const previous = old.get(cert.bundle.id);
      const line = `${file}${cert.sni.length > 0 ? ` ${cert.sni.join(' ')}` : ''}`;
      if (!previous) {
        await runtime.storeCert(file, cert.bundle.pem, true);
        await runtime.addCrtListEntry(this.crtList, line);
        operations++;
        continue;
      }
      if (pemHash(previous.bundle) !== pemHash(cert.bundle)) {
        await runtime.storeCert(file, cert.bundle.pem, false);
        operations++;
      }
      if (previous.sni.join(' ') !== cert.sni.join(' ')) {
        if (cert.bundle.id === defaultId) throw new Error('the default certificate\'s names changed');
        await runtime.run(`del ssl crt-list ${this.crtList} ${file}`);
        await runtime.addCrtListEntry(this.crtList, line);
        operations++;
      }
    }
    for (const cert of before.served) {
      if (!next.has(cert.bundle.id)) {
        await runtime.removeCert(this.crtList, this.fileOf(cert));
        operations++;
      }
    }
    return operations;
  }
}
