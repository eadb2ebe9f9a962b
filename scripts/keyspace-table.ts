import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HTTP_SECTION, TCP_SECTION } from '../src/model/keyspace.js';
import { STORED_SECTION } from '../src/model/keyspace-stored.js';
import type { InvalidEffect, ServiceSection } from '../src/model/keyspace-rows.js';

/**
 * Writes the README's etcd key tables from the key table (src/model/keyspace.ts), between the
 * marker comments below; test/unit/keyspace-readme.test.ts fails when they differ.
 *
 *   node --import tsx scripts/keyspace-table.ts          prints the tables
 *   node --import tsx scripts/keyspace-table.ts --write  rewrites them in README.md
 */

export const BEGIN =
  '<!-- keyspace:begin (generated from src/model/keyspace.ts by `node --import tsx scripts/keyspace-table.ts --write`: edit the rows there) -->';
export const END = '<!-- keyspace:end -->';
export const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../README.md');

const EFFECT: Readonly<Record<InvalidEffect, string>> = {
  'reject-service': 'the service is left out',
  'use-default': 'ignored: the default applies',
  // A close-service row says how its service is closed (its `closed.note`); this is the fallback.
  'close-service': 'the service is closed',
  'skip-instance': 'the instance is left out',
};

/** The Markdown between the markers: one table per section of the key table. */
export function keyspaceTables(): string {
  const service = (section: ServiceSection) => [
    section.title,
    '',
    ...table(
      ['key', 'value', 'default', 'an invalid value'],
      section.rows.map((row) => [`\`${row.key}\``, row.doc, row.defaultDoc, ('closed' in row && row.closed?.note) || EFFECT[row.invalid]]),
    ),
  ];
  const stored = [
    STORED_SECTION.title,
    '',
    ...table(
      ['key', 'value', 'written by'],
      STORED_SECTION.rows.map((row) => [`\`${row.key}\``, row.doc, row.defaultDoc]),
    ),
  ];
  return [...service(HTTP_SECTION), '', ...service(TCP_SECTION), '', ...stored].join('\n');
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)];
}

/** `readme` with the text between the markers replaced by the tables; throws when a marker is missing. */
export function withKeyspaceTables(readme: string): string {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`README.md has no "${BEGIN}" ... "${END}" block`);
  return `${readme.slice(0, begin + BEGIN.length)}\n${keyspaceTables()}\n${readme.slice(end)}`;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--write')) writeFileSync(README, withKeyspaceTables(readFileSync(README, 'utf8')));
  else process.stdout.write(`${keyspaceTables()}\n`);
}
