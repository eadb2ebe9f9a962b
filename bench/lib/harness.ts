import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { machineInfo, quantile, round, type MachineInfo } from '../report.js';

/**
 * What every load benchmark shares: a total time budget, Ctrl-C that still cleans up, cleanups
 * run in reverse order whatever happens, and the JSON (machine, date, command, method, load
 * average before and after) plus a markdown summary on stdout.
 */
export interface BenchContext {
  readonly name: string;
  readonly startedAt: Date;
  log(line: string): void;
  /** Throws if interrupted or over the time budget. */
  check(): void;
  /** Registers a cleanup; cleanups run last-registered first. */
  defer(cleanup: () => Promise<unknown> | unknown): void;
}

export interface BenchOutput {
  readonly out: string;
  readonly command: string;
  readonly method: Record<string, unknown>;
  readonly results: Record<string, unknown>;
  readonly markdown: (header: ReportHeader) => string;
}

export interface ReportHeader {
  readonly machine: MachineInfo;
  readonly date: string;
  readonly command: string;
  readonly loadAverage: { readonly before: readonly number[]; readonly after: readonly number[] };
}

export async function runBench(name: string, budgetMs: number, body: (ctx: BenchContext) => Promise<BenchOutput>): Promise<number> {
  const startedAt = new Date();
  const loadBefore = os.loadavg().map(round);
  const deadline = Date.now() + budgetMs;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  let aborted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    aborted = signal;
    log(`${name}: ${signal}, stopping after cleanup`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: BenchContext = {
    name,
    startedAt,
    log,
    check() {
      if (aborted) throw new Error(`interrupted by ${aborted}`);
      if (Date.now() > deadline) throw new Error(`over the total time budget of ${Math.round(budgetMs / 60_000)} min`);
    },
    defer: (cleanup) => void cleanups.push(cleanup),
  };
  try {
    const output = await body(ctx);
    const header: ReportHeader = {
      machine: machineInfo(),
      date: startedAt.toISOString(),
      command: output.command,
      loadAverage: { before: loadBefore, after: os.loadavg().map(round) },
    };
    const report = {
      benchmark: name,
      date: header.date,
      command: header.command,
      method: output.method,
      machine: header.machine,
      loadAverage: {
        ...header.loadAverage,
        note: '1, 5 and 15 minute load averages (os.loadavg) when the run started and ended; other work on the machine shares its CPUs',
      },
      results: output.results,
    };
    await mkdir(path.dirname(output.out), { recursive: true });
    await writeFile(output.out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${output.markdown(header)}\n`);
    log(`${name}: JSON written to ${path.relative(process.cwd(), output.out) || output.out}`);
    return 0;
  } catch (error) {
    log(`${name}: failed: ${(error as Error).stack ?? (error as Error).message}`);
    return aborted ? 130 : 1;
  } finally {
    log(`${name}: cleaning up`);
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        log(`  cleanup: ${(error as Error).message}`);
      }
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function commandLine(name: string, args: readonly string[]): string {
  return `npm run bench -- ${name}${args.length > 0 ? ` ${args.join(' ')}` : ''}`;
}

/** The lines every summary ends with: where and when it was measured. */
export function footer(header: ReportHeader): string[] {
  const { machine } = header;
  return [
    `- machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.os}; load average ${header.loadAverage.before.join(' / ')} at the start, ${header.loadAverage.after.join(' / ')} at the end`,
    `- node ${machine.node}; ${machine.haproxy}; ${machine.etcd}`,
    `- date: ${header.date}`,
    `- command: \`${header.command}\``,
  ];
}

export interface Spread {
  readonly n: number;
  readonly median: number;
  readonly p90: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
}

/** Median and percentiles (linear interpolation between closest ranks) of a few values. */
export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: round(quantile(sorted, 0.5)),
    p90: round(quantile(sorted, 0.9)),
    p99: round(quantile(sorted, 0.99)),
    min: round(sorted[0] ?? NaN),
    max: round(sorted[sorted.length - 1] ?? NaN),
  };
}
