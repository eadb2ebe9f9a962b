/** Stage-by-stage progress for long CLI operations, on stderr and only when it is a terminal. */
export interface Progress {
  /** Runs one stage: shows `label...` while it runs, then how long it took and `detail`. */
  step<T>(label: string, work: () => T | Promise<T>, detail?: (value: T) => string): Promise<T>;
}

export interface ProgressStream {
  write(text: string): unknown;
}

/**
 * `enabled` is false when stderr is not a terminal: pipes and logs then get only the command's
 * own output, never carriage returns. Each stage yields to the event loop before starting, so
 * its label is on screen even when the stage itself is synchronous (parsing 10,000 entries).
 */
export function createProgress(stream: ProgressStream, enabled: boolean): Progress {
  return {
    async step(label, work, detail) {
      if (!enabled) return work();
      stream.write(`\x1b[2m${label}...\x1b[0m`);
      await new Promise((resolve) => setImmediate(resolve));
      const started = performance.now();
      try {
        const value = await work();
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        stream.write(`\r\x1b[2K\x1b[2m${label}: ${detail ? `${detail(value)}, ` : ''}${seconds} s\x1b[0m\n`);
        return value;
      } catch (error) {
        stream.write(`\r\x1b[2K${label}: failed\n`);
        throw error;
      }
    },
  };
}

/** 12345 → "12,345". */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}
