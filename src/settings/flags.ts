import { Option, type Command } from 'commander';
import type { SettingsInput } from './schema.js';
import type { Setting } from './setting.js';

// Every setting with a flag is a flag of `edgelb run` (and of render and check, so a dry run
// renders exactly what run would); a flag wins over the environment variable.

/** A setting that has a flag (the others are environment only: secrets, families). */
export type FlagSetting = Setting & { readonly flag: string };

export const hasFlag = (setting: Setting): setting is FlagSetting => setting.flag !== undefined;

/** The property commander gives a setting's flag: `etcd-ca-file` → `etcdCaFile`. */
export function flagProperty(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `--<flag> <value>` for each setting, with its help, its variable and its default. */
export function addSettingFlags(command: Command, settings: readonly Setting[]): void {
  for (const setting of settings.filter(hasFlag)) {
    // The default is written into the help, not given to commander: the schema applies it, and
    // a commander default would hide the environment variable behind an unset flag.
    const shown = setting.shownDefault === undefined ? '' : ` (default: ${setting.shownDefault})`;
    command.addOption(new Option(`--${setting.flag} <value>`, `${setting.help} [env ${setting.env}]${shown}`));
  }
}

/** `env` with the given flags written over it, by environment name. */
export function withFlags(env: SettingsInput, flags: Readonly<Record<string, unknown>>, settings: readonly Setting[]): SettingsInput {
  const input: Record<string, string | undefined> = { ...env };
  for (const setting of settings.filter(hasFlag)) {
    const value = flags[flagProperty(setting.flag)];
    if (typeof value === 'string') input[setting.env] = value;
  }
  return input;
}
