import { HEADER_NAME } from './header-rules.js';
import { EntryError, LIMITS, parseHostPattern } from './values.js';

/**
 * cors_origins, cors_methods, cors_headers (HTTP services): the CORS answers HAProxy gives
 * itself (Fetch standard, "CORS protocol"). Each value ends up as words of an ACL or of a
 * header on an `http-request return` line, so only origins, method names and header names pass.
 */

/** `*` (any origin) or the exact origins allowed, lower-cased. */
export type CorsOrigins = { readonly any: true } | { readonly origins: readonly string[] };

export const MAX_ORIGINS = 100;

// An origin as browsers send it (RFC 6454 7): scheme, host, and a port when not the default.
const ORIGIN = /^(https?):\/\/([a-z0-9.-]+)(?::([0-9]{1,5}))?$/;
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
  const hostOk = match !== null && isPlainHost(match[2]!);
  const port = match?.[3];
  if (!match || !hostOk || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
    throw new EntryError(`${JSON.stringify(raw)} is not an origin like https://app.example.com or http://localhost:3000`);
  }
  return origin;
}

/** An RFC 1123 host name (an IPv4 address is one too), not a `*.` pattern. */
function isPlainHost(host: string): boolean {
  try {
    return !parseHostPattern(host).wildcard;
  } catch (error) {
    if (error instanceof EntryError) return false;
    throw error;
  }
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
    if (!HEADER_NAME.test(name)) throw new EntryError(`${key}: ${JSON.stringify(name)} is not a header name (letters, digits and !&*+.^_\`|~-)`);
  }
  return names;
}
