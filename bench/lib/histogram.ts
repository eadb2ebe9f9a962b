/**
 * A latency histogram with logarithmic buckets (each 1 % wider than the last, from 10 µs), so
 * millions of samples fit in a few kilobytes, worker threads can send theirs as plain arrays,
 * and merged histograms give percentiles within 1 %.
 */

const MIN_MS = 0.01;
const GROWTH = 1.01;
const BUCKETS = Math.ceil(Math.log(600_000 / MIN_MS) / Math.log(GROWTH)) + 1; // up to 10 minutes

export interface HistogramData {
  readonly counts: number[];
  readonly n: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
}

export class Histogram {
  private readonly counts = new Array<number>(BUCKETS).fill(0);
  private n = 0;
  private sum = 0;
  private min = Infinity;
  private max = -Infinity;

  static from(data: HistogramData): Histogram {
    const h = new Histogram();
    h.merge(data);
    return h;
  }

  get count(): number {
    return this.n;
  }

  record(ms: number): void {
    const index = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / Math.log(GROWTH)));
    this.counts[index]!++;
    this.n++;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other: HistogramData): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i] ?? 0;
    this.n += other.n;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  data(): HistogramData {
    return { counts: [...this.counts], n: this.n, sum: this.sum, min: this.min, max: this.max };
  }

  /** The upper edge of the bucket holding the q-th sample (nearest rank), clamped to the exact min and max. */
  quantile(q: number): number {
    if (this.n === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, MIN_MS * GROWTH ** i));
    }
    return this.max;
  }

  summary(): LatencySummary {
    const r = (v: number) => (Number.isFinite(v) ? Math.round(v * 100) / 100 : NaN);
    return {
      n: this.n,
      p50Ms: r(this.quantile(0.5)),
      p90Ms: r(this.quantile(0.9)),
      p99Ms: r(this.quantile(0.99)),
      p999Ms: r(this.quantile(0.999)),
      maxMs: r(this.max),
      meanMs: r(this.n > 0 ? this.sum / this.n : NaN),
    };
  }
}

export interface LatencySummary {
  readonly n: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}
