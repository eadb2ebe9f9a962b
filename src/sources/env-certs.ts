import { splitBundles, type RawCert } from '../tls/bundle.js';

/**
 * Certificates from the environment, as the Kontena load balancer takes them:
 *
 * - `SSL_CERTS`: one or more PEM bundles concatenated (each: certificate, optional chain, private
 *   key last), delivered as refs `SSL_CERTS#1`, `SSL_CERTS#2`, ...
 * - `SSL_CERT_<name>`: one bundle each, ref `SSL_CERT_<name>`, in order of name.
 *
 * Pure: the bundles are not parsed here (parseBundle checks them, and rejects what is not a
 * bundle with a reason). A non-empty SSL_CERTS with no PEM block at all is passed on whole, so
 * it is rejected visibly instead of ignored.
 *
 * `SSL_CERT_FILE` and `SSL_CERT_DIR` are OpenSSL's own variables (paths to trusted CAs, set in
 * many base images): when they hold a path rather than PEM they are not certificates for us.
 *
 * Values written with literal `\n` sequences and no real line breaks (a common way to squeeze
 * PEM into one line of an env file) are unescaped first.
 */
export function readEnvCerts(env: Readonly<Record<string, string | undefined>>): RawCert[] {
  const certs: RawCert[] = [];
  const all = env.SSL_CERTS;
  if (all !== undefined && all.trim() !== '') {
    const text = unescapeNewlines(all);
    const bundles = splitBundles(text);
    (bundles.length > 0 ? bundles : [text]).forEach((pem, i) => {
      certs.push({ source: { kind: 'env', ref: `SSL_CERTS#${i + 1}` }, pem });
    });
  }
  const names = Object.keys(env)
    .filter((name) => name.startsWith('SSL_CERT_') && name.length > 'SSL_CERT_'.length)
    .sort();
  for (const name of names) {
    const value = env[name];
    if (value === undefined || value.trim() === '') continue;
    if (OPENSSL_PATH_VARIABLES.has(name) && !value.includes('-----BEGIN')) continue;
    certs.push({ source: { kind: 'env', ref: name }, pem: unescapeNewlines(value) });
  }
  return certs;
}

const OPENSSL_PATH_VARIABLES = new Set(['SSL_CERT_FILE', 'SSL_CERT_DIR']);

function unescapeNewlines(value: string): string {
  return !value.includes('\n') && value.includes('\\n') ? value.replace(/\\r\\n|\\n/g, '\n') : value;
}
