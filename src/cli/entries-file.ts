import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { Entries } from '../model/types.js';

/** A file of entries that cannot be used; the message is the one line the operator sees. */
export class EntriesFileError extends Error {}

/**
 * Reads a YAML or JSON file of service link entries, as `edgelb render --from-file` and
 * `edgelb check --from-file` take them. Keys are relative to the load balancer's etcd path, either
 * flat (`services/web/virtual_hosts: www.example.com`, the layout of `etcdctl get`) or nested
 * (`services: {web: {virtual_hosts: ...}}`), which is flattened with `/`. Scalars become the strings
 * etcd would hold (`external_port: 5432` is "5432"; an empty value is ""). A key that starts with
 * `/` must start with `etcdPath/`, which is stripped.
 */
export async function readEntriesFile(file: string, etcdPath: string): Promise<Entries> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new EntriesFileError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseEntriesText(text, file, etcdPath);
}

export function parseEntriesText(text: string, file: string, etcdPath: string): Entries {
  let document: unknown;
  try {
    document = parseYaml(text, { uniqueKeys: true, prettyErrors: false });
  } catch (error) {
    if (error instanceof YAMLParseError) {
      const before = text.slice(0, error.pos[0]).split('\n');
      const where = `:${before.length}:${before.at(-1)!.length + 1}`;
      throw new EntriesFileError(`${file}${where} is not valid YAML or JSON: ${error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
    }
    throw error;
  }
  if (document === null || document === undefined) return new Map();
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new EntriesFileError(`${file} must hold a mapping of etcd keys to values, like "services/web/virtual_hosts: www.example.com"`);
  }
  const entries = new Map<string, string>();
  flatten(document as Record<string, unknown>, '', entries, file, etcdPath);
  return new Map([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function flatten(node: Record<string, unknown>, prefix: string, into: Map<string, string>, file: string, etcdPath: string): void {
  for (const [rawKey, value] of Object.entries(node)) {
    let key = prefix === '' ? rawKey : `${prefix}/${rawKey}`;
    if (prefix === '' && key.startsWith('/')) {
      if (!key.startsWith(`${etcdPath}/`)) {
        throw new EntriesFileError(`${file}: key ${JSON.stringify(key)} is not under the load balancer's etcd path ${etcdPath}/ (use keys relative to it)`);
      }
      key = key.slice(etcdPath.length + 1);
    }
    if (value !== null && typeof value === 'object') {
      if (Array.isArray(value)) {
        throw new EntriesFileError(`${file}: ${key} is a list; write the value as etcd holds it (comma-separated hosts, one setting per line)`);
      }
      flatten(value as Record<string, unknown>, key, into, file, etcdPath);
      continue;
    }
    if (into.has(key)) throw new EntriesFileError(`${file}: key ${key} is given twice`);
    into.set(key, value === null || value === undefined ? '' : String(value));
  }
}
