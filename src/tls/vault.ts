import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { KEY_PATHS } from '../model/keyspace.js';
import type { RawCert } from './bundle.js';

/**
 * The certificate vault: PEM bundles in etcd under `<etcd path>/certs/<name>`, optionally
 * encrypted with KONTENA_LB_VAULT_KEY.
 *
 * Stored format (one line of text):
 *
 *   edgelb-vault:v1:<base64url( keyCheck[4] | salt[16] | iv[12] | tag[16] | ciphertext )>
 *
 * - The vault key (any string; a long random one is best) is stretched once per process with
 *   scrypt (N=2^15, r=8, p=1) into a master key, under a fixed, versioned salt. It is fixed so
 *   that reading 1,000 values costs one scrypt, not 1,000 (a per-value scrypt salt would make
 *   every apply slow, and values imported one at a time would each need their own scrypt).
 * - Each value gets its own 16-byte random salt; its AES-256-GCM key is HKDF-SHA256(master, salt),
 *   which costs microseconds. The iv is random too, and the prefix is authenticated (AAD).
 * - keyCheck is the first 4 bytes of HMAC-SHA256(master, "key-check"): it tells "encrypted with a
 *   different vault key" apart from "altered or truncated", which the GCM tag alone cannot. Four
 *   bytes say nothing useful about the key, and guessing keys still costs a scrypt each.
 *
 * Error messages name what is wrong and never include key material or plaintext.
 */

export const VAULT_PREFIX = 'edgelb-vault:v1:';
const ANY_VAULT_PREFIX = /^edgelb-vault:(v[0-9]+):/;
const KEY_CHECK = 4;
const SALT = 16;
const IV = 12;
const TAG = 16;
const HEADER = KEY_CHECK + SALT + IV + TAG;
const SCRYPT_SALT = 'edgelb-vault:v1:master-key';
const SCRYPT_OPTIONS = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

/** A vault value that cannot be used; `message` is the reason, safe to log and show. */
export class VaultError extends Error {}

interface MasterKey {
  readonly key: Buffer;
  readonly check: Buffer;
}

/** Master keys by SHA-256 of the vault key (never the key itself); in practice one entry. */
const masterKeys = new Map<string, MasterKey>();
const MAX_CACHED_KEYS = 4;

function masterKey(vaultKey: string): MasterKey {
  const id = createHash('sha256').update('edgelb-vault-cache\0').update(vaultKey, 'utf8').digest('hex');
  const cached = masterKeys.get(id);
  if (cached) return cached;
  const key = scryptSync(Buffer.from(vaultKey, 'utf8'), SCRYPT_SALT, 32, SCRYPT_OPTIONS);
  const check = createHmac('sha256', key).update('key-check').digest().subarray(0, KEY_CHECK);
  const master = { key, check };
  if (masterKeys.size >= MAX_CACHED_KEYS) masterKeys.delete(masterKeys.keys().next().value!);
  masterKeys.set(id, master);
  return master;
}

function valueKey(master: MasterKey, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', master.key, salt, 'edgelb-vault:v1:aes-256-gcm', 32));
}

function checkVaultKey(vaultKey: string): void {
  if (vaultKey.length === 0) throw new VaultError('KONTENA_LB_VAULT_KEY is empty');
}

/** Whether a stored value is an edgelb vault value (of any version), as opposed to plain PEM. */
export function isEncrypted(stored: string): boolean {
  return ANY_VAULT_PREFIX.test(stored.trimStart());
}

