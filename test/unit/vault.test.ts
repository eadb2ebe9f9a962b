import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// Counts scrypt runs (the expensive step) instead of timing them: a shared machine makes times noisy.
const scrypt = vi.hoisted(() => ({ calls: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>();
  return {
    ...crypto,
    scryptSync: (...args: Parameters<typeof crypto.scryptSync>) => {
      scrypt.calls++;
      return crypto.scryptSync(...args);
    },
  };
});
import { parseBundle } from '../../src/tls/bundle.js';
import { decryptBundle, encryptBundle, isEncrypted, vaultCertsFromEntries, VaultError, VAULT_PREFIX } from '../../src/tls/vault.js';
import { makeLeaf, removeCertFiles, type LeafCert } from '../support/certs.js';

const KEY = 'correct horse battery staple 0123456789';
const OTHER_KEY = 'another vault key, not the right one';

let leaf: LeafCert;
let other: LeafCert;
beforeAll(async () => {
  [leaf, other] = await Promise.all([makeLeaf({ names: ['vault.example.com'] }), makeLeaf({ names: ['other.example.com'] })]);
});
afterAll(removeCertFiles);

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VaultError);
    return (error as Error).message;
  }
  throw new Error('expected a VaultError');
}

/** Flips one bit of the decoded payload at `offset` (negative: from the end). */
function tamper(stored: string, offset: number): string {
  const raw = Buffer.from(stored.slice(VAULT_PREFIX.length), 'base64url');
  const at = offset < 0 ? raw.length + offset : offset;
  raw[at] = raw[at]! ^ 0x01;
  return VAULT_PREFIX + raw.toString('base64url');
}

describe('encryptBundle / decryptBundle', () => {
  it('round-trips a bundle, as one line of text with the versioned prefix', () => {
    const stored = encryptBundle(leaf.bundlePem, KEY);
    expect(stored.startsWith('edgelb-vault:v1:')).toBe(true);
    expect(stored).toMatch(/^edgelb-vault:v1:[A-Za-z0-9_-]+$/);
    expect(stored).not.toContain('PRIVATE KEY');
    expect(isEncrypted(stored)).toBe(true);
    expect(decryptBundle(stored, KEY)).toBe(leaf.bundlePem);
  });

  it('uses a fresh salt and iv for every value', () => {
    const a = encryptBundle(leaf.bundlePem, KEY);
    const b = encryptBundle(leaf.bundlePem, KEY);
    expect(a).not.toBe(b);
    expect(decryptBundle(a, KEY)).toBe(decryptBundle(b, KEY));
  });

  it('tolerates surrounding whitespace (etcdctl put from a file with a newline)', () => {
    expect(decryptBundle(`\n${encryptBundle(leaf.bundlePem, KEY)}\n`, KEY)).toBe(leaf.bundlePem);
  });

  it('rejects a value encrypted with another key', () => {
    const stored = encryptBundle(leaf.bundlePem, OTHER_KEY);
    expect(reason(() => decryptBundle(stored, KEY))).toBe('encrypted with a different KONTENA_LB_VAULT_KEY');
  });

  it.each([
    ['the ciphertext', -1],
    ['the tag', 4 + 16 + 12],
    ['the iv', 4 + 16],
    ['the salt', 4],
  ])('rejects a value whose %s was altered', (_what, offset) => {
    const stored = tamper(encryptBundle(leaf.bundlePem, KEY), offset);
    expect(reason(() => decryptBundle(stored, KEY))).toMatch(/altered or truncated/);
  });

  it('rejects a truncated value and one that is not base64url', () => {
    const stored = encryptBundle(leaf.bundlePem, KEY);
    expect(reason(() => decryptBundle(stored.slice(0, -10), KEY))).toMatch(/altered or truncated/);
    expect(reason(() => decryptBundle(`${VAULT_PREFIX}AAAA`, KEY))).toMatch(/too short/);
    expect(reason(() => decryptBundle(`${VAULT_PREFIX}not base64!`, KEY))).toMatch(/not base64url/);
  });

  it('rejects an unknown format version', () => {
    expect(reason(() => decryptBundle('edgelb-vault:v9:AAAA', KEY))).toMatch(/vault format v9/);
  });

  it('accepts plain PEM when no vault key is set', () => {
    expect(decryptBundle(leaf.bundlePem, undefined)).toBe(leaf.bundlePem);
    expect(decryptBundle(leaf.bundlePem, '')).toBe(leaf.bundlePem);
    expect(isEncrypted(leaf.bundlePem)).toBe(false);
  });

  it('rejects plain PEM when a vault key is set', () => {
    expect(reason(() => decryptBundle(leaf.bundlePem, KEY))).toMatch(/^not encrypted, but KONTENA_LB_VAULT_KEY is set/);
  });

  it('rejects an encrypted value when no vault key is set', () => {
    const stored = encryptBundle(leaf.bundlePem, KEY);
    expect(reason(() => decryptBundle(stored, undefined))).toBe('encrypted, but KONTENA_LB_VAULT_KEY is not set');
  });

  it('rejects a value that is neither PEM nor a vault value', () => {
    expect(reason(() => decryptBundle('hello', undefined))).toMatch(/neither a PEM bundle nor/);
    expect(reason(() => decryptBundle('hello', KEY))).toMatch(/neither a PEM bundle nor/);
  });

  it('refuses to encrypt with an empty key', () => {
    expect(reason(() => encryptBundle(leaf.bundlePem, ''))).toMatch(/empty/);
  });

  it('never puts key material or plaintext in a reason', () => {
    const stored = encryptBundle(leaf.bundlePem, KEY);
    const keyBody = leaf.keyPem.split('\n')[1]!;
    const reasons = [
      reason(() => decryptBundle(stored, OTHER_KEY)),
      reason(() => decryptBundle(tamper(stored, -1), KEY)),
      reason(() => decryptBundle(stored, undefined)),
      reason(() => decryptBundle(leaf.bundlePem, KEY)),
      reason(() => decryptBundle(stored.slice(0, -10), KEY)),
      reason(() => decryptBundle(`${leaf.keyPem.replace('-----BEGIN', 'BEGIN')}`, KEY)),
    ];
    for (const message of reasons) {
      expect(message).not.toContain(KEY);
      expect(message).not.toContain(OTHER_KEY);
      expect(message).not.toContain(keyBody.slice(0, 16));
      expect(message).not.toContain(stored.slice(VAULT_PREFIX.length, VAULT_PREFIX.length + 16));
      expect(message).not.toMatch(/PRIVATE KEY/);
    }
  });

  it('derives the master key once per vault key: decrypting 1,000 values runs scrypt at most once', () => {
    const key = `${KEY} for counting`;
    const stored = Array.from({ length: 1000 }, () => encryptBundle(leaf.bundlePem, key));
    const before = scrypt.calls;
    for (const value of stored) decryptBundle(value, key);
    expect(scrypt.calls - before).toBe(0);
    decryptBundle(encryptBundle(leaf.bundlePem, `${KEY} another`), `${KEY} another`);
    expect(scrypt.calls - before).toBe(1);
  });
});

