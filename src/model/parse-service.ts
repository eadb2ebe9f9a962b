import { KEY_PATHS } from './keyspace.js';
import { fieldRowsOf, instanceRowOf, type ServiceFields, type ServiceSection } from './keyspace-rows.js';
import type { Rejection, Upstream } from './types.js';
import { EntryError, parseName } from './values.js';

/** One service's keys as etcd holds them: field name → value, instance name → value. */
export interface RawService {
  readonly name: string;
  readonly fields: ReadonlyMap<string, string>;
  readonly upstreams: ReadonlyMap<string, string>;
}

/** A service read through its section's rows: their fields, its name and its instances. */
export type ReadService<S extends ServiceSection> = ServiceFields<S> & { readonly name: string; readonly upstreams: readonly Upstream[] };

/**
 * Reads one service through the rows of its section (keyspace.ts), each key as its row says:
 * a reject-service key that is invalid leaves the service out; a missing required key or
 * instance leaves it out as not ready (not an error: the Kontena rule for TCP services);
 * any other invalid key is reported and replaced by its default, or its closed value.
 * Rules across services (port conflicts, limits) are the caller's.
 */
export function readService<S extends ServiceSection>(section: S, raw: RawService, rejected: Rejection[]): ReadService<S> | undefined {
  const base = `${section.dir}${raw.name}`;
  const name = checkName(raw.name, base, rejected);
  if (name === undefined) return undefined;
  const rows = fieldRowsOf(section);
  const known = new Set(rows.map((row) => row.key));
  for (const key of raw.fields.keys()) {
    if (!known.has(key)) rejected.push({ key: `${base}/${key}`, code: 'unknown_setting', reason: 'unknown setting, ignored' });
  }
  const values = new Map<string, unknown>();

  // All-or-nothing keys first: nothing else of a service that is left out is worth reporting.
  for (const row of rows) {
    if (row.invalid !== 'reject-service') continue;
    const value = raw.fields.get(row.key);
    if (value === undefined) {
      if ('value' in row.absent) values.set(row.prop, row.absent.value);
      continue;
    }
    const read = attempt(() => row.parse(value, row.key));
    if (!read.ok) {
      rejected.push({ key: `${base}/${row.key}`, code: row.code, reason: read.reason, service: name });
      return undefined;
    }
    values.set(row.prop, read.value);
  }

  const instanceRejections: Rejection[] = [];
  const upstreams = readUpstreams(section, raw, base, instanceRejections);
  for (const row of rows) {
    if ('value' in row.absent || raw.fields.has(row.key)) continue;
    rejected.push(...instanceRejections, { key: `${base}/${row.key}`, code: row.absent.code, reason: row.absent.reason, service: name });
    return undefined;
  }
  const none = instanceRowOf(section).none;
  if (none && upstreams.length === 0) {
    rejected.push(...instanceRejections, { key: `${base}/${KEY_PATHS.upstreams}`, code: none.code, reason: none.reason, service: name });
    return undefined;
  }

  for (const row of section.rows) {
    if (row.scope === 'instance') {
      rejected.push(...instanceRejections);
      continue;
    }
    if (row.invalid === 'reject-service') continue;
    const value = raw.fields.get(row.key);
    const fallback = 'value' in row.absent ? row.absent.value : undefined;
    const read = value === undefined ? { ok: true as const, value: fallback } : attempt(() => row.parse(value, row.key));
    if (read.ok) {
      values.set(row.prop, read.value);
    } else if (row.invalid === 'close-service' && row.closed) {
      rejected.push({ key: `${base}/${row.key}`, code: row.code, reason: `${read.reason}; ${row.closed.note}` });
      values.set(row.prop, row.closed.value);
    } else {
      rejected.push({ key: `${base}/${row.key}`, code: row.code, reason: `${read.reason}; using the default` });
      values.set(row.prop, fallback);
    }
  }

  // In table order, which is the order of the service type's fields.
  const fields = Object.fromEntries(rows.map((row) => [row.prop, values.get(row.prop)]));
  return { name, ...fields, upstreams } as ReadService<S>;
}

function readUpstreams(section: ServiceSection, raw: RawService, base: string, rejected: Rejection[]): Upstream[] {
  const row = instanceRowOf(section);
  const upstreams: Upstream[] = [];
  for (const [instance, value] of raw.upstreams) {
    const read = attempt(() => row.parse(instance, value));
    if (read.ok) upstreams.push(read.value);
    else rejected.push({ key: `${base}/${KEY_PATHS.upstreams}/${instance}`, code: row.code, reason: read.reason });
  }
  return upstreams.sort((a, b) => compare(a.name, b.name));
}

function checkName(raw: string, base: string, rejected: Rejection[]): string | undefined {
  const read = attempt(() => parseName(raw, 'service'));
  if (read.ok) return read.value;
  rejected.push({ key: base, code: 'invalid_name', reason: read.reason });
  return undefined;
}

/** A validator's result: its value, or the reason from its EntryError (any other error is a bug and thrown). */
function attempt<T>(parse: () => T): { ok: true; value: T } | { ok: false; reason: string } {
  try {
    return { ok: true, value: parse() };
  } catch (error) {
    if (!(error instanceof EntryError)) throw error;
    return { ok: false, reason: error.message };
  }
}

/** Byte-order comparison, so the output never depends on the machine's locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
