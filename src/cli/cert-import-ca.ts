import { readFile } from 'node:fs/promises';
import { CA_DIRS, CaBundleError, caBundleOf, type CaBundle, type CaKind } from '../tls/ca-bundles.js';
import { loadSettings, withEtcd, type CertCliFlags, type CertCommandDeps } from './cert-etcd.js';

export type CaImportFlags = CertCliFlags & { name?: string; crl?: boolean; backend?: boolean };

/**
 * `edgelb cert import-ca <file> --name <name>`: checks a CA bundle (or, with --crl, a CRL bundle)
 * as the load balancer will (tls/ca-bundles.ts), then stores it under client-cas/<name>,
 * client-crls/<name> or (--backend) backend-cas/<name>. Stored as plain PEM even with a vault key:
 * certificates and CRLs are public, and `etcdctl get` should show what is trusted.
 */
export async function importCa(file: string, flags: CaImportFlags, deps: CertCommandDeps): Promise<void> {
  if (flags.crl && flags.backend) deps.fail('--crl and --backend do not go together: revocation lists are for client certificates (client_crl)');
  const kind: CaKind = flags.crl ? 'client-crl' : flags.backend ? 'backend-ca' : 'client-ca';
  if (flags.name === undefined) deps.fail('--name is required: the name client_ca, client_crl or backend_ca will give');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    deps.fail(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const key = `${CA_DIRS[kind]}${flags.name}`;
  let bundle: CaBundle;
  try {
    bundle = caBundleOf(kind, flags.name, key, text);
  } catch (error) {
    if (error instanceof CaBundleError) deps.fail(`${file} is not a valid ${kind === 'client-crl' ? 'CRL bundle' : 'CA bundle'}: ${error.message}`);
    throw error;
  }
  const settings = loadSettings(flags, deps);
  const fullKey = `${settings.etcdPath}/${key}`;
  const replaced = await withEtcd(settings, deps, true, async (store) => {
    const previous = await store.get(fullKey);
    await store.put(fullKey, bundle.pem);
    return previous !== undefined;
  });
  const blocks = bundle.pem.match(/-----BEGIN /g)?.length ?? 0;
  deps.out(`${replaced ? 'replaced' : 'imported'} ${fullKey}: ${blocks} ${kind === 'client-crl' ? 'CRL' : 'certificate'}${blocks === 1 ? '' : 's'}`);
}
