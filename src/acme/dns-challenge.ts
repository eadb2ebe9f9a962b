import type { Logger } from '../log.js';
import { challengeRecordName, type DnsPublisher, type DnsRecord } from './dns-publisher.js';
import { type PropagationOptions, waitPropagated } from './dns-propagation.js';
import { AcmeError } from './interruption.js';
import { pendingState, type PendingOrder } from './state.js';
import type { AcmeStorage } from './storage.js';

/** What a DNS-01 attempt needs: the publisher and how to wait for the record. */
export interface DnsSolver {
  readonly publisher: DnsPublisher;
  readonly propagation: PropagationOptions;
}

/** Records by `fqdn value`: the same record twice (a resumed order) is one. */
export type PublishedRecords = Map<string, DnsRecord>;

export function recordKey(record: DnsRecord): string {
  return `${record.fqdn} ${record.value}`;
}

/** The records a pending order (maybe another leader's) published and did not clean up. */
export function publishedRecordsOf(pending: PendingOrder | undefined): PublishedRecords {
  return new Map((pending?.records ?? []).map((r) => [recordKey(r), r]));
}

type Step = <T>(work: Promise<T>) => Promise<T>;

/**
 * Publishes the DNS-01 record for one authorization and waits until it is visible. The record
 * goes into the domain's pending state first, so whoever leads next can clean it up even if this
 * replica dies before it does.
 */
export async function publishDnsRecord(
  args: {
    readonly solver: DnsSolver | undefined;
    readonly storage: AcmeStorage;
    readonly domain: string;
    readonly identifier: string;
    /** The TXT value: acme-client's key authorization for a dns-01 challenge (base64url SHA-256). */
    readonly value: string;
    readonly records: PublishedRecords;
    readonly pending: () => PendingOrder;
    readonly now: () => Date;
    readonly signal: AbortSignal;
  },
  log: Logger,
  step: Step,
): Promise<void> {
  const { solver, storage, domain, records } = args;
  if (!solver) throw new AcmeError('no-dns-01-challenge', `${domain} needs DNS-01, and no DNS publisher is configured`);
  const record: DnsRecord = { fqdn: challengeRecordName(args.identifier), value: args.value };
  records.set(recordKey(record), record);
  await storage.write(log, [
    storage.statePut(pendingState(storage.states.get(domain), domain, { ...args.pending(), records: [...records.values()] }, args.now())),
  ]);
  const presenting = solver.publisher.present(record, log, args.signal);
  try {
    await step(presenting);
  } catch (error) {
    // An interrupted attempt gives up at once, but the record may still be on its way (an RFC 2136
    // update sent; a hook is killed by the signal): the cleanup that follows must come after it,
    // or it removes nothing and the record stays. Each publisher ends within its own timeouts.
    await presenting.catch(() => undefined);
    throw error;
  }
  log.info({ fqdn: record.fqdn, publisher: solver.publisher.describe }, 'ACME DNS record published');
  await step(waitPropagated(record, solver.propagation, log, args.signal));
}

/** Removes every record of the attempt; always runs (also when validation failed or the attempt was interrupted). */
export async function cleanUpRecords(solver: DnsSolver | undefined, records: PublishedRecords, log: Logger): Promise<boolean> {
  if (!solver || records.size === 0) return true;
  const count = records.size;
  let clean = true;
  for (const record of records.values()) {
    try {
      await solver.publisher.cleanup(record, log);
      records.delete(recordKey(record));
    } catch (error) {
      clean = false;
      log.warn({ fqdn: record.fqdn, err: (error as Error).message }, 'ACME: cannot remove the DNS-01 record; it is tried again by the next attempt');
    }
  }
  if (clean) log.info({ removed: count }, 'ACME DNS records removed');
  return clean;
}
