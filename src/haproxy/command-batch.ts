/**
 * Runtime API commands sent together: every command queued in the same turn of the event loop
 * goes out on one connection, `;`-separated, as the CLI accepts them. At a start with thousands
 * of servers proven at once this is a few dozen connections instead of thousands. A line stays
 * well under HAProxy's buffer size (tune.bufsize, 16 kB by default), which bounds a CLI line.
 *
 * While held (a reload under way: the admin socket is about to belong to a new worker), nothing
 * is sent; `release` then sends what the next worker still has and drops the rest.
 */
const MAX_LINE = 8 * 1024;

type Send = (line: string) => Promise<string>;
/** Whether an answer (of one or several commands) reports a failure. */
type Failed = (answer: string) => boolean;

interface Queued {
  readonly command: string;
  /** What the command is about (e.g. a server at an address), for `release` to decide on. */
  readonly tag: string | undefined;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class CommandBatch {
  private queue: Queued[] = [];
  private scheduled = false;
  private held = false;
  /** Lines sent and not yet answered. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly send: Send,
    private readonly failed: Failed,
  ) {}

  /** Resolves once `command` was answered without a failure (or dropped by `release`). */
  run(command: string, tag?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ command, tag, resolve, reject });
      this.schedule();
    });
  }

  /** Sends nothing more until `release`; resolves once the lines already sent are answered. */
  async hold(): Promise<void> {
    this.held = true;
    await Promise.allSettled([...this.inFlight]);
  }

  /** Sends what was held whose tag `keep` accepts; the others are dropped (resolved unsent). */
  release(keep: (tag: string | undefined) => boolean = () => true): void {
    this.held = false;
    const kept: Queued[] = [];
    for (const item of this.queue) {
      if (keep(item.tag)) kept.push(item);
      else item.resolve();
    }
    this.queue = kept;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.held || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    if (this.held) return;
    const queued = this.queue;
    this.queue = [];
    let line: Queued[] = [];
    let length = 0;
    for (const item of queued) {
      if (line.length > 0 && length + item.command.length + 2 > MAX_LINE) {
        this.track(this.sendLine(line));
        line = [];
        length = 0;
      }
      line.push(item);
      length += item.command.length + 2;
    }
    if (line.length > 0) this.track(this.sendLine(line));
  }

  private track(sending: Promise<void>): void {
    this.inFlight.add(sending);
    void sending.finally(() => this.inFlight.delete(sending));
  }

  private async sendLine(items: readonly Queued[]): Promise<void> {
    try {
      const answer = await this.send(items.map((i) => i.command).join('; '));
      if (!this.failed(answer)) {
        for (const item of items) item.resolve();
        return;
      }
      if (items.length === 1) throw new Error(`"${shorten(items[0]!.command)}" failed: ${answer.trim().replace(/\s+/g, ' ')}`);
    } catch (error) {
      for (const item of items) item.reject(error as Error);
      return;
    }
    // HAProxy ran every command of the line; which one failed? Each again on its own (they are
    // idempotent: a health state, an address), so only that one is reported. One at a time: the
    // admin socket takes few connections at once.
    for (const item of items) await this.sendLine([item]);
  }
}

function shorten(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
