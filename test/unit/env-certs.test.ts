import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnvCerts } from '../../src/sources/env-certs.js';
import { parseBundle } from '../../src/tls/bundle.js';
import { makeCa, makeLeaf, removeCertFiles, type LeafCert } from '../support/certs.js';

let a: LeafCert;
let b: LeafCert;
let c: LeafCert;
beforeAll(async () => {
  const ca = await makeCa('env test CA');
  [a, b, c] = await Promise.all([
    makeLeaf({ names: ['a.example.com'] }),
    makeLeaf({ names: ['b.example.com'], issuer: await makeCa('env test CA 2') }),
    makeLeaf({ names: ['c.example.com'], issuer: ca }),
  ]);
});
afterAll(removeCertFiles);

const namesOf = (pem: string) => parseBundle(pem, { kind: 'env', ref: 'test' }).names;

describe('readEnvCerts', () => {
  it('returns nothing when no certificate variable is set', () => {
    expect(readEnvCerts({ PATH: '/usr/bin', SSL_CERTS: undefined, SSL_CERT_X: '  ' })).toEqual([]);
    expect(readEnvCerts({ SSL_CERTS: '' })).toEqual([]);
  });

  it('splits SSL_CERTS into SSL_CERTS#1, #2, ...', () => {
    const certs = readEnvCerts({ SSL_CERTS: a.bundlePem + b.certPem + b.keyPem + c.bundlePem });
    expect(certs.map((cert) => cert.source)).toEqual([
      { kind: 'env', ref: 'SSL_CERTS#1' },
      { kind: 'env', ref: 'SSL_CERTS#2' },
      { kind: 'env', ref: 'SSL_CERTS#3' },
    ]);
    expect(certs.map((cert) => namesOf(cert.pem))).toEqual([['a.example.com'], ['b.example.com'], ['c.example.com']]);
  });

  it('takes each SSL_CERT_<name> in name order, after SSL_CERTS', () => {
    const certs = readEnvCerts({ SSL_CERT_zeta: c.bundlePem, SSL_CERT_ALPHA: a.bundlePem, SSL_CERTS: b.bundlePem, OTHER: 'x' });
    expect(certs.map((cert) => cert.source.ref)).toEqual(['SSL_CERTS#1', 'SSL_CERT_ALPHA', 'SSL_CERT_zeta']);
    expect(certs.every((cert) => cert.source.kind === 'env')).toBe(true);
    expect(certs[1]!.pem).toBe(a.bundlePem);
    expect(namesOf(certs[2]!.pem)).toEqual(['c.example.com']);
  });

  it('passes a SSL_CERTS without any PEM block on whole, so that it is rejected visibly', () => {
    const certs = readEnvCerts({ SSL_CERTS: 'oops' });
    expect(certs).toEqual([{ source: { kind: 'env', ref: 'SSL_CERTS#1' }, pem: 'oops' }]);
    expect(() => namesOf(certs[0]!.pem)).toThrow(/no certificate/);
  });

  it('passes invalid SSL_CERT_<name> values on, for parseBundle to reject', () => {
    const certs = readEnvCerts({ SSL_CERT_bad: 'not a bundle', SSL_CERT_nokey: a.certPem });
    expect(certs.map((cert) => cert.source.ref)).toEqual(['SSL_CERT_bad', 'SSL_CERT_nokey']);
    expect(() => namesOf(certs[1]!.pem)).toThrow(/no private key/);
  });

  it("leaves out OpenSSL's own SSL_CERT_FILE and SSL_CERT_DIR when they hold paths", () => {
    expect(readEnvCerts({ SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt', SSL_CERT_DIR: '/etc/ssl/certs' })).toEqual([]);
    expect(readEnvCerts({ SSL_CERT_FILE: a.bundlePem }).map((cert) => cert.source.ref)).toEqual(['SSL_CERT_FILE']);
  });

  it('ignores the bare prefix SSL_CERT_', () => {
    expect(readEnvCerts({ SSL_CERT_: a.bundlePem })).toEqual([]);
  });

  it('unescapes literal \\n in single-line values', () => {
    const oneLine = a.bundlePem.replace(/\n/g, '\\n');
    const certs = readEnvCerts({ SSL_CERTS: oneLine + b.bundlePem.replace(/\n/g, '\\n'), SSL_CERT_one: oneLine });
    expect(certs.map((cert) => cert.source.ref)).toEqual(['SSL_CERTS#1', 'SSL_CERTS#2', 'SSL_CERT_one']);
    expect(certs[2]!.pem).toBe(a.bundlePem);
    expect(namesOf(certs[1]!.pem)).toEqual(['b.example.com']);
  });

  it('does not touch values that have real line breaks', () => {
    const value = `${a.bundlePem}# comment with a literal \\n\n`;
    expect(readEnvCerts({ SSL_CERT_x: value })[0]!.pem).toBe(value);
  });
});
