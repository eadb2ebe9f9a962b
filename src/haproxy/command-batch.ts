/**
 * Runtime API commands sent together: every command queued in the same turn of the event loop
 * goes out on one connection, `;`-separated, as the CLI accepts them. At a start with thousands
 * of servers proven at once this is a few dozen connections instead of thousands. A line stays
 * well under HAProxy's buffer size (tune.bufsize, 16 kB by default), which bounds a CLI line.
 */
const MAX_LINE = 8 * 1024;

type Send = (line: string) => Promise<string>;
/** Whether an answer (of one or several commands) reports a failure. */
type Failed = (answer: string) => boolean;

interface Queued {
  readonly command: string;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class CommandBatch {
  private queue: Queued[] = [];
  private scheduled = false;

  constructor(
    private readonly send: Send,
    private readonly failed: Failed,
  ) {}

  /** Resolves once the line holding `command` was answered without a failure. */
  run(command: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ command, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    const queued = this.queue;
    this.queue = [];
    let line: Queued[] = [];
    let length = 0;
    for (const item of queued) {
      if (line.length > 0 && length + item.command.length + 2 > MAX_LINE) {
        void this.sendLine(line);
        line = [];
        length = 0;
      }
      line.push(item);
      length += item.command.length + 2;
    }
    if (line.length > 0) void this.sendLine(line);
  }

  private async sendLine(items: readonly Queued[]): Promise<void> {
    const text = items.map((i) => i.command).join('; ');
    try {
      const answer = await this.send(text);
      if (this.failed(answer)) throw new Error(`"${shorten(text)}" failed: ${answer.trim().replace(/\s+/g, ' ')}`);
      for (const item of items) item.resolve();
    } catch (error) {
      for (const item of items) item.reject(error as Error);
    }
  }
}

function shorten(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
