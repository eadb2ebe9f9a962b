import type { ApplyRecord } from '../../controller/controller.js';

/**
 * The recent applies, newest first. The controller keeps only the last one (for /status); the
 * dashboard samples it every `everyMs` and keeps what it saw, so applies closer together than
 * that show only the later one (the counters still count each).
 */
export class ApplyHistory {
  private readonly records: ApplyRecord[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly last: () => ApplyRecord | undefined,
    private readonly size = 12,
    everyMs = 250,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
    // Sampling must never keep the process alive on its own.
    this.timer.unref();
    this.sample();
  }

  sample(): void {
    const record = this.last();
    const newest = this.records[0];
    if (!record || (newest && newest.at === record.at && newest.revision === record.revision)) return;
    this.records.unshift(record);
    this.records.length = Math.min(this.records.length, this.size);
  }

  list(): readonly ApplyRecord[] {
    this.sample();
    return [...this.records];
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
