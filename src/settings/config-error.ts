/**
 * A setting that cannot work; the message is the one line the operator sees (main.ts prints it
 * and exits 2). One code for all: what to fix is in the message, and nothing retries on it.
 */
export class ConfigError extends Error {
  readonly code = 'bad-setting' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}
