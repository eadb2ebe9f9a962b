import type { z } from 'zod';

/**
 * One setting, described once: its environment name (the Kontena load balancer's), its flag, its
 * default, its help and its README row, and the zod schema that turns the text into a value.
 * The flags, the README's settings table and the `Config` type are all derived from these.
 */
export interface Setting<T = unknown> {
  /** The environment variable; `SSL_CERT_<name>` for a family read by a source. */
  readonly env: string;
  /** The `edgelb run` flag; undefined: environment only (a secret would show in `ps` and shell history). */
  readonly flag: string | undefined;
  /** Used when the setting is unset (or empty), and parsed like a given value. */
  readonly default: string | undefined;
  /** What the flag's help shows as the default: `default`, or words when it is worked out. */
  readonly shownDefault: string | undefined;
  /** One line: the flag's help. */
  readonly help: string;
  /** The README's default cell (markdown). */
  readonly docDefault: string;
  /** The README's meaning cell (markdown). */
  readonly doc: string;
  /** Lines and passwords are taken as given; everything else is trimmed first. */
  readonly verbatim: boolean;
  /** The text (default applied, undefined when unset) → the value; undefined: read by a source, not here. */
  readonly schema: z.ZodType<T, string | undefined> | undefined;
}

export interface SettingSpec<T> {
  readonly env: string;
  readonly flag?: string;
  readonly default?: string;
  /** The flag help's default when the default is worked out rather than a value. */
  readonly shownDefault?: string;
  readonly help: string;
  /** The README's default cell, when `default` in backquotes (or — when there is none) says too little. */
  readonly docDefault?: string;
  /** The README's meaning, when it says more than `help`. */
  readonly doc?: string;
  readonly verbatim?: boolean;
  /** Builds the schema of a given value; the message of each issue names `env`. */
  readonly schema: (env: string) => z.ZodType<T, string>;
}

export function setting<T>(spec: SettingSpec<T> & { readonly default: string }): Setting<T>;
export function setting<T>(spec: SettingSpec<T>): Setting<T | undefined>;
export function setting<T>(spec: SettingSpec<T>): Setting<T | undefined> {
  const given = spec.schema(spec.env);
  // prefault: the default goes through the same schema as a given value, so it is checked too.
  const schema = spec.default === undefined ? given.optional() : given.optional().prefault(spec.default);
  return describe(spec, schema as z.ZodType<T | undefined, string | undefined>);
}

/** A family of variables a source reads itself (SSL_CERT_<name>): documented here, parsed there. */
export function readBySource(spec: Omit<SettingSpec<never>, 'schema' | 'flag' | 'default'>): Setting<undefined> {
  return describe(spec, undefined);
}

function describe<T>(spec: Omit<SettingSpec<unknown>, 'schema'>, schema: Setting<T>['schema']): Setting<T> {
  const shownDefault = spec.shownDefault ?? spec.default;
  return Object.freeze({
    env: spec.env,
    flag: spec.flag,
    default: spec.default,
    shownDefault,
    help: spec.help,
    docDefault: spec.docDefault ?? (shownDefault === undefined ? '—' : `\`${shownDefault}\``),
    doc: spec.doc ?? spec.help,
    verbatim: spec.verbatim ?? false,
    schema,
  });
}

/** The values of a group's settings, by the group's names for them. */
export type ValuesOf<S extends Readonly<Record<string, Setting>>> = { readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

/** What main.ts found about where edgelb runs: inside a container, the etcd a platform runs is at the default gateway. */
export interface PlatformFacts {
  readonly inContainer: boolean;
  readonly defaultGateway: string | undefined;
}

/** What a group may need besides its own values to give its part of the `Config`. */
export interface GroupContext {
  readonly platform: PlatformFacts;
  /** False for the CLI's dry runs and tests: files named by settings are not read. */
  readonly readFiles: boolean;
  /** A setting's text, default applied (for parsers that take settings by name). */
  readonly text: (env: string) => string | undefined;
}

/** Settings that belong together, and how their values become fields of the `Config`. */
export interface SettingGroup<S extends Readonly<Record<string, Setting>> = Readonly<Record<string, Setting>>, C = unknown> {
  readonly settings: S;
  readonly config: (values: ValuesOf<S>, context: GroupContext) => C;
}

export function group<S extends Readonly<Record<string, Setting>>, C>(
  settings: S,
  config: (values: ValuesOf<S>, context: GroupContext) => C,
): SettingGroup<S, C> {
  return { settings, config };
}
