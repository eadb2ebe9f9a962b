import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The environment variable families edgelb reads (the README's configuration table must list each). */
const NAME =
  /\b(KONTENA_LB_[A-Z0-9_]+|KONTENA_STACK_NAME|KONTENA_SERVICE_NAME|ETCD_[A-Z0-9_]+|STATS_PASSWORD|LOG_LEVEL|DEBUG|SYSLOG_TARGET|ACME_[A-Z0-9_]+|SSL_CERTS?[A-Z0-9_]*)\b/g;

/**
 * Mentioned in src/ without being read: OpenSSL's own variables, which env-certs.ts names only
 * to say it does not take them for certificates.
 */
const NOT_SETTINGS = new Set(['SSL_CERT_FILE', 'SSL_CERT_DIR']);

/**
 * Every environment variable name that appears in src/ (code and comments alike, so a setting
 * documented only in a comment is caught too). A name ending in `_` is a family such as
 * `SSL_CERT_<name>`. Sorted, without duplicates.
 */
export function envNamesInSource(): string[] {
  const names = new Set<string>();
  for (const file of sourceFiles(path.join(ROOT, 'src'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(NAME)) {
      const name = match[1]!;
      if (name === 'KONTENA_LB_' || NOT_SETTINGS.has(name)) continue; // `KONTENA_LB_*_SETTINGS` in prose
      names.add(name);
    }
  }
  return [...names].sort();
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}
