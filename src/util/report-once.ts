/**
 * Remembers which problems were already reported, so a bad entry is logged once while it
 * stays bad instead of on every apply, and again if it comes back after being fixed.
 */
export class ReportOnce {
  private seen = new Set<string>();

  /** Calls `report` for each item not reported last time; forgets items that went away. */
  update<T>(items: readonly T[], idOf: (item: T) => string, report: (item: T) => void): void {
    const current = new Set<string>();
    for (const item of items) {
      const id = idOf(item);
      current.add(id);
      if (!this.seen.has(id)) report(item);
    }
    this.seen = current;
  }
}
