import { z } from 'zod';
import { acmeSettings } from './acme.js';
import { acmeDnsSettings } from './acme-dns.js';
import { adminSettings } from './admin.js';
import { certificateSettings } from './certificates.js';
import { ConfigError } from './config-error.js';
import { etcdSettings } from './etcd.js';
import { haproxySettings } from './haproxy.js';
import { listenerSettings } from './listeners.js';
import { loggingSettings } from './logging.js';
import { peerSettings } from './peers.js';
import type { GroupContext, PlatformFacts, Setting } from './setting.js';

// Every setting, by group, in the order of the README's table. The Config type, the flags, the
// defaults and the README rows all come from here.

const GROUPS = [
  etcdSettings,
  listenerSettings,
  adminSettings,
  haproxySettings,
  peerSettings,
  certificateSettings,
  acmeSettings,
  acmeDnsSettings,
  loggingSettings,
] as const;

export const SETTINGS: readonly Setting[] = GROUPS.flatMap((g) => Object.values(g.settings as Readonly<Record<string, Setting>>));

type PartOf<G> = G extends { readonly config: (...args: never[]) => infer C } ? C : never;
type Intersection<U> = (U extends unknown ? (part: U) => void : never) extends (part: infer I) => void ? I : never;

/** Everything edgelb needs to know, validated once and frozen; passed down, never read globally. */
export type Config = Readonly<Intersection<PartOf<(typeof GROUPS)[number]>>>;

/** Settings by their environment name; flags are mapped onto the same names first (flags.ts). */
export type SettingsInput = Readonly<Record<string, string | undefined>>;

/** Environment name → the setting's schema; object keys are checked in order, so the first problem reported is the first in the README. */
const settingsSchema = z.object(Object.fromEntries(SETTINGS.flatMap((s) => (s.schema === undefined ? [] : [[s.env, s.schema]]))));

/** An empty or (unless verbatim) blank variable is unset, as it was for the Kontena image's shell scripts. */
function textOf(setting: Setting, raw: string | undefined): string | undefined {
  if (setting.verbatim) return raw;
  const trimmed = raw?.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** The settings in `input` as one Config, without touching the file system beyond files settings name (when readFiles). */
export function parseSettings(input: SettingsInput, options: { readonly platform: PlatformFacts; readonly readFiles: boolean }): Config {
  const parsed = settingsSchema.safeParse(Object.fromEntries(SETTINGS.map((s) => [s.env, textOf(s, input[s.env])])));
  if (!parsed.success) throw new ConfigError(parsed.error.issues[0]!.message);
  const values: Readonly<Record<string, unknown>> = parsed.data;
  const context: GroupContext = {
    ...options,
    text: (env) => (typeof values[env] === 'string' ? values[env] : undefined),
  };
  const config = Object.assign({}, ...GROUPS.map((g) => g.config(valuesOf(g.settings, values), context))) as Config;
  // Across two groups (listeners, admin), so checked here once both are known.
  if ([config.httpPort, config.httpsPort, config.statsPort].includes(config.adminPort)) {
    throw new ConfigError(`KONTENA_LB_ADMIN_PORT ${config.adminPort} is already the HTTP, HTTPS or stats port; choose another`);
  }
  return config;
}

/** A group's values by its own names (typed by the group; `never` lets each group's config take them). */
function valuesOf(settings: Readonly<Record<string, Setting>>, values: Readonly<Record<string, unknown>>): never {
  return Object.fromEntries(Object.entries(settings).map(([key, setting]) => [key, values[setting.env]])) as never;
}
