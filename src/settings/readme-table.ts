import { SETTINGS } from './schema.js';
import type { Setting } from './setting.js';

// The README's settings table, written from the schema by scripts/settings-table.ts and
// compared with README.md by test/unit/settings-readme.test.ts, so the two never drift.

export const TABLE_START = '<!-- settings-table: written from src/settings/ by `node --import tsx scripts/settings-table.ts --write`; edit there -->';
export const TABLE_END = '<!-- /settings-table -->';

/** A markdown cell: a `|` would end it early. */
const cell = (text: string) => text.replace(/(?<!\\)\|/g, '\\|');

function row(setting: Setting): string {
  const flag = setting.flag === undefined ? '(environment only)' : `\`--${setting.flag}\``;
  return `| \`${setting.env}\` | ${flag} | ${cell(setting.docDefault)} | ${cell(setting.doc)} |`;
}

export function settingsTable(settings: readonly Setting[] = SETTINGS): string {
  return ['| environment | flag | default | meaning |', '| --- | --- | --- | --- |', ...settings.map(row)].join('\n');
}

/** `readme` with the text between the markers replaced by `table`. */
export function withSettingsTable(readme: string, table: string = settingsTable()): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md needs the markers ${TABLE_START} and ${TABLE_END} around the settings table`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${table}\n${readme.slice(end)}`;
}
