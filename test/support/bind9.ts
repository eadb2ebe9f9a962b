import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { decodeAnswer, exchange, queryMessage } from '../../src/acme/dns-wire.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/** Debian installs named in /usr/sbin, which a non-login shell's PATH may lack. */
const NAMED = existsSync('/usr/sbin/named') ? '/usr/sbin/named' : 'named';

export interface Bind9Options {
  /** The zone it is primary for, e.g. `example.test`. */
  readonly zone: string;
  readonly keyName: string;
  /** Base64, as in a `key` statement. */
  readonly secret: string;
  readonly algorithm?: string;
}

export interface Bind9 {
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** What named printed, for a failed test's message. */
  readonly output: string[];
  stop(): Promise<void>;
}

/**
 * Debian's BIND 9 (`named -g`, in the foreground) as the primary of one zone that accepts
 * dynamic updates signed with one TSIG key, on a random loopback port (UDP and TCP), its
 * configuration, zone and journal in a temp dir. No recursion: it answers for its zone only.
 */
export async function startBind9(options: Bind9Options): Promise<Bind9> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edgelb-bind9-'));
  const port = await freePort();
  const zoneFile = path.join(dir, `${options.zone}.zone`);
  await writeFile(
    zoneFile,
    ['$TTL 60', `@ IN SOA ns1.${options.zone}. hostmaster.${options.zone}. 1 60 60 600 60`, `@ IN NS ns1.${options.zone}.`, 'ns1 IN A 127.0.0.1', ''].join(
      '\n',
    ),
  );
  const conf = path.join(dir, 'named.conf');
  await writeFile(
    conf,
    `options {
  directory "${dir}";
  pid-file "${dir}/named.pid";
  session-keyfile "${dir}/session.key";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
};
controls { };
key "${options.keyName}" {
  algorithm ${options.algorithm ?? 'hmac-sha256'};
  secret "${options.secret}";
};
zone "${options.zone}" {
  type primary;
  file "${zoneFile}";
  allow-update { key "${options.keyName}"; };
};
`,
  );
  const output: string[] = [];
  const child: ResultPromise = execa(NAMED, ['-g', '-c', conf], { reject: false, cleanup: true, stdin: 'ignore', buffer: false, all: true });
  child.all?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) output.push(line);
    if (process.env.EDGELB_TEST_LOGS) process.stderr.write(chunk);
  });
  let exited = false;
  void child.finally(() => {
    exited = true;
  });
  const stop = async () => {
    child.kill('SIGTERM');
    // named that ignores SIGTERM for 5 s is killed: a test's cleanup never hangs on it.
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await child.catch(() => undefined);
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const server = { host: '127.0.0.1', port };
    await waitFor(
      async () => {
        if (exited) throw new Error(`named exited: ${output.slice(-5).join(' | ')}`);
        const answer = await exchange(server, queryMessage(options.zone, 'SOA', false), 500).catch(() => undefined);
        return answer !== undefined && (decodeAnswer(server, answer).answers ?? []).some((a) => a.type === 'SOA');
      },
      { timeoutMs: 15_000, what: 'named to serve the zone' },
    );
    return { port, address: `127.0.0.1:${port}`, output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
