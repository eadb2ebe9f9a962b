import { KEY_PATHS } from './keyspace.js';
import {
  fieldRowsOf,
  instanceOptionRowsOf,
  instanceRowOf,
  type FieldRow,
  type InstanceOptionRow,
  type InstanceRow,
  type ServiceFields,
  type ServiceSection,
} from './keyspace-rows.js';
import type { Rejection, Upstream } from './types.js';
import { EntryError, parseName } from './values.js';

/** One service's keys as etcd holds them: field name → value, instance name → value. */
export interface RawService {
  readonly name: string;
  readonly fields: ReadonlyMap<string, string>;
  readonly upstreams: ReadonlyMap<string, string>;
  /** Per-instance options by directory (`weights`), then instance name → value. */
  readonly options: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

/** A service read through its section's rows: their fields, its kind, name and instances. */
export type ReadService<S extends ServiceSection> = ServiceFields<S> & {
  readonly kind: S['kind'];
  readonly name: string;
  readonly upstreams: readonly Upstream[];
};

/** A section's rows sorted out once: the parser reads up to tens of thousands of services through them. */
export interface SectionReader<S extends ServiceSection> {
  readonly section: S;
  readonly fields: readonly FieldRow[];
  readonly known: ReadonlySet<string>;
  readonly instance: InstanceRow;
  readonly options: readonly InstanceOptionRow[];
}

export function sectionReader<S extends ServiceSection>(section: S): SectionReader<S> {
  const fields = fieldRowsOf(section);
  return Object.freeze({
    section,
    fields,
    known: new Set(fields.map((row) => row.key)),
    instance: instanceRowOf(section),
    options: instanceOptionRowsOf(section),
  });
}

/**
 * Reads one service through the rows of its section (keyspace.ts), each key as its row says:
 * a reject-service key that is invalid leaves the service out; a missing required key or
 * instance leaves it out as not ready (not an error: the Kontena rule for TCP services);
 * any other invalid key is reported and replaced by its default, or its closed value.
 * Rules across services (port conflicts, limits) are the caller's.
 */
export function readService<S extends ServiceSection>(reader: SectionReader<S>, raw: RawService, rejected: Rejection[]): ReadService<S> | undefined {
  const { section, fields, known, instance, options } = reader;
  const base = `${section.dir}${raw.name}`;
  const name = checkName(raw.name, base, rejected);
  if (name === undefined) return undefined;
  for (const key of raw.fields.keys()) {
    if (!known.has(key)) rejected.push({ key: `${base}/${key}`, code: 'unknown_setting', reason: 'unknown setting, ignored' });
  }
  // Index-aligned with `fields`.
  const values: unknown[] = new Array(fields.length);

  // All-or-nothing keys first: nothing else of a service that is left out is worth reporting.
  for (let i = 0; i < fields.length; i++) {
    const row = fields[i]!;
    if (row.invalid !== 'reject-service') continue;
    const value = raw.fields.get(row.key);
    if (value === undefined) {
      if ('value' in row.absent) values[i] = row.absent.value;
      continue;
    }
    const read = attempt(row.parse, value, row.key);
    if (!read.ok) {
      rejected.push({ key: `${base}/${row.key}`, code: row.code, reason: read.reason, service: name });
      return undefined;
    }
    values[i] = read.value;
  }

  const instanceRejections: Rejection[] = [];
  const upstreams = readUpstreams(instance, options, raw, base, instanceRejections);
  for (const row of fields) {
    if ('value' in row.absent || raw.fields.has(row.key)) continue;
    rejected.push(...instanceRejections, { key: `${base}/${row.key}`, code: row.absent.code, reason: row.absent.reason, service: name });
    return undefined;
  }
  if (instance.none && upstreams.length === 0) {
    rejected.push(...instanceRejections, { key: `${base}/${KEY_PATHS.upstreams}`, code: instance.none.code, reason: instance.none.reason, service: name });
    return undefined;
  }

  // The other keys, and the instances' rejections, in table order.
  let i = 0;
  for (const row of section.rows) {
    if (row.scope === 'instance') {
      rejected.push(...instanceRejections);
      continue;
    }
    if (row.scope === 'instance-option') continue;
    const index = i++;
    if (row.invalid === 'reject-service') continue;
    const value = raw.fields.get(row.key);
    const fallback = 'value' in row.absent ? row.absent.value : undefined;
    const read = value === undefined ? { ok: true as const, value: fallback } : attempt(row.parse, value, row.key);
    if (read.ok) {
      values[index] = read.value;
    } else if (row.invalid === 'close-service' && row.closed) {
      rejected.push({ key: `${base}/${row.key}`, code: row.code, reason: `${read.reason}; ${row.closed.note}` });
      values[index] = row.closed.value;
    } else {
      rejected.push({ key: `${base}/${row.key}`, code: row.code, reason: `${read.reason}; using the default` });
      values[index] = fallback;
    }
  }

  // Fields in table order, which is the order of the service type's fields.
  const service: Record<string, unknown> = { kind: section.kind, name };
  for (let f = 0; f < fields.length; f++) service[fields[f]!.prop] = values[f];
  service.upstreams = upstreams;
  return service as ReadService<S>;
}

function readUpstreams(row: InstanceRow, options: readonly InstanceOptionRow[], raw: RawService, base: string, rejected: Rejection[]): Upstream[] {
  const upstreams: Upstream[] = [];
  for (const [instance, value] of raw.upstreams) {
    const read = attempt(row.parse, instance, value);
    if (!read.ok) {
      rejected.push({ key: `${base}/${KEY_PATHS.upstreams}/${instance}`, code: row.code, reason: read.reason });
      continue;
    }
    const upstream: Record<string, unknown> = { ...read.value };
    for (const option of options) {
      const text = raw.options.get(option.dir)?.get(instance);
      const parsed = text === undefined ? undefined : attempt(option.parse, text, `${option.dir}/${instance}`);
      if (parsed && !parsed.ok) rejected.push({ key: `${base}/${option.dir}/${instance}`, code: option.code, reason: `${parsed.reason}; using the default` });
      upstream[option.prop] = parsed?.ok ? parsed.value : option.absent.value;
    }
    upstreams.push(upstream as unknown as Upstream);
  }
  return upstreams.sort((a, b) => compare(a.name, b.name));
}

function checkName(raw: string, base: string, rejected: Rejection[]): string | undefined {
  const read = attempt(parseName, raw, 'service');
  if (read.ok) return read.value;
  rejected.push({ key: base, code: 'invalid_name', reason: read.reason });
  return undefined;
}

/** A validator's result: its value, or the reason from its EntryError (any other error is a bug and thrown). */
function attempt<T>(parse: (a: string, b: string) => T, a: string, b: string): { ok: true; value: T } | { ok: false; reason: string } {
  try {
    return { ok: true, value: parse(a, b) };
  } catch (error) {
    if (!(error instanceof EntryError)) throw error;
    return { ok: false, reason: error.message };
  }
}

/** Byte-order comparison, so the output never depends on the machine's locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
