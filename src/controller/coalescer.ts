export interface CoalescerOptions {
  /** Wait this long after the last change before running, so a burst becomes one run. */
  readonly quietMs?: number;
  /** ...but never delay a change longer than this. */
  readonly maxDelayMs?: number;
  /** Whether there is anything to run yet (the controller: not before etcd has answered once). */
  readonly ready: () => boolean;
}

/**
 * Turns a stream of changes into runs of one task, one at a time: a burst becomes one run once it
 * has been quiet for `quietMs` (25 ms), but no change waits longer than `maxDelayMs` (500 ms).
 * Changes that arrive during a run start the next run as soon as it ends; the latest input is
 * read by the task itself, so it always wins. `task` must not reject.
 */
export class Coalescer {
  private dirty = false;
  private firstDirtyAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;

  /** `task` gets the Date.now() of the first change of the burst it applies. */
  constructor(
    private readonly task: (changedAt: number) => Promise<void>,
    private readonly options: CoalescerOptions,
  ) {}

  /** An input changed: run the task once the burst is over. */
  changed(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (!this.dirty) this.firstDirtyAt = now;
    this.dirty = true;
    const due = Math.min(now + (this.options.quietMs ?? 25), this.firstDirtyAt + (this.options.maxDelayMs ?? 500));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, due - now));
  }

  /** Runs another task in the task's place if nothing runs (it must not reject); false when busy. */
  runAlone(other: () => Promise<void>): boolean {
    if (this.running || this.stopped) return false;
    this.start(other);
    return true;
  }

  /** Whether a change is waiting or a run is under way. */
  get busy(): boolean {
    return (this.dirty && this.options.ready()) || this.running !== undefined;
  }

  /** Resolves when no change is waiting and no run is under way. */
  async whenIdle(): Promise<void> {
    if (this.busy) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** No run starts after this; one under way finishes. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.dirty = false;
    if (!this.running) this.notifyIdle();
  }

  private kick(): void {
    if (this.running || !this.dirty || !this.options.ready()) return;
    this.dirty = false;
    const changedAt = this.firstDirtyAt;
    this.start(() => this.task(changedAt));
  }

  private start(task: () => Promise<void>): void {
    this.running = task().finally(() => {
      this.running = undefined;
      if (this.dirty && !this.stopped && this.options.ready()) {
        // Changes that arrived during the run are already past their quiet time.
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.kick(), 0);
      } else {
        // Nothing to run yet (a change waits for etcd's first answer): idle until then.
        this.notifyIdle();
      }
    });
  }

  private notifyIdle(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
