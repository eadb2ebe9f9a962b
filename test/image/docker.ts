import { execa } from 'execa';
import { waitFor } from '../support/wait.js';

/**
 * The image under test and the containers the image tests start. scripts/image-test.sh builds the
 * image and runs these tests inside the network namespace of a holder container; every container
 * here joins that namespace, so etcd, the backends and the clients in this process reach edgelb on
 * 127.0.0.1 and the containers' ports 80 and 443 are the namespace's own.
 */

export interface ImageUnderTest {
  readonly image: string;
  /** `container:<holder>`, the `--network` every container of the test joins. */
  readonly network: string;
}

export function imageUnderTest(): ImageUnderTest {
  const image = process.env.EDGELB_TEST_IMAGE;
  const network = process.env.EDGELB_TEST_NETWORK;
  if (!image || !network) throw new Error('run by scripts/image-test.sh, which sets EDGELB_TEST_IMAGE and EDGELB_TEST_NETWORK');
  return { image, network };
}

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await execa('docker', args);
  return stdout.trim();
}

export interface Container {
  readonly name: string;
  /** `docker inspect -f <format>`. */
  inspect(format: string): Promise<string>;
  exec(...command: string[]): Promise<string>;
  logs(): Promise<string>;
  /** `docker stop -t <graceSeconds>`; resolves with how long it took, in ms. */
  stop(graceSeconds: number): Promise<number>;
  remove(): Promise<void>;
}

let counter = 0;

export interface RunOptions {
  readonly env: Readonly<Record<string, string>>;
  readonly volume?: string;
  /** More `docker run` arguments, before the image. */
  readonly args?: readonly string[];
}

/** `docker run -d` of the image under test in the shared network namespace, with `env`. */
export async function runImage(options: RunOptions): Promise<Container> {
  const { image, network } = imageUnderTest();
  const name = `edgelb-image-test-${process.pid}-${++counter}`;
  const env = Object.entries(options.env).flatMap(([key, value]) => ['--env', `${key}=${value}`]);
  const volume = options.volume ? ['--volume', `${options.volume}:/var/lib/edgelb`] : [];
  await docker('run', '--detach', '--name', name, '--network', network, ...env, ...volume, ...(options.args ?? []), image);
  return {
    name,
    inspect: (format) => docker('inspect', '--format', format, name),
    exec: (...command) => docker('exec', name, ...command),
    logs: async () => {
      const { stdout, stderr } = await execa('docker', ['logs', name], { reject: false });
      return `${stdout}\n${stderr}`;
    },
    async stop(graceSeconds) {
      const started = Date.now();
      await docker('stop', '--time', String(graceSeconds), name);
      return Date.now() - started;
    },
    remove: async () => {
      await execa('docker', ['rm', '--force', '--volumes', name], { reject: false });
    },
  };
}

/** Waits until the container has exited; returns its exit code. */
export async function exitCodeOf(container: Container, timeoutMs = 30_000): Promise<number> {
  await waitFor(async () => (await container.inspect('{{.State.Running}}')) === 'false', { timeoutMs, intervalMs: 200, what: `${container.name} to exit` });
  return Number(await container.inspect('{{.State.ExitCode}}'));
}

/**
 * waitFor, giving up at once (with the container's log) when the container has exited: edgelb
 * stopping on a bad setting fails the test in a second, with the reason, not at the deadline.
 */
export async function waitWhileRunning<T>(
  container: Container,
  check: () => Promise<T | undefined | false>,
  options: { timeoutMs: number; what: string },
): Promise<T> {
  type Outcome = { readonly exited: true } | { readonly exited: false; readonly value: T };
  const result = await waitFor(
    async (): Promise<Outcome | undefined> => {
      if ((await container.inspect('{{.State.Running}}')) !== 'true') return { exited: true };
      const value = await check();
      return value === undefined || value === false ? undefined : { exited: false, value };
    },
    { ...options, intervalMs: 250 },
  );
  if (result.exited) {
    const code = await container.inspect('{{.State.ExitCode}}');
    throw new Error(`${container.name} exited (code ${code}) while waiting for ${options.what}:\n${(await container.logs()).slice(-3000)}`);
  }
  return result.value;
}