describe('vaultCertsFromEntries', () => {
  it('picks certs/<name> entries, decrypted, in name order, with source vault', () => {
    const entries = new Map([
      ['services/web/upstreams/a', '10.0.0.1:80'],
      ['certs/www.example.com', encryptBundle(leaf.bundlePem, KEY)],
      ['certs/a_other-1', encryptBundle(other.bundlePem, KEY)],
    ]);
    const { certs, rejected } = vaultCertsFromEntries(entries, KEY);
    expect(rejected).toEqual([]);
    expect(certs.map((c) => c.source)).toEqual([
      { kind: 'vault', ref: 'certs/a_other-1' },
      { kind: 'vault', ref: 'certs/www.example.com' },
    ]);
    expect(certs[0]!.pem).toBe(other.bundlePem);
    expect(parseBundle(certs[1]!.pem, certs[1]!.source).names).toEqual(['vault.example.com']);
  });

  it('takes plain PEM without a key', () => {
    const { certs, rejected } = vaultCertsFromEntries(new Map([['certs/site', leaf.bundlePem]]), undefined);
    expect(rejected).toEqual([]);
    expect(certs).toEqual([{ source: { kind: 'vault', ref: 'certs/site' }, pem: leaf.bundlePem }]);
  });

  it('rejects bad names and values that do not decrypt, with reasons, and keeps the rest', () => {
    const entries = new Map([
      ['certs/good', encryptBundle(leaf.bundlePem, KEY)],
      ['certs/nested/name', encryptBundle(leaf.bundlePem, KEY)],
      ['certs/sp ace', encryptBundle(leaf.bundlePem, KEY)],
      ['certs/..', encryptBundle(leaf.bundlePem, KEY)],
      ['certs/', encryptBundle(leaf.bundlePem, KEY)],
      ['certs/plain', leaf.bundlePem],
      ['certs/wrong-key', encryptBundle(other.bundlePem, OTHER_KEY)],
      ['certs/tampered', tamper(encryptBundle(other.bundlePem, KEY), -1)],
    ]);
    const { certs, rejected } = vaultCertsFromEntries(entries, KEY);
    expect(certs.map((c) => c.source.ref)).toEqual(['certs/good']);
    expect(Object.fromEntries(rejected.map((r) => [r.key, r.reason]))).toEqual({
      'certs/': expect.stringMatching(/name "" is not valid/),
      'certs/..': expect.stringMatching(/name "\.\." is not valid/),
      'certs/nested/name': expect.stringMatching(/name "nested\/name" is not valid/),
      'certs/sp ace': expect.stringMatching(/is not valid/),
      'certs/plain': expect.stringMatching(/not encrypted, but KONTENA_LB_VAULT_KEY is set/),
      'certs/wrong-key': 'encrypted with a different KONTENA_LB_VAULT_KEY',
      'certs/tampered': expect.stringMatching(/altered or truncated/),
    });
  });

  it('rejects encrypted values when no key is set', () => {
    const { certs, rejected } = vaultCertsFromEntries(new Map([['certs/x', encryptBundle(leaf.bundlePem, KEY)]]), undefined);
    expect(certs).toEqual([]);
    expect(rejected).toEqual([{ key: 'certs/x', reason: 'encrypted, but KONTENA_LB_VAULT_KEY is not set' }]);
  });
});
