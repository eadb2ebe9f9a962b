import { isIPv6 } from 'node:net';
import { EntryError, LIMITS } from './values.js';

/**
 * ip_allow, ip_deny and KONTENA_LB_TRUSTED_PROXIES: lists of client addresses and CIDRs. Each
 * entry reaches an HAProxy `src` ACL pattern (configuration manual 2.6, 7.1.6 "Matching IPv4
 * and IPv6 addresses"), so only the characters of an address and its prefix length pass: no
 * zone index (`%eth0`), no host name (it would be resolved once, at startup).
 */

/** An address list as a service is served with it; `closed`: the key could not be used, nobody gets in. */
export type AddressList = { readonly addresses: readonly string[] } | { readonly closed: true };

/** What an unusable ip_allow or ip_deny turns into: a service closed to every client rather than left open. */
export const CLOSED_LIST: AddressList = Object.freeze({ closed: true as const });

/** At most this many entries in one list: a longer one belongs in a firewall. */
export const MAX_ADDRESSES = 500;

const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;
const IPV6_CHARS = /^[0-9a-f:.]+$/;

/** One IPv4 or IPv6 address, optionally `/<prefix length>`; lower-cased. */
export function parseAddress(raw: string): string {
  const text = raw.trim().toLowerCase();
  const [address = '', prefix, ...extra] = text.split('/');
  const v4 = IPV4.test(address);
  const v6 = !v4 && IPV6_CHARS.test(address) && isIPv6(address);
  const max = v4 ? 32 : 128;
  const prefixOk = prefix === undefined || (/^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= max);
  if (!(v4 || v6) || !prefixOk || extra.length > 0) {
    throw new EntryError(`${JSON.stringify(raw)} is not an IPv4 or IPv6 address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)`);
  }
  return text;
}

/** Comma-separated addresses and CIDRs, duplicates dropped; at least one. */
export function parseAddresses(raw: string, what: string): string[] {
  if (Buffer.byteLength(raw) > LIMITS.valueBytes) throw new EntryError(`${what} is larger than ${LIMITS.valueBytes} bytes`);
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw new EntryError(`${what} contains a line break or control character`);
  const entries = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (entries.length === 0) throw new EntryError(`${what} lists no address`);
  if (entries.length > MAX_ADDRESSES) throw new EntryError(`${what} lists more than ${MAX_ADDRESSES} addresses`);
  return [...new Set(entries.map(parseAddress))];
}

/** The `ip_allow` / `ip_deny` keys: a list that names nobody is refused (for ip_allow it would close the service silently). */
export function parseAddressList(raw: string, key: string): AddressList {
  return { addresses: parseAddresses(raw, key) };
}
