import dnsPacket from 'dns-packet';
import type { Logger } from '../log.js';
import type { DnsPublisher, DnsRecord } from './dns-publisher.js';
import {
  CLASS_IN,
  CLASS_NONE,
  decodeAnswer,
  type DnsServer,
  exchange,
  exchangeTcp,
  formatServer,
  messageId,
  queryMessage,
  rcodeOf,
  resourceRecord,
  TYPE_TXT,
  txtRdata,
  withAuthorities,
} from './dns-wire.js';
import { AcmeError } from './interruption.js';
import { signMessage, type TsigKey, verifyResponse } from './tsig.js';

export interface Rfc2136Options {
  /** The primary server that takes updates for the zone. */
  readonly server: DnsServer;
  readonly key: TsigKey;
  /** Per exchange (default 10 s). */
  readonly timeoutMs: number;
}

/** TTL of the challenge record: short, it lives for one validation. */
const RECORD_TTL = 60;
/** RFC 2136 §1: opcode UPDATE. */
const OPCODE_UPDATE = 5;

/**
 * DNS-01 through RFC 2136 dynamic updates signed with TSIG (BIND, Knot, PowerDNS, Windows DNS
 * with a key): `present` adds the TXT record, `cleanup` deletes that one record (class NONE,
 * §2.5.4), so another value at the same name (a wildcard and its base name share it) stays. The
 * zone is the one the server names in its SOA answer for the record. Updates go over TCP, and
 * the server's signed answer is checked.
 */
export class Rfc2136Publisher implements DnsPublisher {
  readonly describe: string;

  constructor(private readonly options: Rfc2136Options) {
    this.describe = `RFC 2136 to ${formatServer(options.server)} (key ${options.key.name}, ${options.key.algorithm})`;
  }

  async present(record: DnsRecord, log: Logger): Promise<void> {
    await this.update(record, 'add', log);
  }

  async cleanup(record: DnsRecord, log: Logger): Promise<void> {
    await this.update(record, 'delete', log);
  }

  /** The zone holding `fqdn`, from the server's own SOA answer (or the SOA in its authority section). */
  async zoneOf(fqdn: string): Promise<string> {
    const { server, timeoutMs } = this.options;
    const raw = await exchange(server, queryMessage(fqdn, 'SOA', false), timeoutMs);
    const answer = decodeAnswer(server, raw);
    const soa = [...(answer.answers ?? []), ...(answer.authorities ?? [])].find((r) => r.type === 'SOA');
    if (!soa) throw new AcmeError('dns-update-failed', `${formatServer(server)} is not authoritative for ${fqdn} (no SOA in its answer, ${rcodeOf(raw)})`);
    return soa.name;
  }

  private async update(record: DnsRecord, action: 'add' | 'delete', log: Logger): Promise<void> {
    const { server, key, timeoutMs } = this.options;
    const started = Date.now();
    const zone = await this.zoneOf(record.fqdn);
    const head = dnsPacket.encode({
      type: 'query',
      id: messageId(),
      flags: OPCODE_UPDATE << 11,
      questions: [{ type: 'SOA', name: zone, class: 'IN' }],
    });
    const rr = resourceRecord(record.fqdn, TYPE_TXT, action === 'add' ? CLASS_IN : CLASS_NONE, action === 'add' ? RECORD_TTL : 0, txtRdata(record.value));
    const signed = signMessage(withAuthorities(head, [rr]), key);
    const answer = await exchangeTcp(server, signed.message, timeoutMs);
    const rcode = rcodeOf(answer);
    const unsigned = verifyResponse(answer, key, signed.mac);
    if (rcode !== 'NOERROR') {
      throw new AcmeError(
        'dns-update-failed',
        `${formatServer(server)} refused the update of ${record.fqdn} in zone ${zone}: ${rcode}${unsigned ? ` (${unsigned})` : ''}`,
      );
    }
    if (unsigned) throw new AcmeError('dns-update-failed', `${formatServer(server)} answered the update of ${record.fqdn}, but ${unsigned}`);
    log.info({ action, fqdn: record.fqdn, zone, server: formatServer(server), tookMs: Date.now() - started }, 'ACME DNS record updated (RFC 2136)');
  }
}
