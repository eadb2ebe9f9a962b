import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CertsDirSource, certsFromFiles, isCertFileName, readCertsDir } from '../../src/sources/certs-dir.js';
import { parseBundle } from '../../src/tls/bundle.js';
import { writeFileAtomic } from '../../src/util/atomic-write.js';
import { makeLeaf, removeCertFiles, type LeafCert } from '../support/certs.js';
import { sleep, waitFor } from '../support/wait.js';

let one: LeafCert;
let two: LeafCert;
let three: LeafCert;
beforeAll(async () => {
  [one, two, three] = await Promise.all([
    makeLeaf({ names: ['one.example.com'] }),
    makeLeaf({ names: ['two.example.com'] }),
    makeLeaf({ names: ['three.example.com'] }),
  ]);
});
afterAll(removeCertFiles);

interface Harness {
  readonly dir: string;
  readonly maps: ReadonlyMap<string, string>[];
  readonly logs: { level: number; msg: string; file?: string }[];
  readonly source: CertsDirSource;
  latest(): ReadonlyMap<string, string>;
  /** Waits for a delivered map that satisfies `check`. */
  until(check: (files: ReadonlyMap<string, string>) => boolean, what: string): Promise<ReadonlyMap<string, string>>;
}

let dirs: string[] = [];
let sources: CertsDirSource[] = [];
beforeEach(() => {
  dirs = [];
  sources = [];
});
afterEach(async () => {
  await Promise.all(sources.map((s) => s.stop()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-certs-dir-'));
  dirs.push(dir);
  return dir;
}

async function startSource(dir: string, settleMs?: number, rescanIntervalMs?: number): Promise<Harness> {
  const maps: ReadonlyMap<string, string>[] = [];
  const logs: Harness['logs'] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const source = new CertsDirSource({ dir, logger, settleMs, rescanIntervalMs, onChange: (files) => maps.push(files) });
  sources.push(source);
  await source.start();
  const latest = () => maps[maps.length - 1] ?? new Map<string, string>();
  return {
    dir,
    maps,
    logs,
    source,
    latest,
    until: (check, what) => waitFor(() => (maps.length > 0 && check(latest()) ? latest() : undefined), { timeoutMs: 5000, what }),
  };
}

/** Files as name → the DNS names of their bundle, for readable assertions. */
function summary(files: ReadonlyMap<string, string>): Record<string, string> {
  return Object.fromEntries([...files].map(([file, pem]) => [path.basename(file), parseBundle(pem, { kind: 'dir', ref: file }).names.join(',')]));
}

describe('isCertFileName', () => {
  it.each([
    ['site.pem', true],
    ['SITE.PEM', true],
    ['a.b.pem', true],
    ['.pem', false],
    ['.site.pem', false],
    ['.site.pem.123.456.tmp', false],
    ['site.pem.tmp', false],
    ['site.pem~', false],
    ['site.crt', false],
    ['pem', false],
  ])('%s → %s', (name, expected) => {
    expect(isCertFileName(name)).toBe(expected);
  });
});

describe('CertsDirSource', () => {
  it('delivers the initial scan once: only *.pem files directly in the directory', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'one.pem'), one.bundlePem);
    writeFileSync(path.join(dir, 'two.pem'), two.bundlePem);
    writeFileSync(path.join(dir, 'notes.txt'), 'not a cert');
    writeFileSync(path.join(dir, '.hidden.pem'), three.bundlePem);
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub', 'deep.pem'), three.bundlePem);
    mkdirSync(path.join(dir, 'adir.pem'));
    await sleep(60); // older than settleMs, so the first scan reads them

    const h = await startSource(dir);
    expect(h.maps).toHaveLength(1);
    expect(summary(h.maps[0]!)).toEqual({ 'one.pem': 'one.example.com', 'two.pem': 'two.example.com' });
    expect([...h.maps[0]!.keys()]).toEqual([path.join(dir, 'one.pem'), path.join(dir, 'two.pem')]);
    await sleep(150);
    expect(h.maps).toHaveLength(1);
  });

  it('delivers an empty map for an empty directory', async () => {
    const h = await startSource(tempDir());
    expect(h.maps).toEqual([new Map()]);
  });

  it('fails to start on a directory that does not exist', async () => {
    const missing = path.join(tempDir(), 'missing');
    const source = new CertsDirSource({ dir: missing, logger: pino({ level: 'silent' }), onChange: () => undefined });
    await expect(source.start()).rejects.toThrow(/does not exist or is not a directory/);
  });

  it('takes adding, replacing and removing a .pem file live, delivering the full map each time', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'one.pem'), one.bundlePem);
    await sleep(60);
    const h = await startSource(dir);
    expect(summary(h.latest())).toEqual({ 'one.pem': 'one.example.com' });

    writeFileSync(path.join(dir, 'two.pem'), two.bundlePem);
    await h.until((files) => files.size === 2, 'two.pem to be added');
    expect(summary(h.latest())).toEqual({ 'one.pem': 'one.example.com', 'two.pem': 'two.example.com' });

    writeFileSync(path.join(dir, 'one.pem'), three.bundlePem); // replaced in place
    await h.until((files) => files.get(path.join(dir, 'one.pem')) === three.bundlePem, 'one.pem to be replaced');
    expect(summary(h.latest())).toEqual({ 'one.pem': 'three.example.com', 'two.pem': 'two.example.com' });

    await writeFileAtomic(path.join(dir, 'two.pem'), one.bundlePem); // replaced by rename
    await h.until((files) => files.get(path.join(dir, 'two.pem')) === one.bundlePem, 'two.pem to be replaced');
    expect(summary(h.latest())).toEqual({ 'one.pem': 'three.example.com', 'two.pem': 'one.example.com' });

    unlinkSync(path.join(dir, 'one.pem'));
    await h.until((files) => files.size === 1, 'one.pem to be removed');
    expect(summary(h.latest())).toEqual({ 'two.pem': 'one.example.com' });

    // Never a map with a temp file of the atomic write in it.
    for (const files of h.maps) for (const file of files.keys()) expect(isCertFileName(path.basename(file))).toBe(true);
  });

  it('ignores files that are not *.pem, and dotfiles', async () => {
    const dir = tempDir();
    const h = await startSource(dir);
    writeFileSync(path.join(dir, 'readme.txt'), 'x');
    writeFileSync(path.join(dir, 'site.pem.tmp'), one.bundlePem);
    writeFileSync(path.join(dir, '.site.pem.swp'), one.bundlePem);
    writeFileSync(path.join(dir, '.site.pem'), one.bundlePem);
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub', 'deep.pem'), one.bundlePem);
    await sleep(300);
    expect(h.maps).toEqual([new Map()]);
    // ...and a .pem file after all that is still seen.
    writeFileSync(path.join(dir, 'site.pem'), one.bundlePem);
    await h.until((files) => files.size === 1, 'site.pem');
    expect(summary(h.latest())).toEqual({ 'site.pem': 'one.example.com' });
  });

  it('does not deliver a change when a file is rewritten with the same content', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'one.pem'), one.bundlePem);
    await sleep(60);
    const h = await startSource(dir);
    writeFileSync(path.join(dir, 'one.pem'), one.bundlePem);
    writeFileSync(path.join(dir, 'marker.pem'), two.bundlePem);
    await h.until((files) => files.size === 2, 'marker.pem');
    expect(h.maps).toHaveLength(2);
  });

  it('leaves out, and logs, a file it cannot read; the others still count', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'good.pem'), one.bundlePem);
    symlinkSync(path.join(dir, 'nowhere'), path.join(dir, 'broken.pem'));
    await sleep(60);
    const h = await startSource(dir);
    expect(summary(h.latest())).toEqual({ 'good.pem': 'one.example.com' });
    expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'cannot read certificate file; leaving it out', file: path.join(dir, 'broken.pem') }));
    // Creating the link's target (no *.pem itself) brings it in.
    writeFileSync(path.join(dir, 'nowhere'), two.bundlePem);
    await h.until((files) => files.size === 2, 'broken.pem to be readable');
    expect(summary(h.latest())).toEqual({ 'broken.pem': 'two.example.com', 'good.pem': 'one.example.com' });
  });

  it('finds changes no event reports (a symlink target outside the directory) by rescanning now and then', async () => {
    const dir = tempDir();
    const outside = tempDir();
    symlinkSync(path.join(outside, 'site.pem'), path.join(dir, 'site.pem'));
    const h = await startSource(dir, 50, 100);
    expect(h.maps).toEqual([new Map()]);
    writeFileSync(path.join(outside, 'site.pem'), one.bundlePem);
    await h.until((files) => files.size === 1, 'site.pem to be found');
    expect(summary(h.latest())).toEqual({ 'site.pem': 'one.example.com' });
  });

  it('never delivers a half-written file', async () => {
    const dir = tempDir();
    const h = await startSource(dir, 150);
    const file = path.join(dir, 'slow.pem');
    const half = Math.floor(one.bundlePem.length / 2);
    const fd = openSync(file, 'w');
    writeSync(fd, one.bundlePem.slice(0, half));
    await sleep(30);
    // Another file changing meanwhile triggers a rescan, which must leave slow.pem alone too.
    writeFileSync(path.join(dir, 'other.pem'), two.bundlePem);
    await sleep(30);
    writeSync(fd, one.bundlePem.slice(half));
    closeSync(fd);
    await h.until((files) => files.get(file) === one.bundlePem && files.size === 2, 'slow.pem, complete');
    for (const files of h.maps) {
      const content = files.get(file);
      if (content !== undefined) expect(content).toBe(one.bundlePem);
    }
  });

  it('follows a Kubernetes secret volume swapping its ..data symlink', async () => {
    const dir = tempDir();
    const version = (name: string, pem: string) => {
      mkdirSync(path.join(dir, name));
      writeFileSync(path.join(dir, name, 'tls.pem'), pem);
    };
    version('..v1', one.bundlePem);
    symlinkSync('..v1', path.join(dir, '..data'));
    symlinkSync('..data/tls.pem', path.join(dir, 'tls.pem'));
    await sleep(60);
    const h = await startSource(dir);
    expect(summary(h.latest())).toEqual({ 'tls.pem': 'one.example.com' });

    version('..v2', two.bundlePem);
    await sleep(60);
    symlinkSync('..v2', path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    rmSync(path.join(dir, '..v1'), { recursive: true });
    await h.until((files) => files.get(path.join(dir, 'tls.pem')) === two.bundlePem, 'the new secret version');
  });

  it('delivers nothing after stop()', async () => {
    const dir = tempDir();
    const h = await startSource(dir);
    await h.source.stop();
    writeFileSync(path.join(dir, 'late.pem'), one.bundlePem);
    await sleep(200);
    expect(h.maps).toHaveLength(1);
  });
});

describe('certsFromFiles / readCertsDir', () => {
  it('makes dir-sourced raw certs in path order, ref = the file path', () => {
    const files = new Map([
      ['/c/b.pem', 'B'],
      ['/c/a.pem', 'A'],
    ]);
    expect(certsFromFiles(files)).toEqual([
      { source: { kind: 'dir', ref: '/c/a.pem' }, pem: 'A' },
      { source: { kind: 'dir', ref: '/c/b.pem' }, pem: 'B' },
    ]);
  });

  it('reads a directory once, with the same rules as the watcher', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'a.pem'), 'A');
    writeFileSync(path.join(dir, 'a.txt'), 'x');
    writeFileSync(path.join(dir, '.b.pem'), 'x');
    expect(await readCertsDir(dir)).toEqual(new Map([[path.join(dir, 'a.pem'), 'A']]));
  });
});
