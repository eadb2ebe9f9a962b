import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { makeCa, makeLeaf } from './certs.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface PebbleOptions {
  /** The port pebble's validation authority connects to for HTTP-01: the load balancer's HTTP port. */
  readonly httpPort: number;
  /** Percentage of good nonces pebble rejects (PEBBLE_WFE_NONCEREJECT); 0 by default. */
  readonly nonceReject?: number;
  /** Percentage of orders that reuse a valid authorization (PEBBLE_AUTHZREUSE); 0 by default, so every order has a challenge. */
  readonly authzReuse?: number;
  /** More environment for pebble (PEBBLE_VA_ALWAYS_VALID, PEBBLE_CHAIN_LENGTH, ...). */
  readonly env?: Readonly<Record<string, string>>;
  /** The DNS server pebble resolves through (`host:port`, e.g. a BIND 9); default pebble-challtestsrv's. */
  readonly dnsServer?: string;
}

export interface Pebble {
  readonly directoryUrl: string;
  /** The CA that signed pebble's own HTTPS listener (trust it to reach the directory). */
  readonly caPem: string;
  /** pebble-challtestsrv's DNS server (`127.0.0.1:<port>`): its TXT records come from its management API. */
  readonly challtestDns: string;
  /** pebble-challtestsrv's management API (`/set-txt`, `/clear-txt`). */
  readonly challtestUrl: string;
  /** Everything pebble and pebble-challtestsrv printed, for debugging a failed test. */
  readonly output: string[];
  /** Pebble's issuing root (a new one every run), from its management interface. */
  rootCa(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Debian's pebble (a test ACME CA) with its own pebble-challtestsrv as DNS server, which answers
 * every A query with 127.0.0.1 (and no AAAA), so every name validates against the local load
 * balancer at `httpPort`. Everything on random loopback ports; the listener certificate is made
 * with the test CA helpers (openssl).
 */
export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-pebble-'));
  const ca = await makeCa('pebble listener CA');
  const leaf = await makeLeaf({ names: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });
  await writeFile(path.join(dir, 'cert.pem'), leaf.certPem);
  await writeFile(path.join(dir, 'key.pem'), leaf.keyPem);

  const [acmePort, managementPort, tlsPort, dnsPort, challtestManagementPort] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
  await writeFile(
    path.join(dir, 'pebble-config.json'),
    JSON.stringify(
      {
        pebble: {
          listenAddress: `127.0.0.1:${acmePort}`,
          managementListenAddress: `127.0.0.1:${managementPort}`,
          certificate: path.join(dir, 'cert.pem'),
          privateKey: path.join(dir, 'key.pem'),
          httpPort: options.httpPort,
          tlsPort,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
        },
      },
      null,
      2,
    ),
  );

  const output: string[] = [];
  const collect = (name: string, child: ResultPromise) => {
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) output.push(`${name}: ${line}`);
        if (process.env.EDGELB_TEST_LOGS) process.stderr.write(chunk);
      });
    }
  };
  const children: ResultPromise[] = [];
  const stop = async () => {
    for (const child of children) child.kill('SIGTERM');
    await Promise.allSettled(children);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const challtestsrv = execa(
      'pebble-challtestsrv',
      [
        '-defaultIPv4',
        '127.0.0.1',
        '-defaultIPv6',
        '',
        '-dns01',
        `127.0.0.1:${dnsPort}`,
        '-http01',
        '',
        '-https01',
        '',
        '-tlsalpn01',
        '',
        '-management',
        `127.0.0.1:${challtestManagementPort}`,
      ],
      { reject: false, cleanup: true, stdin: 'ignore', buffer: false },
    );
    children.push(challtestsrv);
    collect('challtestsrv', challtestsrv);
    await waitFor(() => httpStatus(`http://127.0.0.1:${challtestManagementPort}/`).then(() => true), {
      timeoutMs: 10_000,
      what: 'pebble-challtestsrv to start',
      bail: exited(challtestsrv, 'pebble-challtestsrv', output),
    });

    const pebble = execa('pebble', ['-config', path.join(dir, 'pebble-config.json'), '-dnsserver', options.dnsServer ?? `127.0.0.1:${dnsPort}`], {
      reject: false,
      cleanup: true,
      stdin: 'ignore',
      buffer: false,
      cwd: dir,
      env: {
        PEBBLE_VA_NOSLEEP: '1',
        PEBBLE_WFE_NONCEREJECT: String(options.nonceReject ?? 0),
        PEBBLE_AUTHZREUSE: String(options.authzReuse ?? 0),
        ...options.env,
      },
    });
    children.push(pebble);
    collect('pebble', pebble);
    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    await waitFor(() => httpsGet(directoryUrl, ca.certPem).then((r) => r.status === 200), {
      timeoutMs: 15_000,
      what: 'pebble to start',
      bail: exited(pebble, 'pebble', output),
    });
    return {
      directoryUrl,
      challtestDns: `127.0.0.1:${dnsPort}`,
      challtestUrl: `http://127.0.0.1:${challtestManagementPort}`,
      caPem: ca.certPem,
      output,
      async rootCa() {
        const reply = await httpsGet(`https://127.0.0.1:${managementPort}/roots/0`, ca.certPem);
        if (reply.status !== 200) throw new Error(`pebble /roots/0 answered ${reply.status}`);
        return reply.body;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function exited(child: ResultPromise, name: string, output: string[]): () => void {
  let done = false;
  void child.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  return () => {
    if (done) throw new Error(`${name} exited: ${output.slice(-5).join(' | ')}`);
  };
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
  });
}

export function httpsGet(url: string, caPem: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ca: caPem, agent: false, timeout: 2000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
  });
}
