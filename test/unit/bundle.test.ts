import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleError, isExpired, parseBundle, splitBundles, type CertSource } from '../../src/tls/bundle.js';
import { makeCa, makeIntermediate, makeLeaf, removeCertFiles, type CertAuthority, type LeafCert } from '../support/certs.js';

const source: CertSource = { kind: 'dir', ref: '/etc/certs/site.pem' };

let ca: CertAuthority;
let intermediate: CertAuthority;
let selfSigned: LeafCert;
let chained: LeafCert;

beforeAll(async () => {
  ca = await makeCa('bundle test CA');
  intermediate = await makeIntermediate(ca);
  [selfSigned, chained] = await Promise.all([
    makeLeaf({ names: ['www.example.com', 'Example.COM'] }),
    makeLeaf({ names: ['api.example.com'], issuer: intermediate }),
  ]);
});
afterAll(removeCertFiles);

function rejects(pem: string, reason: RegExp): void {
  expect(() => parseBundle(pem, source)).toThrow(BundleError);
  expect(() => parseBundle(pem, source)).toThrow(reason);
}

describe('parseBundle', () => {
  it('accepts a self-signed certificate with its key', () => {
    const bundle = parseBundle(selfSigned.bundlePem, source);
    expect(bundle.names).toEqual(['www.example.com', 'example.com']);
    expect(bundle.subject).toBe('CN=www.example.com');
    expect(bundle.source).toEqual(source);
    expect(bundle.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(bundle.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(bundle.id).toMatch(/^dir-[A-Za-z0-9_.-]+-[0-9a-f]{8}$/);
    expect(bundle.pem).toContain('PRIVATE KEY-----\n');
    expect(isExpired(bundle)).toBe(false);
    expect(Object.isFrozen(bundle)).toBe(true);
  });

  it('accepts leaf, intermediate and root in order, and keeps that order', () => {
    const pem = chained.certPem + intermediate.certPem + ca.certPem + chained.keyPem;
    const bundle = parseBundle(pem, source);
    expect(bundle.names).toEqual(['api.example.com']);
    const certs = [...bundle.pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => `${m[0]}\n`);
    expect(certs).toEqual([chained.certPem, intermediate.certPem, ca.certPem]);
    expect(bundle.pem.trimEnd().endsWith('-----END PRIVATE KEY-----')).toBe(true);
  });

  it('accepts the key before the certificates too, and ignores text around the blocks', () => {
    const pem = `Bag Attributes: junk\n${chained.keyPem}subject=/CN=api.example.com\n${chained.certPem}${chained.chainPem}`;
    expect(parseBundle(pem, source).names).toEqual(['api.example.com']);
  });

  it('rejects a chain out of order', () => {
    rejects(chained.certPem + ca.certPem + intermediate.certPem + chained.keyPem, /chain is out of order: certificate 2 did not issue certificate 1/);
    rejects(chained.certPem + intermediate.certPem + selfSigned.certPem + chained.keyPem, /chain is out of order: certificate 3 did not issue certificate 2/);
  });

  it('rejects a chain certificate that did not issue the leaf', () => {
    rejects(chained.certPem + selfSigned.certPem + chained.keyPem, /certificate 2 did not issue certificate 1/);
  });

  it('rejects a key that does not match the certificate', () => {
    rejects(selfSigned.certPem + chained.keyPem, /the private key does not match the certificate/);
  });

  it('rejects a bundle without a key, or with two', () => {
    rejects(selfSigned.certPem, /no private key in the bundle/);
    rejects(selfSigned.bundlePem + chained.keyPem, /more than one private key/);
  });

  it('rejects text that is no bundle', () => {
    rejects('', /no certificate in the bundle/);
    rejects('hello, world\n', /no certificate in the bundle/);
    rejects(selfSigned.keyPem, /no certificate in the bundle/);
  });

  it('rejects a certificate that does not parse, with a reason', () => {
    const garbage = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';
    rejects(garbage + selfSigned.keyPem, /a certificate does not parse/);
  });

  it('rejects a key that does not parse, without quoting it', () => {
    const secret = 'c2VjcmV0LWtleS1tYXRlcmlhbA==';
    const badKey = `-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----\n`;
    let message = '';
    try {
      parseBundle(selfSigned.certPem + badKey, source);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe('the private key does not parse');
    expect(message).not.toContain(secret);
  });

  it('reads wildcard names, lower-cased and without duplicates', async () => {
    const leaf = await makeLeaf({ names: ['*.Example.org', 'example.org', '*.example.org'] });
    expect(parseBundle(leaf.bundlePem, source).names).toEqual(['*.example.org', 'example.org']);
  });

  it('falls back to the CN when there is no subjectAltName', async () => {
    const leaf = await makeLeaf({ names: ['legacy.example.net'], noSubjectAltName: true });
    expect(parseBundle(leaf.bundlePem, source).names).toEqual(['legacy.example.net']);
  });

  it('rejects a certificate that names no DNS host', async () => {
    const leaf = await makeLeaf({ names: [], commonName: 'Not_a_host!', noSubjectAltName: true });
    rejects(leaf.bundlePem, /names no DNS host/);
  });

  it('accepts an RSA key', async () => {
    const leaf = await makeLeaf({ names: ['rsa.example.com'], keyType: 'rsa', issuer: ca });
    expect(parseBundle(leaf.bundlePem, source).names).toEqual(['rsa.example.com']);
  });

  it('parses an expired certificate, which isExpired detects', async () => {
    const leaf = await makeLeaf({ names: ['old.example.com'], expired: true, issuer: intermediate });
    const bundle = parseBundle(leaf.bundlePem, source);
    expect(bundle.notAfter.toISOString()).toBe('2020-01-02T00:00:00.000Z');
    expect(isExpired(bundle)).toBe(true);
    expect(isExpired(bundle, new Date('2020-01-01T12:00:00Z'))).toBe(false);
    expect(isExpired(bundle, new Date('2020-01-02T00:00:00Z'))).toBe(true);
  });

  it('rejects a certificate not valid until more than a day from now', async () => {
    const start = new Date(Date.now() + 3 * 86_400_000);
    const leaf = await makeLeaf({ names: ['future.example.com'], notBefore: start, notAfter: new Date(start.getTime() + 30 * 86_400_000) });
    rejects(leaf.bundlePem, /not valid before/);
    expect(parseBundle(leaf.bundlePem, source, new Date(start.getTime() - 3600_000)).names).toEqual(['future.example.com']);
  });

  it('gives the same id for the same source and different ids for different sources', () => {
    const a = parseBundle(selfSigned.bundlePem, source);
    const b = parseBundle(chained.bundlePem, source);
    const c = parseBundle(selfSigned.bundlePem, { kind: 'env', ref: 'SSL_CERTS#1' });
    expect(a.id).toBe(b.id);
    expect(c.id).not.toBe(a.id);
    expect(c.id).toMatch(/^env-SSL_CERTS_1-[0-9a-f]{8}$/);
  });
});

describe('splitBundles', () => {
  it('splits concatenated bundles at each private key', () => {
    const text = selfSigned.bundlePem + chained.bundlePem;
    const parts = splitBundles(text);
    expect(parts).toHaveLength(2);
    expect(parseBundle(parts[0]!, source).names).toEqual(['www.example.com', 'example.com']);
    expect(parseBundle(parts[1]!, source).names).toEqual(['api.example.com']);
    expect(parts[1]!.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
  });

  it('tolerates CRLF line ends and text between bundles', () => {
    const text = `${selfSigned.bundlePem}\n# next one\n${chained.bundlePem}`.replace(/\n/g, '\r\n');
    expect(splitBundles(text)).toHaveLength(2);
  });

  it('keeps trailing certificates without a key as a last bundle, which parseBundle rejects', () => {
    const parts = splitBundles(selfSigned.bundlePem + chained.certPem);
    expect(parts).toHaveLength(2);
    expect(() => parseBundle(parts[1]!, source)).toThrow(/no private key/);
  });

  it('returns nothing for text without PEM blocks', () => {
    expect(splitBundles('')).toEqual([]);
    expect(splitBundles('not pem')).toEqual([]);
  });
});
