import type { Logger } from '../log.js';

/**
 * Publishing the DNS-01 TXT record: `_acme-challenge.<name>. TXT "<value>"`, where `<value>`
 * is the base64url SHA-256 of the key authorization. Two implementations, chosen by settings:
 * an executable hook (dns-hook.ts, lego's exec convention) and RFC 2136 dynamic updates
 * (rfc2136.ts). Only the ACME leader calls them, and `cleanup` always follows `present`.
 */
export interface DnsRecord {
  /** Fully qualified, with the trailing dot: `_acme-challenge.example.com.`. */
  readonly fqdn: string;
  readonly value: string;
}

export interface DnsPublisher {
  /** What it is, for logs (`hook /usr/local/bin/dns-hook`, `RFC 2136 to 10.0.0.53:53`); never a secret. */
  readonly describe: string;
  /** Adds the record (another value at the same name stays: a wildcard and its base name share it). */
  present(record: DnsRecord, log: Logger, signal: AbortSignal): Promise<void>;
  /** Removes exactly this record. */
  cleanup(record: DnsRecord, log: Logger): Promise<void>;
}

/** The record name the CA looks up for `identifier` (a wildcard's identifier is its base name). */
export function challengeRecordName(identifier: string): string {
  return `_acme-challenge.${identifier.replace(/^\*\./, '').replace(/\.$/, '')}.`;
}