/** Encrypts a PEM bundle for the vault. */
export function encryptBundle(pem: string, vaultKey: string): string {
  checkVaultKey(vaultKey);
  const master = masterKey(vaultKey);
  const salt = randomBytes(SALT);
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', valueKey(master, salt), iv);
  cipher.setAAD(Buffer.from(VAULT_PREFIX, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(pem, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return VAULT_PREFIX + Buffer.concat([master.check, salt, iv, tag, ciphertext]).toString('base64url');
}

/**
 * The PEM bundle a stored vault value holds.
 *
 * - Encrypted value, vault key set: decrypted (wrong key and altered values are told apart).
 * - Encrypted value, no vault key: rejected.
 * - Plain PEM, no vault key: returned as it is.
 * - Plain PEM, vault key set: rejected. Setting KONTENA_LB_VAULT_KEY says that private keys in
 *   etcd must be encrypted; accepting plain values anyway would let a key sit in etcd in the
 *   clear unnoticed (written by hand or by an old tool), and would let anyone who can write to
 *   etcd, but does not hold the vault key, install a certificate. Refusing it, with a reason
 *   `edgelb cert list` shows, makes the policy visible; re-import the value to encrypt it.
 */
export function decryptBundle(stored: string, vaultKey: string | undefined): string {
  const text = stored.trimStart();
  const version = ANY_VAULT_PREFIX.exec(text);
  const key = vaultKey === '' ? undefined : vaultKey;
  if (version === null) {
    if (!text.startsWith('-----BEGIN')) {
      throw new VaultError('is neither a PEM bundle nor an edgelb vault value');
    }
    if (key !== undefined) throw new VaultError('not encrypted, but KONTENA_LB_VAULT_KEY is set (re-import it with `edgelb cert import` to encrypt it)');
    return stored;
  }
  if (text.slice(0, version[0].length) !== VAULT_PREFIX) {
    throw new VaultError(`encrypted with vault format ${version[1]}, which this edgelb does not read`);
  }
  if (key === undefined) throw new VaultError('encrypted, but KONTENA_LB_VAULT_KEY is not set');

  const body = text.slice(VAULT_PREFIX.length).trimEnd();
  if (!/^[A-Za-z0-9_-]*$/.test(body)) throw new VaultError('is not a valid vault value (not base64url)');
  const raw = Buffer.from(body, 'base64url');
  if (raw.length <= HEADER) throw new VaultError('is not a valid vault value (too short; truncated?)');

  const master = masterKey(key);
  const check = raw.subarray(0, KEY_CHECK);
  if (!timingSafeEqual(check, master.check)) throw new VaultError('encrypted with a different KONTENA_LB_VAULT_KEY');
  const salt = raw.subarray(KEY_CHECK, KEY_CHECK + SALT);
  const iv = raw.subarray(KEY_CHECK + SALT, KEY_CHECK + SALT + IV);
  const tag = raw.subarray(KEY_CHECK + SALT + IV, HEADER);
  const ciphertext = raw.subarray(HEADER);
  try {
    const decipher = createDecipheriv('aes-256-gcm', valueKey(master, salt), iv);
    decipher.setAAD(Buffer.from(VAULT_PREFIX, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch {
    // Node's message says nothing secret, but keep the reason ours and stable.
    throw new VaultError('does not decrypt: the value was altered or truncated (authentication failed)');
  }
}

/** Vault names: one path segment of letters, digits, '_', '.', '-'. */
export const VAULT_NAME = /^[A-Za-z0-9_.-]+$/;
const VAULT_DIR = KEY_PATHS.certs;

export function isValidVaultName(name: string): boolean {
  return VAULT_NAME.test(name) && name !== '.' && name !== '..';
}

export interface VaultCerts {
  readonly certs: RawCert[];
  /** Entries under certs/ that could not be used, with the reason (safe to log). */
  readonly rejected: { key: string; reason: string }[];
}

/**
 * The vault's bundles from an etcd snapshot (keys relative to the load balancer's path):
 * `certs/<name>`, decrypted. The bundles are not parsed here; parseBundle checks them.
 */
export function vaultCertsFromEntries(entries: ReadonlyMap<string, string>, vaultKey: string | undefined): VaultCerts {
  const certs: RawCert[] = [];
  const rejected: { key: string; reason: string }[] = [];
  const keys = [...entries.keys()].filter((k) => k.startsWith(VAULT_DIR)).sort();
  for (const key of keys) {
    const name = key.slice(VAULT_DIR.length);
    if (!isValidVaultName(name)) {
      rejected.push({ key, reason: `the name ${JSON.stringify(name)} is not valid (use letters, digits, '_', '.', '-', no '/')` });
      continue;
    }
    try {
      certs.push({ source: { kind: 'vault', ref: key }, pem: decryptBundle(entries.get(key)!, vaultKey) });
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
      rejected.push({ key, reason: error.message });
    }
  }
  return { certs, rejected };
}
