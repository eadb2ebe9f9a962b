import { execFileSync } from 'node:child_process';
import os from 'node:os';

/** Helpers shared by the benchmarks: percentiles and where a figure was measured. */

/** Linear interpolation between closest ranks (R-7, as numpy and spreadsheets do). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const low = sorted[lower] ?? NaN;
  const high = sorted[upper] ?? NaN;
  return low + (high - low) * (position - lower);
}

export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export function firstLine(command: string, args: readonly string[]): string {
  try {
    const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin` };
    return (
      execFileSync(command, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 })
        .split('\n')[0]
        ?.trim() ?? ''
    );
  } catch {
    return 'unknown';
  }
}

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly haproxy: string;
  readonly etcd: string;
  readonly [tool: string]: string | number;
}

/** The machine and versions a figure was measured on; `extra` adds tools by their version command. */
export function machineInfo(extra: Record<string, readonly string[]> = {}): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    haproxy: firstLine('haproxy', ['-v']),
    etcd: firstLine('etcd', ['--version']),
    ...Object.fromEntries(Object.entries(extra).map(([name, command]) => [name, firstLine(command[0] ?? name, command.slice(1))])),
  };
}
