import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { capturingLogger } from '../support/log-capture.js';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { ConfigApplier } from '../../src/haproxy/apply.js';
import { ConfigFile, textContent, type ConfigContent } from '../../src/haproxy/config-file.js';
import type { HaproxyProcess } from '../../src/haproxy/process.js';

// haproxy.cfg after a runtime change is written a moment later, off the latency path: whatever
// reads the file (haproxy -c, a reload, a restart, the next run) must find the latest config.

let dir: string;
let file: string;
const { logger, logs } = capturingLogger();

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-config-file-'));
  file = path.join(dir, 'haproxy.cfg');
  logs.length = 0;
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A config in pieces, counting how often it is read. */
function pieces(parts: string[]): ConfigContent & { reads: number } {
  const content = {
    reads: 0,
    get text() {
      return parts.join('');
    },
    pieces() {
      content.reads++;
      return parts;
    },
  };
  return content;
}

/** The file cannot be replaced (even by root): a non-empty directory stands in its place. */
async function blockFile(): Promise<void> {
  await mkdir(path.join(file, 'x'), { recursive: true });
}

const read = () => readFile(file, 'utf8').catch(() => undefined);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ConfigFile', () => {
  it('writes a scheduled config after the delay, not before, and a burst of them once', async () => {
    const config = new ConfigFile({ file, logger, delayMs: 80 });
    const first = pieces(['global\n', 'backend a\n']);
    const second = pieces(['global\n', 'backend b\n']);
    config.schedule(first);
    config.schedule(second);
    expect(await read()).toBeUndefined();
    await waitFor(async () => (await read()) !== undefined, { timeoutMs: 5000, what: 'the scheduled write' });
    expect(await read()).toBe('global\nbackend b\n');
    expect(first.reads).toBe(0);
    expect(second.reads).toBe(1);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    config.stop();
  });

  it('flush() writes at once and resolves when the file holds the last config', async () => {
    const config = new ConfigFile({ file, logger, delayMs: 60_000 });
    config.schedule(textContent('one\n'));
    await config.flush();
    expect(await read()).toBe('one\n');
    config.schedule(textContent('two\n'));
    const flushing = config.flush();
    config.schedule(textContent('three\n'));
    await flushing;
    await config.flush();
    expect(await read()).toBe('three\n');
    expect(config.onDisk?.text).toBe('three\n');
    config.stop();
  });

  it('writes a large config in pieces, all of it', async () => {
    const parts = Array.from({ length: 5000 }, (_, i) => `backend http-s${i}\n    server s${i} 10.0.${i % 250}.1:80 check\n`);
    const config = new ConfigFile({ file, logger, delayMs: 60_000 });
    config.schedule(pieces(['global\n', ...parts]));
    await config.flush();
    expect(await read()).toBe(`global\n${parts.join('')}`);
    config.stop();
  });

  it('a write that fails: flush() rejects, the error is logged once, and the write is retried until it works', async () => {
    const config = new ConfigFile({ file, logger, delayMs: 60_000 });
    await blockFile();
    config.schedule(textContent('new\n'));
    await expect(config.flush()).rejects.toThrow(/cannot write .*haproxy\.cfg/);
    await expect(config.flush()).rejects.toThrow();
    expect(logs.filter((l) => String(l.msg).startsWith('cannot write the config file'))).toHaveLength(1);
    await rm(file, { recursive: true });
    // The background retry (500 ms after the first failure) gets there without another flush.
    await waitFor(async () => (await read()) === 'new\n', { timeoutMs: 5000, what: 'the background retry to write the file' });
    expect(logs.some((l) => l.msg === 'config file written again')).toBe(true);
    config.stop();
  }, 10_000);
});

/** An HAProxy that runs and reloads, reading the config file as the real one would. */
function fakeHaproxy() {
  const seen: string[] = [];
  const haproxy = {
    running: true,
    isStarting: false,
    async start() {
      seen.push(`start:${await readFile(file, 'utf8')}`);
    },
    async reload() {
      seen.push(`reload:${await readFile(file, 'utf8')}`);
    },
    async stop() {},
  };
  return { haproxy: haproxy as unknown as HaproxyProcess, seen };
}

describe('ConfigApplier with a runtime change not yet on disk', () => {
  it('a reload reads the new config, and the earlier runtime change never lands after it', async () => {
    await writeFile(file, 'started\n');
    const { haproxy, seen } = fakeHaproxy();
    // `true` stands in for haproxy -c: every candidate is valid.
    const applier = new ConfigApplier({ configFile: file, haproxyBin: 'true', haproxy, logger, writeDelayMs: 50 });
    applier.adoptRuntimeChange(textContent('runtime change\n'));
    const next = textContent('reloaded config\n');
    expect((await applier.validate(next.text)).ok).toBe(true);
    await applier.commit(next);
    expect(seen).toEqual(['reload:reloaded config\n']);
    // An absence over time: the runtime change's write (due 50 ms after it) must not land after
    // the reload's. Three times its delay is the observation window.
    await sleep(150);
    expect(await read()).toBe('reloaded config\n');
    expect(applier.serving).toBe(next);
    applier.stop();
  });

  it('before a restart of HAProxy the file is brought up to what was served', async () => {
    await writeFile(file, 'started\n');
    const { haproxy } = fakeHaproxy();
    const applier = new ConfigApplier({ configFile: file, haproxyBin: 'true', haproxy, logger, writeDelayMs: 60_000 });
    const served = textContent('with the new instance\n');
    applier.adoptRuntimeChange(served);
    expect(await read()).toBe('started\n');
    await applier.beforeRestart();
    expect(await read()).toBe('with the new instance\n');
    expect(applier.serving).toBe(served);
    applier.stop();
  });

  it('when the file cannot be written before a restart, what HAProxy then serves is what the file holds', async () => {
    const { haproxy } = fakeHaproxy();
    const applier = new ConfigApplier({ configFile: file, haproxyBin: 'true', haproxy, logger, writeDelayMs: 60_000 });
    await writeFile(file, 'last written\n');
    const written = textContent('last written\n');
    applier.adoptRuntimeChange(written);
    await applier.flush();
    applier.adoptRuntimeChange(textContent('never written\n'));
    await rm(file);
    await blockFile();
    await applier.beforeRestart();
    expect(applier.serving).toBe(written);
    applier.stop();
  });
});
