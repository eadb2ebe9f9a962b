import net from 'node:net';
import { EdgelbError } from '../errors.js';

/** A failure talking to one of HAProxy's CLI sockets: `haproxy_socket_unreachable` or `haproxy_socket_timeout`. */
export class HaproxySocketError extends EdgelbError {}

/**
 * Sends one command to an HAProxy CLI socket (master or worker) and returns the answer.
 * The write side is closed right after the command, which tells HAProxy to answer once
 * and close (non-interactive mode, management guide section 9.3).
 */
export function sendCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new HaproxySocketError('haproxy_socket_timeout', `no answer from ${socketPath} to "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.end(`${command}\n`));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(new HaproxySocketError('haproxy_socket_unreachable', `${socketPath}: ${error.message}`, { cause: error }));
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

export interface MasterProcessInfo {
  readonly masterPid: number;
  readonly reloads: number;
  readonly failedReloads: number;
  readonly workers: readonly { pid: number; reloads: number }[];
}

/** Parses the master CLI's `show proc` table (HAProxy 2.6 layout). */
export function parseShowProc(text: string): MasterProcessInfo {
  let masterPid = 0;
  let reloads = 0;
  let failedReloads = 0;
  const workers: { pid: number; reloads: number }[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('# workers')) section = 'workers';
    else if (line.startsWith('# programs')) section = 'programs';
    else if (line.startsWith('#') || line.trim() === '') continue;
    else {
      const cols = line.trim().split(/\s+/);
      if (cols[1] === 'master') {
        masterPid = Number(cols[0]);
        reloads = Number(cols[2]);
        const failed = /\[failed: (\d+)\]/.exec(line);
        failedReloads = failed ? Number(failed[1]) : 0;
      } else if (section === 'workers' && cols[1] === 'worker') {
        workers.push({ pid: Number(cols[0]), reloads: Number(cols[2]) });
      }
    }
  }
  return { masterPid, reloads, failedReloads, workers };
}
