import { execa } from 'execa';

export interface ValidationError {
  readonly line: number | undefined;
  readonly message: string;
}

export interface ValidationResult {
  readonly ok: boolean;
  readonly errors: readonly ValidationError[];
}

/** Runs `haproxy -c` on a config file: the same parser the reload will use, so nothing invalid gets that far. */
export async function validateConfigFile(bin: string, file: string): Promise<ValidationResult> {
  const result = await execa(bin, ['-c', '-f', file], { reject: false, all: true, timeout: 60_000 });
  if (result.exitCode === 0) return { ok: true, errors: [] };
  const errors = String(result.all ?? '')
    .split('\n')
    .filter((l) => /\[(ALERT|EMERG)\]/.test(l) && !/Error\(s\) found|Fatal errors found/.test(l))
    .map((l) => {
      const line = /\[[^\]:]+:(\d+)\]/.exec(l);
      return { line: line ? Number(line[1]) : undefined, message: l.replace(/^.*?:\s*config\s*:\s*/, '').trim() };
    });
  return { ok: false, errors: errors.length > 0 ? errors : [{ line: undefined, message: result.shortMessage ?? 'haproxy -c failed' }] };
}
