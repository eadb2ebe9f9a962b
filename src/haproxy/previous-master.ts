import { readFileSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-write.js';

/**
 * The HAProxy master a previous edgelb run left behind. HAProxy runs in the foreground as the
 * controller's child, but when the controller is killed hard (SIGKILL, OOM) its HAProxy keeps
 * running and serving, re-parented to init. The next controller on the same state dir must not
 * start a second master next to it: with SO_REUSEPORT both would accept connections, and the
 * old one would never learn a new config. The master's pid is kept in the state dir so the next
 * run can find it and take its listening sockets over.
 */

/** The pid in `pidFile` if that process is alive (not a zombie) and is HAProxy running `configFile`. */
export async function findPreviousMaster(pidFile: string, configFile: string): Promise<number | undefined> {
  const text = await readFile(pidFile, 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  if (!Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid) return undefined;
  if (!isAlive(pid)) return undefined;
  // The pid may have been reused by an unrelated process since the file was written.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline === undefined) return undefined;
  const args = cmdline.split('\0');
  const fileArg = args.indexOf('-f');
  return /haproxy/.test(args[0] ?? '') && args[fileArg + 1] === configFile ? pid : undefined;
}

/** True while the process exists and has not exited (a zombie waiting to be reaped has exited). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false; // no /proc: trust kill(pid, 0)
  }
  // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  return stat.charAt(stat.lastIndexOf(')') + 2) === 'Z';
}

export async function recordMaster(pidFile: string, pid: number): Promise<void> {
  await writeFileAtomic(pidFile, `${pid}\n`, 0o644);
}

export async function forgetMaster(pidFile: string): Promise<void> {
  await unlink(pidFile).catch(() => undefined);
}
