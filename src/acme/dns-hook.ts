import { execa } from 'execa';
import type { Logger } from '../log.js';
import type { DnsPublisher, DnsRecord } from './dns-publisher.js';
import { AcmeError } from './interruption.js';

export interface DnsHookOptions {
  /** An executable: called as `<path> present <fqdn> <value>` and `<path> cleanup <fqdn> <value>`. */
  readonly path: string;
  /** Per call; then its whole process group is killed (default 60 s). */
  readonly timeoutMs: number;
  /** Environment variables of edgelb's own secrets, not passed to the hook. */
  readonly withheldEnv: readonly string[];
}

/** How much of the hook's output a log line keeps. */
const OUTPUT_CHARS = 500;

/**
 * DNS-01 through an operator's executable, the convention of lego's `exec` provider:
 * `<hook> present _acme-challenge.example.com. <value>`, then `<hook> cleanup ...` with the same
 * arguments. Exit 0 is success; anything else (or the timeout) fails the attempt, which then
 * backs off like any other failure. The hook runs in a process group of its own so a timeout
 * kills what it started too. Its output is logged, trimmed; edgelb's secrets are not in its
 * environment.
 */
export class DnsHookPublisher implements DnsPublisher {
  readonly describe: string;

  constructor(private readonly options: DnsHookOptions) {
    this.describe = `hook ${options.path}`;
  }

  present(record: DnsRecord, log: Logger, signal: AbortSignal): Promise<void> {
    return this.run('present', record, log, signal);
  }

  cleanup(record: DnsRecord, log: Logger): Promise<void> {
    return this.run('cleanup', record, log, undefined);
  }

  private async run(action: 'present' | 'cleanup', record: DnsRecord, log: Logger, signal: AbortSignal | undefined): Promise<void> {
    const { path, timeoutMs, withheldEnv } = this.options;
    const started = Date.now();
    const child = execa(path, [action, record.fqdn, record.value], {
      reject: false,
      stdin: 'ignore',
      all: true,
      detached: true,
      env: Object.fromEntries(withheldEnv.map((name) => [name, undefined])),
    });
    let ended: string | undefined;
    const killGroup = (why: string) => {
      ended ??= why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => killGroup(`timed out after ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => killGroup('interrupted');
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    try {
      const result = await child;
      const output = trimmed(String(result.all ?? ''));
      const tookMs = Date.now() - started;
      if (ended === undefined && result.exitCode === 0) {
        log.info({ action, fqdn: record.fqdn, tookMs, ...(output ? { output } : {}) }, 'ACME DNS hook done');
        return;
      }
      const why =
        ended ?? (result.exitCode !== undefined ? `exited with ${result.exitCode}` : result.signal ? `killed by ${result.signal}` : notStarted(result));
      log.warn({ action, fqdn: record.fqdn, tookMs, why, ...(output ? { output } : {}) }, 'ACME DNS hook failed');
      throw new AcmeError('dns-hook-failed', `the DNS hook's ${action} for ${record.fqdn} ${why}${output ? `: ${output.split('\n').at(-1)}` : ''}`);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** A hook that never ran (removed or made unexecutable since the settings were checked): the spawn error's code. */
function notStarted(result: object): string {
  const code = 'code' in result && typeof result.code === 'string' ? result.code : 'no process';
  return `could not be started (${code})`;
}

function trimmed(text: string): string {
  const clean = text.replace(/[^\x20-\x7e\n\t]/g, '').trim();
  return clean.length > OUTPUT_CHARS ? `…${clean.slice(-OUTPUT_CHARS)}` : clean;
}
