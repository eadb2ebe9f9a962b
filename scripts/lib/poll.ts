import net from 'node:net';

/** Waiting helpers shared by the tests, the demo and the benchmarks: poll with a deadline, never sleep blindly. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` returns something other than undefined/false; throws after the deadline or when `bail` throws. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 20, what = 'condition', bail }: { timeoutMs?: number; intervalMs?: number; what?: string; bail?: () => void } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    bail?.(); // throws to give up at once (say, the process being waited for has exited)
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : lastError ? `: ${String(lastError)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

// Ports already handed out by this process: a released port is free again at once, and the OS
// may hand it out a second time before whoever asked for it first has bound it.
const handedOut = new Set<number>();

/** A port the OS just handed out and released, never the same one twice. `host` undefined means every interface. */
export async function freePort(host: string | undefined = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await askForPort(host);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no unused free port after 50 attempts');
}

function askForPort(host: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen({ port: 0, host }, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
