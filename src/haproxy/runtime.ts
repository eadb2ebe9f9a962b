import { sendCommand } from './master-cli.js';
import { refusalIn } from './runtime-answers.js';

export class RuntimeApiError extends Error {}

/** The answer to `command`, or a RuntimeApiError naming it when the answer is a refusal. */
export function accepted(command: string, answer: string): string {
  const refusal = refusalIn(answer);
  if (refusal !== undefined) throw new RuntimeApiError(`"${command}" failed: ${refusal}`);
  return answer;
}

/**
 * HAProxy's runtime API on the worker's admin socket (management guide, section 9.3).
 * Each call is one non-interactive command; a payload follows `<<` and ends with an empty line.
 */
export class HaproxyRuntime {
  constructor(private readonly socketPath: string) {}

  async run(command: string, payload?: string): Promise<string> {
    if (payload !== undefined && /\n\s*\n/.test(payload)) throw new RuntimeApiError('a payload may not contain an empty line');
    const text = payload === undefined ? command : `${command} <<\n${payload.trimEnd()}\n`;
    return accepted(command, await sendCommand(this.socketPath, text));
  }

  /** The answer as it comes, for commands whose success and failure texts the caller knows better. */
  raw(command: string): Promise<string> {
    return sendCommand(this.socketPath, command);
  }

  /** Replaces (or fills a new) certificate in memory: a transaction, then its commit. */
  async storeCert(file: string, pem: string, isNew: boolean): Promise<void> {
    if (isNew) await this.run(`new ssl cert ${file}`);
    await this.run(`set ssl cert ${file}`, pem);
    await this.run(`commit ssl cert ${file}`);
  }

  async addCrtListEntry(crtList: string, line: string): Promise<void> {
    await this.run(`add ssl crt-list ${crtList}`, line);
  }

  async removeCert(crtList: string, file: string): Promise<void> {
    await this.run(`del ssl crt-list ${crtList} ${file}`);
    await this.run(`del ssl cert ${file}`);
  }
}
