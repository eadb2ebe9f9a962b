/** One sample of the Prometheus text format: `name{label="v",...} value`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Scrape {
  readonly samples: readonly Sample[];
  /** Metric family → its `# TYPE`. */
  readonly types: ReadonlyMap<string, string>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * A strict reader of the Prometheus text exposition format (0.0.4): every line must be a comment,
 * a HELP/TYPE line or a well-formed sample, every sample must belong to a family declared by a
 * TYPE line before it, and a family may not appear twice. Throws on the first violation.
 */
export function parsePrometheusText(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const finished = new Set<string>();
  let current: string | undefined;
  for (const [index, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const where = `line ${index + 1}: ${JSON.stringify(line.slice(0, 120))}`;
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type) {
        if (types.has(type[1]!)) throw new Error(`family declared twice, ${where}`);
        types.set(type[1]!, type[2]!);
        if (current !== undefined) finished.add(current);
        current = type[1]!;
      } else if (!/^# HELP \S+ /.test(line) && line.startsWith('# HELP')) throw new Error(`bad HELP, ${where}`);
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample, ${where}`);
    const name = match[1]!;
    const family = [...types.keys()].find((f) => name === f || (/_(bucket|sum|count)$/.test(name) && name.replace(/_(bucket|sum|count)$/, '') === f));
    if (family === undefined) throw new Error(`sample without a TYPE, ${where}`);
    if (family !== current || finished.has(family)) throw new Error(`family ${family} is not contiguous, ${where}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL)) labels[key!] = value!.replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
    const raw = match[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`bad value, ${where}`);
    samples.push({ name, labels, value });
  }
  return { samples, types };
}

/** The samples of one metric whose labels include `labels`. */
export function samplesOf(scrape: Scrape, name: string, labels: Record<string, string> = {}): Sample[] {
  return scrape.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` matching `labels`; throws when there is not exactly one. */
export function sampleValue(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const found = samplesOf(scrape, name, labels);
  if (found.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.value;
}
