import { mkdir, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { CrtListRenderer } from '../render/render.js';
import type { CertBundle } from '../tls/bundle.js';
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

  /** `crtList` is a file in `dir` (statePaths): pruning keeps it. */
  constructor(private readonly options: { dir: string; crtList: string; renderCrtList: CrtListRenderer; runtime: HaproxyRuntime }) {
    this.crtList = options.crtList;
  }

  fileOf(cert: { readonly bundle: CertBundle }): string {
    return path.join(this.options.dir, `${cert.bundle.id}.pem`);
  }

  /**
   * Writes every served bundle and the crt-list atomically. Files of certificates no longer
   * served stay until `prune`, after the apply: the running config may still name them.
   */
  async write(set: CertSet): Promise<void> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    for (const cert of [...set.served, ...(set.clientAuth ?? [])]) {
      const file = this.fileOf(cert);
      const hash = pemHash(cert.bundle);
      if (this.written.get(file) === hash) continue;
      await writeFileAtomic(file, cert.bundle.pem, 0o600);
      this.written.set(file, hash);
    }
    // CA bundles and CRLs: named by their content, so an existing file already holds it.
    for (const { file, pem } of set.caFiles ?? []) {
      if (this.written.has(file)) continue;
      await writeFileAtomic(file, pem, 0o644);
      this.written.set(file, '');
    }
    await writeFileAtomic(this.crtList, this.crtListText(set), 0o600);
  }

  /** Removes the files of certificates no longer served (once HAProxy no longer needs them). */
  async prune(set: CertSet): Promise<void> {
    const keep = new Set([...set.served, ...(set.clientAuth ?? [])].map((c) => path.basename(this.fileOf(c))));
    for (const { file } of set.caFiles ?? []) keep.add(path.basename(file));
    if (set.served.length > 0) keep.add(path.basename(this.crtList));
    const names = await readdir(this.options.dir).catch(() => [] as string[]);
    for (const name of names) {
      if (keep.has(name) || name.startsWith('.')) continue;
      await unlink(path.join(this.options.dir, name)).catch(() => undefined);
      this.written.delete(path.join(this.options.dir, name));
    }
  }

  crtListText(set: CertSet): string {
    return this.options.renderCrtList([
      ...set.served.map((cert) => ({ file: this.fileOf(cert), sni: cert.sni })),
      ...(set.clientAuth ?? []).map(({ verify, caFile, crlFile, ...cert }) => ({
        file: this.fileOf(cert),
        sni: [cert.sni],
        clientAuth: { verify, caFile, ...(crlFile ? { crlFile } : {}) },
      })),
    ]);
  }

  /**
   * Brings a running HAProxy from `before` to `after` without a reload, in an order that never
   * leaves a name uncovered: new certificates and new crt-list lines go in first, old lines and
   * removed certificates go last, so while a name moves between certificates both cover it.
   * Throws (and the caller reloads instead) on anything the runtime API cannot do, such as
   * changing the default certificate's line.
   */
  async applyRuntime(before: CertSet, after: CertSet): Promise<number> {
    const { runtime } = this.options;
    // A line with a client-certificate check shares its certificate with other lines; the runtime
    // steps below know only one line per certificate: with any such line, a change reloads.
    if ((before.clientAuth ?? []).length > 0 || (after.clientAuth ?? []).length > 0) throw new Error('client-certificate lines are served');
    const old = new Map(before.served.map((c) => [c.bundle.id, c]));
    const next = new Map(after.served.map((c) => [c.bundle.id, c]));
    const defaultId = after.served[0]?.bundle.id;
    if (defaultId !== before.served[0]?.bundle.id) throw new Error('the default certificate changed');
    const lineOf = (cert: ServedCert) => `${this.fileOf(cert)}${cert.sni.length > 0 ? ` ${cert.sni.join(' ')}` : ''}`;
    const moved: ServedCert[] = [];
    let operations = 0;

    for (const cert of after.served) {
      const previous = old.get(cert.bundle.id);
      if (!previous) {
        await runtime.storeCert(this.fileOf(cert), cert.bundle.pem, true);
        await runtime.addCrtListEntry(this.crtList, lineOf(cert));
        operations++;
        continue;
      }
      if (pemHash(previous.bundle) !== pemHash(cert.bundle)) {
        await runtime.storeCert(this.fileOf(cert), cert.bundle.pem, false);
        operations++;
      }
      if (previous.sni.join(' ') !== cert.sni.join(' ')) {
        if (cert.bundle.id === defaultId) throw new Error("the default certificate's names changed");
        await runtime.addCrtListEntry(this.crtList, lineOf(cert));
        moved.push(previous);
        operations++;
      }
    }
    for (const previous of moved) {
      const line = await this.lineNumberOf(previous);
      await runtime.run(`del ssl crt-list ${this.crtList} ${this.fileOf(previous)}:${line}`);
    }
    for (const cert of before.served) {
      if (!next.has(cert.bundle.id)) {
        await runtime.removeCert(this.crtList, this.fileOf(cert));
        operations++;
      }
    }
    return operations;
  }

  /** The line a certificate's old entry has in HAProxy's in-memory crt-list (`show ssl crt-list -n`). */
  private async lineNumberOf(cert: ServedCert): Promise<number> {
    const listing = await this.options.runtime.run(`show ssl crt-list -n ${this.crtList}`);
    const file = this.fileOf(cert);
    const wanted = cert.sni.join(' ');
    for (const row of listing.split('\n')) {
      const match = /^(\S+):(\d+)\s*(.*)$/.exec(row.trim());
      if (match && match[1] === file && match[3]?.trim() === wanted) return Number(match[2]);
    }
    throw new Error(`no crt-list line for ${file} with names "${wanted}"`);
  }
}
