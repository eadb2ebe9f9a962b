import { EntryError, LIMITS } from './values.js';

/**
 * cors_origins, cors_methods, cors_headers (HTTP services): the CORS answers HAProxy gives
 * itself (Fetch standard, "CORS protocol"). Each value ends up as words of an ACL or of a
 * header on an `http-request return` line, so only origins, method names and header names pass.
 */

/** `*` (any origin) or the exact origins allowed, lower-cased. */
export type CorsOrigins = { readonly any: true } | { readonly origins: readonly string[] };

export const MAX_ORIGINS = 100;

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;
// An origin as browsers send it (RFC 6454 7): scheme, host, and a port when not the default.
const ORIGIN = /^(https?):\/\/([^:/]+)(?::([0-9]{1,5}))?$/;
// RFC 7230 3.2.6 tokens, less the characters HAProxy's tokenizer reads as syntax ('#', '$', '%', "'").
const TOKEN = /^[A-Za-z0-9!&*+.^_`|~-]{1,64}$/;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

function listOf(raw: string, key: string): string[] {
  if (Buffer.byteLength(raw) > LIMITS.valueBytes) throw new EntryError(`${key} is larger than ${LIMITS.valueBytes} bytes`);
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw new EntryError(`${key} contains a line break or control character`);
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new EntryError(`${key} is empty`);
  return [...new Set(items)];
}

function parseOrigin(raw: string): string {
  const origin = raw.toLowerCase();
  const match = ORIGIN.exec(origin);
  const host = match?.[2] ?? '';
  const hostOk = IPV4.test(host) || (host.length <= 253 && host.split('.').every((l) => LABEL.test(l)));
  const port = match?.[3];
  if (!match || !hostOk || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
    throw new EntryError(`${JSON.stringify(raw)} is not an origin like https://app.example.com or http://localhost:3000`);
  }
  return origin;
}

export function parseCorsOrigins(raw: string, key: string): CorsOrigins {
  const items = listOf(raw, key);
  if (items.includes('*')) {
    if (items.length > 1) throw new EntryError(`${key}: "*" allows every origin and stands alone`);
    return { any: true };
  }
  if (items.length > MAX_ORIGINS) throw new EntryError(`${key} lists more than ${MAX_ORIGINS} origins`);
  return { origins: [...new Set(items.map(parseOrigin))] };
}

/** Methods a preflight may ask for, upper-cased. */
export function parseCorsMethods(raw: string, key: string): string[] {
  return listOf(raw, key).map((m) => {
    const method = m.toUpperCase();
    if (!METHODS.has(method)) throw new EntryError(`${key}: ${JSON.stringify(m)} is not one of ${[...METHODS].join(', ')}`);
    return method;
  });
}

/** Request header names a preflight may ask for. */
export function parseCorsHeaders(raw: string, key: string): string[] {
  const names = listOf(raw, key);
  if (names.length > 50) throw new EntryError(`${key} lists more than 50 headers`);
  for (const name of names) {
    if (!TOKEN.test(name)) throw new EntryError(`${key}: ${JSON.stringify(name)} is not a header name (letters, digits and !&*+.^_\`|~-)`);
  }
  return names;
}
