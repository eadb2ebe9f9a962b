import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config.js';
import { HTTP_SECTION, TCP_SECTION } from '../../src/model/keyspace.js';
import { fieldRowsOf, instanceOptionRowsOf } from '../../src/model/keyspace-rows.js';
import { parseEntries } from '../../src/model/parse.js';
import { envNamesInSource } from '../support/env-names.js';

// The README is the operator's manual: every setting the code reads must be in its configuration
// table, with its flag and default as config.ts defines them.

const README = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');

/** The `## Configuration` section's table: environment name (first column) → the row's cells. */
function configurationTable(): Map<string, string[]> {
  const section = /^## Configuration\n([\s\S]*?)(?=^## )/m.exec(README)?.[1];
  if (section === undefined) throw new Error('README.md has no "## Configuration" section');
  const rows = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim());
    for (const name of cells[0]!.matchAll(/`([A-Z0-9_]+)(?:<[a-z]+>)?`/g)) rows.set(name[1]!, cells);
  }
  return rows;
}

describe('README configuration table', () => {
  const table = configurationTable();

  it('finds the table', () => {
    expect(table.size).toBeGreaterThan(20);
  });

  it.each(envNamesInSource())('lists %s, which src/ reads', (name) => {
    // A family such as SSL_CERT_ is written SSL_CERT_<name> in the table.
    expect([...table.keys()], `add a row for ${name} to the README's configuration table`).toContain(name);
  });

  it.each(SETTINGS.map((s) => [s.env, s] as const))('gives %s its flag and default as config.ts does', (env, setting) => {
    // A family such as SSL_CERT_<name> is keyed SSL_CERT_ by configurationTable.
    const row = table.get(env.replace(/<[a-z]+>$/, ''));
    expect(row, `no README row for ${env}`).toBeDefined();
    expect(row![1], `${env}: flag column`).toContain(setting.flag === undefined ? '(environment only)' : `--${setting.flag}`);
    if (setting.shownDefault !== undefined && !setting.shownDefault.includes(' ')) {
      expect(row![2], `${env}: default column`).toContain(setting.shownDefault.replace('<lb-name>', ''));
    }
  });

  it('lists no setting the code does not read', () => {
    const read = new Set(envNamesInSource());
    const stale = [...table.keys()].filter((name) => !read.has(name));
    expect(stale, 'README rows for variables nothing in src/ mentions').toEqual([]);
  });
});

/** The keys of the table that follows `heading` in "The entries edgelb watches". */
function entryKeys(heading: string): string[] {
  const section = /^## The entries edgelb watches\n([\s\S]*?)(?=^## )/m.exec(README)?.[1] ?? '';
  const after = section.slice(section.indexOf(heading));
  const table = after.split('\n\n')[1] ?? '';
  return [...table.matchAll(/^\| `([a-z_]+)(?:\/<instance>)?`/gm)].map((m) => m[1]!);
}

/** The keys the model accepts: the rows of the key table (src/model/keyspace.ts) that parse.ts reads through. */
function acceptedFields(set: 'HTTP_FIELDS' | 'TCP_FIELDS'): string[] {
  const section = set === 'HTTP_FIELDS' ? HTTP_SECTION : TCP_SECTION;
  return [...fieldRowsOf(section).map((row) => row.key), ...instanceOptionRowsOf(section).map((row) => row.dir)];
}

describe('README entry tables', () => {
  it.each([
    ['HTTP services', 'services', 'HTTP_FIELDS'],
    ['TCP services', 'tcp-services', 'TCP_FIELDS'],
  ] as const)('%s: every key the model accepts is documented, and every documented key is accepted', (heading, section, set) => {
    const documented = entryKeys(heading);
    expect(documented).toContain('upstreams');
    expect([...documented].filter((k) => k !== 'upstreams').sort()).toEqual([...acceptedFields(set)].sort());
    const perInstance = new Set(instanceOptionRowsOf(set === 'HTTP_FIELDS' ? HTTP_SECTION : TCP_SECTION).map((row) => row.dir));
    for (const key of documented.filter((k) => k !== 'upstreams')) {
      const entry = perInstance.has(key) ? `${section}/s/${key}/i1` : `${section}/s/${key}`;
      const { rejected } = parseEntries(new Map([[entry, 'x']]), { reservedPorts: [] });
      expect(
        rejected.map((r) => r.reason),
        key,
      ).not.toContain('unknown setting, ignored');
    }
  });
});
