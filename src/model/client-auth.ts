import { EntryError } from './values.js';

/**
 * Validators of the keys that name CA bundles (issue 16's `client_ca`, `client_crl`; issue 15's
 * `backend_ca`) and of `client_verify`. A name is only a reference: the bundle itself is read from
 * `client-cas/<name>`, `client-crls/<name>`, `backend-cas/<name>` (tls/ca-bundles.ts) and the
 * reference resolved against them in pipeline/ca-resolution.ts, which closes a service whose
 * bundle is missing or invalid.
 */

/** A CA bundle's name: one path segment of letters, digits, '_', '.', '-' (as the vault's names); the key a service names and the bundle's key or file (tls/ca-bundles.ts). */
export const CA_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;
/** What CA_NAME allows, for error messages. */
export const CA_NAME_RULE = "1–128 letters, digits, '_', '.', '-', not starting with '.'";

/** What a service is served with while a name key is invalid: no bundle has it, so the service stays closed. */
export const CLOSED_CA_NAME = '';

/** `client_ca`, `client_crl`, `backend_ca`: a bundle name (`ops-ca`, `partners.2026`). */
export function parseCaName(raw: string, key = 'CA bundle'): string {
  const text = raw.trim();
  if (!CA_NAME.test(text)) throw new EntryError(`${key} ${JSON.stringify(raw)} is not a CA bundle name (${CA_NAME_RULE})`);
  return text;
}

/**
 * `client_verify`: `required` (no valid client certificate, no TLS session) or `optional` (a client
 * may send none; one it sends must be valid). `closed` is what an unknown value gives: the
 * service refuses every request rather than guessing which of the two was meant.
 */
export type ClientVerify = 'required' | 'optional' | 'closed';

export function parseClientVerify(raw: string, key = 'client_verify'): ClientVerify {
  const text = raw.trim();
  if (text !== 'required' && text !== 'optional') throw new EntryError(`${key} ${JSON.stringify(raw)} is not "required" or "optional"`);
  return text;
}
