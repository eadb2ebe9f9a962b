import type { Upstream, UpstreamAddress } from './types.js';

/**
 * What a row of the key table (keyspace.ts) is: the shape every key's row has, and the few
 * functions the parser, `edgelb check` and the README script read the rows with.
 */

/** Codes a single key is rejected with; types.ts adds those of rules across keys (limits, port conflicts). */
export type KeyRejectionCode =
  | 'invalid_value'
  | 'invalid_name'
  | 'key_layout'
  | 'unknown_setting'
  | 'missing_external_port'
  | 'no_upstreams'
  | 'invalid_challenge'
  | 'invalid_peer';

export type Scope = 'http' | 'tcp' | 'instance' | 'instance-option' | 'certificate' | 'acme' | 'peers';

/**
 * What an invalid value does. reject-service: the service is left out (keys that decide who may
 * reach it, or what it lets through: serving it without them could route other hosts' traffic to
 * it or drop an access rule). use-default: the key is skipped and the service served with the
 * default. close-service: the service is served closed (left out, its host could fall through to
 * another service's route and be served with no password at all). skip-instance: that instance is left out.
 */
export type InvalidEffect = 'reject-service' | 'use-default' | 'close-service' | 'skip-instance';

/** What the README says of a key. */
interface RowDoc {
  /** Relative to its section's directory, as the README shows it: `virtual_hosts`, `upstreams/<instance>`. */
  readonly key: string;
  readonly scope: Scope;
  /** The README's "value" column: what the value is and does. */
  readonly doc: string;
  /** The README's "default" column (for stored keys: who writes it). */
  readonly defaultDoc: string;
  /** A valid value (the unit test feeds it to the row's parser). */
  readonly example: string;
}

/** A per-service field: fills property `prop` of the service with `parse`'s result, of type T. */
export interface FieldRow<P extends string = string, T = unknown> extends RowDoc {
  readonly scope: 'http' | 'tcp';
  readonly prop: P;
  /** A validator from values.ts; `key` names the key in its messages. Throws EntryError. */
  readonly parse: (raw: string, key: string) => T;
  readonly invalid: Exclude<InvalidEffect, 'skip-instance'>;
  readonly code: 'invalid_value';
  /** The value when the key is absent, or why the service is not served without it (then reject-service). */
  readonly absent: { readonly value: T } | { readonly code: KeyRejectionCode; readonly reason: string };
  /** For close-service: the value the service is served with while the key is invalid, and what the rejection adds. */
  readonly closed?: { readonly value: T; readonly note: string };
}

/** `upstreams/<instance>` = `host:port`: one running instance. */
export interface InstanceRow extends RowDoc {
  readonly scope: 'instance';
  readonly parse: (instance: string, raw: string) => UpstreamAddress;
  readonly invalid: 'skip-instance';
  readonly code: 'invalid_value';
  /** Set when the service is not served without a valid instance. */
  readonly none?: { readonly code: KeyRejectionCode; readonly reason: string };
}

/**
 * `<dir>/<instance>`: an option of one instance (its weight), beside `upstreams/<instance>` and
 * named like it; fills property `prop` of the instance's Upstream. A value for an instance that
 * does not exist (yet) is kept in etcd and read once the instance appears.
 */
export interface InstanceOptionRow<P extends keyof Upstream & string = keyof Upstream & string, T = unknown> extends RowDoc {
  readonly scope: 'instance-option';
  readonly prop: P;
  /** The directory under the service's, without a slash: `weights`. */
  readonly dir: string;
  readonly parse: (raw: string, key: string) => T;
  readonly invalid: 'use-default';
  readonly code: 'invalid_value';
  readonly absent: { readonly value: T };
}

/** A key edgelb or the ACME leader writes (certificates, ACME state), read by tls/ and challenges.ts. */
export interface StoredRow extends RowDoc {
  readonly scope: 'certificate' | 'acme' | 'peers';
  readonly parse?: (raw: string) => unknown;
  readonly code?: KeyRejectionCode;
}

/**
 * One service kind's keys: the README section and the parser's rows. Their order is the README's
 * and the order of a service's rejections (after the all-or-nothing keys, which come first).
 */
export interface ServiceSection {
  readonly kind: 'http' | 'tcp';
  readonly dir: string;
  readonly title: string;
  readonly rows: readonly (FieldRow | InstanceRow | InstanceOptionRow)[];
}

/**
 * The fields a section's rows give a service, each typed by its row's parser and default:
 * HttpService and TcpService (types.ts) extend these, so a new row is a new field of the service.
 */
export type ServiceFields<S extends ServiceSection> = {
  readonly [R in Extract<S['rows'][number], FieldRow> as R['prop']]: R extends FieldRow<string, infer T> ? T : never;
};

/** A row of a per-service field; `code` is always invalid_value, so the table does not repeat it. */
export function fieldRow<P extends string, T>(prop: P, row: Omit<FieldRow<P, T>, 'prop' | 'code'>): FieldRow<P, T> {
  return { ...row, prop, code: 'invalid_value' };
}

/** `absent` of a key that has a default. */
export function byDefault<T>(value: T): { readonly value: T } {
  return { value };
}

/** The rows of a section that fill a field of the service, in table order. */
export function fieldRowsOf(section: ServiceSection): readonly FieldRow[] {
  return section.rows.filter((row): row is FieldRow => row.scope === 'http' || row.scope === 'tcp');
}

/** The section's per-instance options (`weights/<instance>`), in table order. */
export function instanceOptionRowsOf(section: ServiceSection): readonly InstanceOptionRow[] {
  return section.rows.filter((row): row is InstanceOptionRow => row.scope === 'instance-option');
}

/** The section's `upstreams/<instance>` row. */
export function instanceRowOf(section: ServiceSection): InstanceRow {
  const row = section.rows.find((r): r is InstanceRow => r.scope === 'instance');
  if (!row) throw new Error(`the ${section.kind} section has no instance row`);
  return row;
}

/** The key (under a service's directory) of the row that fills `prop`: for rules across keys, such as port conflicts. */
export function keyOf<S extends ServiceSection>(section: S, prop: keyof ServiceFields<S> & string): string {
  const row = fieldRowsOf(section).find((r) => r.prop === prop);
  if (!row) throw new Error(`no row for ${prop}`);
  return row.key;
}
