import { readFile } from 'node:fs/promises';
import { BundleError, isExpired, parseBundle, type CertBundle } from '../tls/bundle.js';
import { encryptBundle, isValidVaultName } from '../tls/vault.js';
import { loadSettings, withEtcd, type CertCliFlags, type CertCommandDeps } from './cert-etcd.js';

export type CertImportFlags = CertCliFlags & { name?: string; allowExpired?: boolean };

/** `edgelb cert import <file>`: checks the bundle, then stores it (encrypted when a vault key is set) under certs/<name>. */
export async function importCert(file: string, flags: CertImportFlags, deps: CertCommandDeps): Promise<void> {
  const now = deps.now?.() ?? new Date();
  if (flags.name !== undefined && !isValidVaultName(flags.name)) {
    deps.fail(`--name ${JSON.stringify(flags.name)} is not a valid vault name (use letters, digits, '_', '.', '-')`);
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    deps.fail(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let bundle: CertBundle;
  try {
    bundle = parseBundle(text, { kind: 'vault', ref: `certs/${flags.name ?? 'import'}` }, now);
  } catch (error) {
    if (error instanceof BundleError) deps.fail(`${file} is not a valid certificate bundle: ${error.message}`);
    throw error;
  }
  if (isExpired(bundle, now) && !flags.allowExpired) {
    deps.fail(`${file}: the certificate expired on ${bundle.notAfter.toISOString()} (pass --allow-expired to store it anyway)`);
  }
  const name = flags.name ?? defaultName(bundle);
  if (!isValidVaultName(name)) deps.fail(`cannot make a vault name from ${JSON.stringify(bundle.names[0])}; pass --name`);

  const settings = loadSettings(flags, deps);
  const key = `${settings.etcdPath}/certs/${name}`;
  const value = settings.vaultKey ? encryptBundle(bundle.pem, settings.vaultKey) : bundle.pem;
  const replaced = await withEtcd(settings, deps, true, async (store) => {
    const previous = await store.get(key);
    await store.put(key, value);
    return previous !== undefined;
  });
  deps.out(
    `${replaced ? 'replaced' : 'imported'} ${key}: ${bundle.names.join(', ')}, expires ${bundle.notAfter.toISOString()}, ` +
      (settings.vaultKey ? 'encrypted' : 'NOT encrypted (KONTENA_LB_VAULT_KEY is not set)'),
  );
}

/** The first DNS name, `*` written as `wildcard`: *.example.com → wildcard.example.com. */
export function defaultName(bundle: Pick<CertBundle, 'names'>): string {
  return (bundle.names[0] ?? '').replace(/\*/g, 'wildcard');
}
