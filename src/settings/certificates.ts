import { group, readBySource, setting } from './setting.js';
import { absolutePath, boolean, checked, parsedBy, text } from './values.js';
import { DEFAULT_CIPHERS, defaultCiphersFor, DEFAULT_TLS_MIN_VERSION, parseTlsMinVersion, TLS13_SUITES, TLS_VERSIONS } from './tls.js';

// Where certificates come from, which one is the default, and what the HTTPS listener offers.

/** KONTENA_LB_CERT_WARN_DAYS when unset (Let's Encrypt renews 30 days ahead: 21 means renewal is well overdue). */
export const DEFAULT_CERT_WARN_DAYS = 21;

export const certificateSettings = group(
  {
    sslCerts: readBySource({
      env: 'SSL_CERTS',
      help: 'one or more PEM bundles concatenated',
      doc: 'one or more PEM bundles concatenated (certificate, optional chain, private key last)',
    }),
    sslCertFamily: readBySource({
      env: 'SSL_CERT_<name>',
      help: 'one PEM bundle each',
      doc: 'one PEM bundle each (how the platform injects vault secrets)',
    }),
    certsDir: setting({
      env: 'KONTENA_LB_CERTS_DIR',
      flag: 'certs-dir',
      schema: absolutePath,
      help: 'a directory of PEM bundles (*.pem), watched live',
      doc: 'a directory of `*.pem` bundles, watched: add, replace or remove a file and it takes effect live',
    }),
    /** Secret: never logged. Environment only: a flag would show in `ps` and shell history. */
    vaultKey: setting({
      env: 'KONTENA_LB_VAULT_KEY',
      schema: text,
      help: 'the key certificates in the etcd vault are encrypted with',
      doc: 'when set, certificates in the etcd vault are stored encrypted with it (AES-256-GCM) and plain ones are refused',
    }),
    defaultCert: setting({
      env: 'KONTENA_LB_DEFAULT_CERT',
      flag: 'default-cert',
      schema: text,
      help: 'certificate for clients without SNI or with an unknown name: vault name, SSL_CERT_ name, file name or host',
      docDefault: 'the first valid certificate in a stable order',
      doc: 'the certificate for clients without SNI or asking for a name nothing covers: a vault name, an `SSL_CERT_<name>` name, a file name (without `.pem`) or a host name it covers',
    }),
    http2: setting({
      env: 'KONTENA_LB_HTTP2',
      flag: 'http2',
      default: 'true',
      schema: boolean,
      help: 'offer HTTP/2 by ALPN on the HTTPS port (true/false)',
      doc: 'offer HTTP/2 by ALPN (`h2,http/1.1`) on the HTTPS port; `false` offers `http/1.1` only and refuses HTTP/2 even from clients that skip ALPN',
    }),
    /** The lowest TLS version the HTTPS listener accepts (HAProxy ssl-min-ver). */
    sslMinVersion: setting({
      env: 'KONTENA_LB_SSL_MIN_VERSION',
      flag: 'ssl-min-version',
      default: DEFAULT_TLS_MIN_VERSION,
      schema: () => parsedBy(parseTlsMinVersion),
      help: `lowest TLS version accepted on the HTTPS port: ${TLS_VERSIONS.slice(0, -1).join(', ')} or ${TLS_VERSIONS.at(-1)}`,
      doc: `the lowest TLS version the HTTPS port accepts: ${TLS_VERSIONS.slice(0, -1)
        .map((v) => `\`${v}\``)
        .join(
          ', ',
        )} or \`${TLS_VERSIONS.at(-1)}\` (HAProxy \`ssl-min-ver\`). For clients that still need TLS 1.0/1.1 (the Kontena load balancer accepted TLS 1.0): with \`TLSv1.0\` or \`TLSv1.1\` and no \`KONTENA_LB_SSL_CIPHERS\`, the cipher list becomes Mozilla "old" ending in \`@SECLEVEL=0\`, because Debian 12's OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level and the default list has no cipher they can use. An explicit \`KONTENA_LB_SSL_CIPHERS\` for such clients needs \`@SECLEVEL=0\` too. \`@SECLEVEL=0\` lowers OpenSSL's security level for the whole HTTPS listener (every client, TLS 1.2 and 1.3 included, may then be offered the weak suites of the list): set a lower minimum only while such clients exist`,
    }),
    sslCiphers: setting({
      env: 'KONTENA_LB_SSL_CIPHERS',
      flag: 'ssl-ciphers',
      schema: (env) =>
        checked(
          (raw) => /^[A-Za-z0-9_+:!@.=-]+$/.test(raw),
          (raw) => `${env} must be an OpenSSL cipher list like ECDHE-RSA-AES128-GCM-SHA256:..., got ${JSON.stringify(raw)}`,
        ),
      help: 'OpenSSL cipher list for TLS 1.2 and below (TLS 1.3: --ssl-ciphersuites)',
      shownDefault: 'Mozilla intermediate (ECDHE with AES-GCM or ChaCha20); Mozilla old with a TLSv1.0 or TLSv1.1 minimum',
      docDefault: `Mozilla "intermediate": \`${DEFAULT_CIPHERS}\`; with a \`TLSv1.0\`/\`TLSv1.1\` minimum, Mozilla "old" (the same plus CBC and SHA-1 suites and \`DES-CBC3-SHA\`) with \`:@SECLEVEL=0\``,
      doc: "the cipher list for TLS 1.2 and below; TLS 1.3's suites are `KONTENA_LB_SSL_CIPHERSUITES`. The `DHE-` suites are offered only with `tune.ssl.default-dh-param 2048` in `KONTENA_LB_GLOBAL_SETTINGS` (HAProxy 2.6 has no DH parameters otherwise)",
    }),
    sslCiphersuites: setting({
      env: 'KONTENA_LB_SSL_CIPHERSUITES',
      flag: 'ssl-ciphersuites',
      schema: (env) =>
        checked(
          (raw) => raw.split(':').every((suite) => TLS13_SUITES.includes(suite)),
          (raw) => `${env} must be TLS 1.3 suites separated by ':' (of ${TLS13_SUITES.join(', ')}), got ${JSON.stringify(raw)}`,
        ),
      help: 'TLS 1.3 cipher suites, e.g. TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
      docDefault: "OpenSSL's (`TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256`)",
      doc: `the TLS 1.3 cipher suites the HTTPS port offers, in order of preference (HAProxy's \`ciphersuites\` bind option), e.g. \`TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\`, of ${TLS13_SUITES.map((suite) => `\`${suite}\``).join(', ')} (any other name stops edgelb at start: HAProxy would refuse every config)`,
    }),
    certWarnDays: setting({
      env: 'KONTENA_LB_CERT_WARN_DAYS',
      flag: 'cert-warn-days',
      default: String(DEFAULT_CERT_WARN_DAYS),
      schema: (env) =>
        checked(
          (raw) => /^[0-9]{1,3}$/.test(raw) && Number(raw) >= 1 && Number(raw) <= 365,
          (raw) => `${env} must be a number of days between 1 and 365, got ${JSON.stringify(raw)}`,
        ).transform(Number),
      help: 'warn (log, /status, dashboard, cert list) when a served certificate expires within this many days',
      doc: 'a served certificate that expires within this many days (1–365) is a certificate warning: one log line (`certificate.attention`), and listed in `/status` (`certificateWarnings`), on the dashboard and by `edgelb cert list`. See [Certificate warnings](#certificate-warnings)',
    }),
  },
  ({ sslCerts: _sslCerts, sslCertFamily: _sslCertFamily, ...values }) => ({
    ...values,
    // The default list depends on the minimum version: TLS 1.0/1.1 clients need the old suites.
    sslCiphers: values.sslCiphers ?? defaultCiphersFor(values.sslMinVersion),
  }),
);
