import type { Logger } from '../log.js';
import type { RawCert } from '../tls/bundle.js';
import { fixedCertProvider, type CertProvider } from '../tls/cert-provider.js';
import type { CaStore } from '../tls/ca-bundles.js';
import { CaFilesSource } from './ca-files.js';
import { CertsDirSource, certsFromFiles } from './certs-dir.js';

/** SSL_CERTS: read once by main.ts, offered once. */
export function envCertProvider(certs: readonly RawCert[]): CertProvider {
  return fixedCertProvider('env', certs);
}

/**
 * KONTENA_LB_CERTS_DIR: the directory's whole set again after every change (debounced by
 * CertsDirSource), with the CA bundles of its subdirectories (sources/ca-files.ts).
 */
export function certsDirProvider(dir: string, logger: Logger): CertProvider {
  let source: CertsDirSource | undefined;
  let caFiles: CaFilesSource | undefined;
  let certs: RawCert[] = [];
  let cas: CaStore | undefined;
  return {
    kind: 'dir',
    async start(offer) {
      const offerBoth = () => offer({ kind: 'dir', certs, rejected: [], ...(cas ? { cas } : {}) });
      caFiles = new CaFilesSource({
        dir,
        logger,
        onChange: (store) => {
          cas = store;
          offerBoth();
        },
      });
      await caFiles.start();
      source = new CertsDirSource({
        dir,
        logger,
        onChange: (files) => {
          certs = certsFromFiles(files);
          offerBoth();
        },
      });
      await source.start();
    },
    stop: async () => {
      await caFiles?.stop();
      await source?.stop();
    },
  };
}
