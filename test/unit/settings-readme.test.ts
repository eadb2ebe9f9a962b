import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/settings/schema.js';
import { settingsTable, TABLE_END, TABLE_START, withSettingsTable } from '../../src/settings/readme-table.js';

// The README's settings table is written from the schema: this fails when someone edits one
// without the other. Fix: node --import tsx scripts/settings-table.ts --write

const README = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');

describe('the README settings table', () => {
  it('is what src/settings/ gives (run node --import tsx scripts/settings-table.ts --write)', () => {
    const between = README.slice(README.indexOf(TABLE_START) + TABLE_START.length, README.indexOf(TABLE_END));
    expect(README.indexOf(TABLE_START)).toBeGreaterThan(0);
    expect(between.trim()).toBe(settingsTable());
    expect(withSettingsTable(README)).toBe(README);
  });

  it.each(SETTINGS.map((s) => [s.env, s] as const))('has a row for %s with its flag and default', (env, setting) => {
    const row = settingsTable()
      .split('\n')
      .find((line) => line.startsWith(`| \`${env}\` |`));
    expect(row).toBeDefined();
    expect(row).toContain(setting.flag === undefined ? '| (environment only) |' : `| \`--${setting.flag}\` |`);
    if (setting.default !== undefined) expect(row).toContain(`\`${setting.default}\``);
  });

  it('escapes a | in a cell, which would end it early', () => {
    const [table] = [settingsTable([{ ...SETTINGS[0]!, doc: 'a | b' }])];
    expect(table.split('\n')[2]).toMatch(/ a \\\| b \|$/);
  });

  it('refuses a README without the markers', () => {
    expect(() => withSettingsTable('# no table here\n')).toThrow(/needs the markers/);
  });
});
