/**
 * The README's settings table, from the settings' schema (src/settings/).
 *
 *   node --import tsx scripts/settings-table.ts            exit 1 when README.md's table is out of date
 *   node --import tsx scripts/settings-table.ts --write    rewrite the table between its markers
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withSettingsTable } from '../src/settings/readme-table.js';

const README = path.resolve(import.meta.dirname, '../README.md');
const current = readFileSync(README, 'utf8');
const wanted = withSettingsTable(current);

if (process.argv.includes('--write')) {
  if (wanted !== current) writeFileSync(README, wanted);
  process.stdout.write(wanted === current ? 'README.md: the settings table is up to date\n' : 'README.md: settings table rewritten\n');
} else if (wanted !== current) {
  process.stderr.write('README.md: the settings table differs from src/settings/; run node --import tsx scripts/settings-table.ts --write\n');
  process.exitCode = 1;
}
