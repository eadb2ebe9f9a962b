import type { Logger } from '../log.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/** A config as the applier hands it around: its text, or the same in pieces (see RenderedConfig). */
export interface ConfigContent {
  readonly text: string;
  pieces(): Iterable<string>;
}

export function textContent(text: string): ConfigContent {
  return { text, pieces: () => [text] };
}

export interface ConfigFileOptions {
  readonly file: string;
  readonly logger: Logger;
  /** How long after a runtime change the file is written (default 500 ms): the changes meanwhile are one write. */
  readonly delayMs?: number;
}

/**
 * Writing the file costs about 30 ms of CPU with 10,000 services: during a rolling deploy (ten
 * instance changes a second) at most two writes a second, not ten. The file lags the runtime by
 * that much only for the next run of the controller after a crash of its own (HAProxy's restart
 * and reloads flush first), which reads it only when etcd cannot be reached.
 */
const DELAY_MS = 500;
const RETRY_MS = [500, 1000, 2000, 5000, 10_000];

/**
 * haproxy.cfg after a change made through the runtime API: written off the latency path. With
 * 10,000 services the file is a few MB and writing it costs tens of milliseconds, which an
 * instance change would otherwise wait for. The file is written `delayMs` after the first change
 * not yet on disk (later ones in the meantime are the same write), atomically as always, and in
 * pieces so that the event loop keeps running. Whatever reads the file (haproxy -c, a reload, a
 * restart of HAProxy, the next run's last good config) must flush() first; a write that fails is
 * retried in the background, and flush() rejects with its error.
 */
export class ConfigFile {
  /** What the file must hold. */
  private wanted: ConfigContent | undefined;
  /** What it holds, as far as this process knows. */
  private written: ConfigContent | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private failures = 0;
  private stopped = false;

  constructor(private readonly options: ConfigFileOptions) {}

  /** What the file holds, as far as this process knows (undefined: not written by it yet). */
  get onDisk(): ConfigContent | undefined {
    return this.written;
  }

  /** The file must come to hold `content`, within `delayMs`. */
  schedule(content: ConfigContent): void {
    this.wanted = content;
    if (this.stopped) return;
    if (this.timer === undefined && this.writing === undefined) this.timer = setTimeout(() => this.background(), this.options.delayMs ?? DELAY_MS);
  }

  /** Resolves once the file holds the content last scheduled; rejects when it cannot be written. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    return this.run();
  }

  /**
   * The caller wrote `content` to the file itself (a commit's rename), or removed it (undefined):
   * nothing older may land after it, so the caller flush()es first and calls this right after.
   */
  adopt(content: ConfigContent | undefined): void {
    this.wanted = content;
    this.written = content;
  }

  /** Stops background writes (tests; the app flushes before it stops). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private background(): void {
    this.timer = undefined;
    this.run().catch(() => undefined);
  }

  /** One write at a time, until the file holds the latest content. */
  private run(): Promise<void> {
    if (!this.writing) {
      const writing = this.writeLatest().finally(() => {
        if (this.writing === writing) this.writing = undefined;
      });
      this.writing = writing;
    }
    return this.writing;
  }

  private async writeLatest(): Promise<void> {
    try {
      while (this.wanted !== undefined && this.wanted !== this.written) {
        const content = this.wanted;
        await writeFileAtomic(this.options.file, content.pieces());
        this.written = content;
      }
      if (this.failures > 0) this.options.logger.info({ file: this.options.file }, 'config file written again');
      this.failures = 0;
    } catch (error) {
      const retryInMs = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)]!;
      if (this.failures === 0) {
        this.options.logger.error({ err: error, retryInMs }, 'cannot write the config file: a reload or restart of HAProxy would start with the previous one');
      }
      this.failures++;
      clearTimeout(this.timer);
      if (!this.stopped) this.timer = setTimeout(() => this.background(), retryInMs);
      throw error;
    }
  }
}
