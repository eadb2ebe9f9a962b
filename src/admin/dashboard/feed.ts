import type { Logger } from '../../log.js';
import type { SectionId } from './sections.js';

export type Sections = Readonly<Record<SectionId, string>>;
type Listener = (sections: Sections) => void;

/**
 * One render per tick, however many browsers watch: reading HAProxy's `show stat` and rendering
 * every section is the cost, so it is paid once and each stream only compares strings. The timer
 * runs only while someone is subscribed.
 */
export class LiveFeed {
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private latest: Sections | undefined;

  constructor(
    private readonly render: () => Promise<Sections>,
    private readonly tickMs: number,
    private readonly logger: Logger,
  ) {}

  /** Calls `listener` with every render from now on (the latest one first, when there is one). */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.latest) listener(this.latest);
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), this.tickMs);
      void this.tick();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.latest = undefined;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const sections = await this.render();
      // Unsubscribed meanwhile: an old render must not be kept for the next subscriber.
      if (!this.timer) return;
      this.latest = sections;
      for (const listener of this.listeners) listener(sections);
    } catch (error) {
      this.logger.debug({ err: (error as Error).message }, 'dashboard update failed');
    } finally {
      this.busy = false;
    }
  }
}
