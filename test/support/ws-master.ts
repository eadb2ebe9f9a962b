import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import WebSocket from 'ws';
import { waitFor } from './wait.js';

/**
 * Masters (test/fixtures/apps/ha-master.mjs) as real child processes, and a WebSocket client
 * that turns the ws events into promises a test can await with a deadline.
 */

const FIXTURE = path.join(import.meta.dirname, '../fixtures/apps/ha-master.mjs');

export interface Master {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  /** SIGKILL: the process dies with its connections, as a crashed master would. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMaster(name: string): Promise<Master> {
  const child: ResultPromise = execa('node', [FIXTURE, name], { reject: false, cleanup: true, stdin: 'ignore', stderr: 'inherit' });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const port = await waitFor(() => Number(/listening ([0-9]+)/.exec(output)?.[1] ?? 0) || false, { timeoutMs: 10_000, what: `master ${name} to listen` });
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await child;
  };
  return { name, port, address: `127.0.0.1:${port}`, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}

export interface WsClient {
  readonly socket: WebSocket;
  /** Sends `text` and resolves with the next message received. */
  echo(text: string, timeoutMs?: number): Promise<string>;
  /** Resolves with the close code once the connection is closed (by either side). */
  readonly closed: Promise<number>;
  isOpen(): boolean;
  close(): void;
}

/** Opens a WebSocket (ws:// or wss://) and resolves once it is open. */
export function openWs(url: string, options: WebSocket.ClientOptions = {}, timeoutMs = 5000): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { handshakeTimeout: timeoutMs, ...options });
    const closed = new Promise<number>((done) => socket.once('close', (code) => done(code)));
    socket.once('error', reject);
    socket.once('open', () => {
      socket.off('error', reject);
      socket.on('error', () => undefined); // reported through `closed`
      resolve({
        socket,
        closed,
        isOpen: () => socket.readyState === WebSocket.OPEN,
        close: () => socket.terminate(),
        echo: (text, echoTimeoutMs = 3000) =>
          new Promise((done, fail) => {
            const timer = setTimeout(() => fail(new Error(`no WebSocket reply to ${JSON.stringify(text)} within ${echoTimeoutMs} ms`)), echoTimeoutMs);
            socket.once('message', (data) => {
              clearTimeout(timer);
              done(data.toString());
            });
            socket.once('close', (code) => {
              clearTimeout(timer);
              fail(new Error(`WebSocket closed (${code}) before replying to ${JSON.stringify(text)}`));
            });
            socket.send(text);
          }),
      });
    });
  });
}
