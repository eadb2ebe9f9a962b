import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const MAIN = path.join(import.meta.dirname, '../../src/main.ts');

export interface EdgelbProcess {
  readonly child: ResultPromise;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Waits until the output contains `text` (or matches it). */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
}

/**
 * The settings every test controller needs: its etcd and prefix, its own free ports (HTTP as
 * given, so a second controller can share it) and state dir.
 */
export async function edgelbEnv(etcdEndpoint: string, prefix: string, httpPort: number, stateDir: string): Promise<Record<string, string>> {
  return {
    ETCD_ENDPOINTS: etcdEndpoint,
    ETCD_PATH: prefix,
    KONTENA_LB_HTTP_PORT: String(httpPort),
    KONTENA_LB_HTTPS_PORT: String(await freePort()),
    KONTENA_LB_STATS_PORT: String(await freePort()),
    KONTENA_LB_ADMIN_PORT: String(await freePort()),
    KONTENA_LB_STATE_DIR: stateDir,
  };
}

/**
 * One edgelb command (`check`, `render`, `cert ...`) as its own process from the source, with
 * exactly the given environment; resolves with its exit code and output, whatever they are.
 */
export function edgelbCommand(args: readonly string[], env: Record<string, string> = {}) {
  return execa('node', ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    extendEnv: false,
    reject: false,
    cwd: path.resolve(import.meta.dirname, '../..'),
    timeout: 60_000,
  });
}

/** `edgelb run` as its own process (as operators run it), with exactly the given environment. */
export function runEdgelb(env: Record<string, string>, args: string[] = []): EdgelbProcess {
  const child = execa('node', ['--import', 'tsx', MAIN, 'run', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    extendEnv: false,
    reject: false,
    all: true,
    buffer: false,
  });
  let output = '';
  child.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (process.env.EDGELB_TEST_LOGS) process.stderr.write(chunk);
  });
  const matches = (text: string | RegExp) => (typeof text === 'string' ? output.includes(text) : text.test(output));
  return {
    child,
    output: () => output,
    waitForOutput: (text, timeoutMs = 20_000) =>
      waitFor(() => matches(text), {
        timeoutMs,
        what: `edgelb to print ${String(text)}`,
        bail: () => {
          if (child.exitCode !== null) throw new Error(`edgelb exited with ${child.exitCode} before printing ${String(text)}:\n${output.slice(-2000)}`);
        },
      }).then(() => undefined),
  };
}

/**
 * Live (not zombie) HAProxy processes running `configFile`, as masters and workers: a master is
 * one whose parent is not itself one of them.
 */
export async function haproxyProcesses(configFile: string): Promise<{ masters: number[]; workers: number[] }> {
  const found = new Map<number, number>(); // pid -> ppid
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const [cmdline, stat] = await Promise.all([
      readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => ''),
      readFile(`/proc/${entry}/stat`, 'utf8').catch(() => ''),
    ]);
    const args = cmdline.split('\0');
    if (!/haproxy/.test(args[0] ?? '') || args[args.indexOf('-f') + 1] !== configFile) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') continue;
    found.set(Number(entry), Number(fields[1]));
  }
  const masters = [...found].filter(([, ppid]) => !found.has(ppid)).map(([pid]) => pid);
  const workers = [...found].filter(([, ppid]) => found.has(ppid)).map(([pid]) => pid);
  return { masters, workers };
}
