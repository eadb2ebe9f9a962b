import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/local-stack.js';

/**
 * Command-line options of the load benchmarks: integer options with bounds (so every run is
 * bounded in time and count), plus the two every benchmark has: --from and --out.
 */
export interface IntOption {
  readonly flag: `--${string}`;
  readonly help: string;
  readonly default: number;
  readonly min: number;
  readonly max: number;
}

export interface CommonOptions {
  readonly from: 'source' | 'dist';
  readonly out: string;
}

export type Parsed<K extends string> = { readonly [key in K]: number } & CommonOptions;

export function usage<K extends string>(name: string, options: Readonly<Record<K, IntOption>>): string {
  const specs = Object.values<IntOption>(options);
  const lines = specs.map((o) => `  ${`${o.flag} N`.padEnd(20)}${o.help} (default ${o.default}, ${o.min}..${o.max})`);
  return [
    `usage: npm run bench -- ${name} ${specs.map((o) => `[${o.flag} N]`).join(' ')} [--from source|dist] [--out FILE]`,
    ...lines,
    `  ${'--from'.padEnd(20)}run the controller from src/ through tsx (default) or from the built dist/`,
    `  ${'--out FILE'.padEnd(20)}JSON results (default bench/results/${name}.json)`,
  ].join('\n');
}

/** The options' values, or a message: '' for --help, else what is wrong. */
export function parseOptions<K extends string>(name: string, args: readonly string[], options: Readonly<Record<K, IntOption>>): Parsed<K> | string {
  const values = Object.fromEntries(Object.entries<IntOption>(options).map(([key, o]) => [key, o.default])) as Record<K, number>;
  let from: CommonOptions['from'] = 'source';
  let out = path.join(REPO_ROOT, 'bench', 'results', `${name}.json`);
  for (let i = 0; i < args.length; i++) {
    let arg = args[i]!;
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = () => inline ?? args[++i];
    if (arg === '--help' || arg === '-h') return '';
    if (arg === '--out') {
      const v = value();
      if (!v) return '--out needs a value';
      out = path.resolve(v);
      continue;
    }
    if (arg === '--from') {
      const v = value();
      if (v !== 'source' && v !== 'dist') return '--from must be source or dist';
      from = v;
      continue;
    }
    const entry = Object.entries<IntOption>(options).find(([, o]) => o.flag === arg);
    if (!entry) return `unknown argument ${JSON.stringify(arg)}`;
    const [key, o] = entry;
    const raw = value();
    const n = Number(raw);
    if (raw === undefined || raw.trim() === '' || !Number.isInteger(n) || n < o.min || n > o.max) {
      return `${o.flag} must be an integer ${o.min}..${o.max}, got ${JSON.stringify(raw ?? '')}`;
    }
    values[key as K] = n;
  }
  return { ...values, from, out };
}

/** Prints usage or the problem; the exit code (0 for --help, 2 for a bad argument). */
export function explain<K extends string>(name: string, problem: string, options: Readonly<Record<K, IntOption>>): number {
  (problem ? process.stderr : process.stdout).write(`${problem ? `${name}: ${problem}\n` : ''}${usage(name, options)}\n`);
  return problem ? 2 : 0;
}
