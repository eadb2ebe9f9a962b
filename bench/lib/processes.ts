/**
 * Processes and their memory and CPU, from Linux's /proc: what runs under the controller (its
 * HAProxy master and workers), resident memory (VmRSS) and proportional memory (Pss, which
 * counts a page shared by a master and its forked workers once in all instead of once each).
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { parseShowProc, sendCommand, type MasterProcessInfo } from '../../src/haproxy/master-cli.js';

export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
  /** utime + stime, in seconds. */
  readonly cpuS: number;
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    const fields = text.slice(close + 2).split(' ');
    return {
      pid,
      ppid: Number(fields[1]),
      comm: text.slice(open + 1, close),
      cpuS: (Number(fields[11]) + Number(fields[12])) / clockTicks(),
    };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Every live process below `root` (children, their children, ...), not `root` itself. */
export async function descendants(root: number): Promise<ProcessInfo[]> {
  const all = (await Promise.all((await readdir('/proc')).filter((p) => /^\d+$/.test(p)).map((p) => processInfo(Number(p))))).filter(
    (p): p is ProcessInfo => p !== undefined,
  );
  const byParent = new Map<number, ProcessInfo[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const found: ProcessInfo[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

/** The HAProxy processes the controller `controllerPid` runs: its master and the master's workers (old ones too). */
export async function haproxyProcesses(controllerPid: number): Promise<{ master: ProcessInfo | undefined; workers: ProcessInfo[] }> {
  const below = (await descendants(controllerPid)).filter((p) => p.comm === 'haproxy');
  const pids = new Set(below.map((p) => p.pid));
  return {
    master: below.find((p) => !pids.has(p.ppid)),
    workers: below.filter((p) => pids.has(p.ppid)),
  };
}

export interface Memory {
  /** Resident set (VmRSS), KiB. */
  readonly rssKiB: number;
  /** Proportional set (Pss from smaps_rollup), KiB; undefined where the kernel does not offer it. */
  readonly pssKiB: number | undefined;
}

export async function memoryOf(pid: number): Promise<Memory | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    let pss: number | undefined;
    try {
      const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
      const m = /^Pss:\s+(\d+) kB/m.exec(rollup);
      pss = m ? Number(m[1]) : undefined;
    } catch {
      pss = undefined;
    }
    return { rssKiB: rss ? Number(rss[1]) : 0, pssKiB: pss };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Sum of the memory of `pids` (those still alive). */
export async function totalMemory(pids: readonly number[]): Promise<Memory & { processes: number }> {
  const all = (await Promise.all(pids.map(memoryOf))).filter((m): m is Memory => m !== undefined);
  return {
    processes: all.length,
    rssKiB: all.reduce((s, m) => s + m.rssKiB, 0),
    pssKiB: all.every((m) => m.pssKiB !== undefined) ? all.reduce((s, m) => s + m.pssKiB!, 0) : undefined,
  };
}

/** CPU seconds (user + system) of `pids`, those still alive. */
export async function cpuSeconds(pids: readonly number[]): Promise<number> {
  const all = await Promise.all(pids.map(processInfo));
  return all.reduce((s, p) => s + (p?.cpuS ?? 0), 0);
}

/**
 * The master CLI's `show proc`: the master, its workers and the reload count; `oldWorkers` are
 * those listed under "# old workers" (still finishing connections after a reload).
 */
export async function showProc(masterSocket: string): Promise<MasterProcessInfo & { currentWorkers: number; oldWorkers: number; raw: string }> {
  const raw = await sendCommand(masterSocket, 'show proc', 5000);
  let section = '';
  let currentWorkers = 0;
  let oldWorkers = 0;
  for (const line of raw.split('\n')) {
    if (line.startsWith('#')) {
      section = line.startsWith('# old workers') ? 'old' : line.startsWith('# workers') ? 'current' : line.startsWith('# ') ? 'other' : section;
    } else if (/^\s*\d+\s+worker\s/.test(line)) {
      if (section === 'old') oldWorkers++;
      else if (section === 'current') currentWorkers++;
    }
  }
  return { ...parseShowProc(raw), currentWorkers, oldWorkers, raw };
}
