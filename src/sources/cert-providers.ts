import type { Logger } from '../log.js';
import type { RawCert } from '../tls/bundle.js';
import { fixedCertProvider, type CertProvider } from '../tls/cert-provider.js';
import { CertsDirSource, certsFromFiles } from './certs-dir.js';

/** SSL_CERTS: read once by main.ts, offered once. */
export function envCertProvider(certs: readonly RawCert[]): CertProvider {
  return fixedCertProvider('env', certs);
}

/** KONTENA_LB_CERTS_DIR: the directory's whole set again after every change (debounced by CertsDirSource). */
export function certsDirProvider(dir: string, logger: Logger): CertProvider {
  let source: CertsDirSource | undefined;
  return {
    kind: 'dir',
    async start(offer) {
      source = new CertsDirSource({ dir, logger, onChange: (files) => offer({ kind: 'dir', certs: certsFromFiles(files), rejected: [] }) });
      await source.start();
    },
    stop: async () => source?.stop(),
  };
}
