import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { CodedError } from '../errors.js';
import { nameWire } from './tsig.js';

/**
 * DNS over the wire for DNS-01: one exchange with one server, over UDP (TCP when the answer is
 * truncated) or over TCP, each with a deadline. Messages are dns-packet's; the records dns-packet
 * cannot encode (class NONE in an UPDATE) are built by `resourceRecord`.
 */

export interface DnsServer {
  readonly host: string;
  readonly port: number;
}

export type DnsFailureCode = 'dns-timeout' | 'dns-unreachable' | 'dns-bad-answer';

export class DnsError extends CodedError<DnsFailureCode> {}

export const CLASS_IN = 1;
export const CLASS_NONE = 254;
export const CLASS_ANY = 255;
export const TYPE_TXT = 16;

/** `host:port` (port 53 when left out; IPv6 in brackets). */
export function formatServer(server: DnsServer): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

/** A fresh random message id. */
export function messageId(): number {
  return randomInt(0, 0x10000);
}

/** One resource record in wire form (owner name uncompressed). */
export function resourceRecord(name: string, type: number, klass: number, ttl: number, rdata: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(klass, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([nameWire(name), fixed, rdata]);
}

/** TXT rdata: one character-string per 255 bytes. */
export function txtRdata(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length || at === 0; at += 255) {
    const chunk = bytes.subarray(at, at + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
    if (bytes.length === 0) break;
  }
  return Buffer.concat(parts);
}

/** Appends records to an encoded message's update (authority) section. */
export function withAuthorities(message: Buffer, records: readonly Buffer[]): Buffer {
  const head = Buffer.from(message);
  head.writeUInt16BE(head.readUInt16BE(8) + records.length, 8);
  return Buffer.concat([head, ...records]);
}

/** A query for `name`/`type`; `recursion` sets RD (a resolver recurses, an authoritative server ignores it). */
export function queryMessage(name: string, type: dnsPacket.RecordType, recursion: boolean): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: messageId(),
    flags: recursion ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [{ type, name: name.replace(/\.$/, ''), class: 'IN' }],
  });
}

/** Sends `message` to `server` and returns the answer with the same id; over TCP when the UDP answer is truncated. */
export async function exchange(server: DnsServer, message: Buffer, timeoutMs: number): Promise<Buffer> {
  const answer = await exchangeUdp(server, message, timeoutMs);
  if ((answer.readUInt16BE(2) & dnsPacket.TRUNCATED_RESPONSE) !== 0) return exchangeTcp(server, message, timeoutMs);
  return answer;
}

export function exchangeUdp(server: DnsServer, message: Buffer, timeoutMs: number): Promise<Buffer> {
  const id = message.readUInt16BE(0);
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    const done = (error: Error | undefined, answer?: Buffer) => {
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve(answer!);
    };
    const timer = setTimeout(() => done(new DnsError('dns-timeout', `no answer from ${formatServer(server)} within ${timeoutMs} ms (UDP)`)), timeoutMs);
    socket.on('error', (error) => done(new DnsError('dns-unreachable', `cannot reach ${formatServer(server)}: ${error.message}`, { cause: error })));
    socket.on('message', (answer) => {
      // Another id is a stray or forged datagram: keep waiting for ours.
      if (answer.length >= 12 && answer.readUInt16BE(0) === id) done(undefined, answer);
    });
    socket.send(message, server.port, server.host);
  });
}

export function exchangeTcp(server: DnsServer, message: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port });
    let received = Buffer.alloc(0);
    const done = (error: Error | undefined, answer?: Buffer) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(answer!);
    };
    const timer = setTimeout(() => done(new DnsError('dns-timeout', `no answer from ${formatServer(server)} within ${timeoutMs} ms (TCP)`)), timeoutMs);
    socket.on('error', (error) => done(new DnsError('dns-unreachable', `cannot reach ${formatServer(server)}: ${error.message}`, { cause: error })));
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(message.length);
      socket.write(Buffer.concat([length, message]));
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) done(undefined, received.subarray(2, 2 + received.readUInt16BE(0)));
    });
    socket.on('end', () => done(new DnsError('dns-bad-answer', `${formatServer(server)} closed the connection without a whole answer`)));
  });
}

/** Decodes an answer; a malformed one is a DnsError. */
export function decodeAnswer(server: DnsServer, answer: Buffer): dnsPacket.DecodedPacket {
  try {
    return dnsPacket.decode(answer);
  } catch (error) {
    throw new DnsError('dns-bad-answer', `unreadable answer from ${formatServer(server)}`, { cause: error });
  }
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

/** An answer's response code by name (`NOERROR`, `REFUSED`, `NOTAUTH`, ...). */
export function rcodeOf(answer: Buffer): string {
  const code = answer.readUInt16BE(2) & 0xf;
  return RCODES[code] ?? `RCODE ${code}`;
}

/** The TXT strings of `name` in an answer, each record's strings joined. */
export function txtValues(packet: dnsPacket.DecodedPacket, name: string): string[] {
  const wanted = name.replace(/\.$/, '').toLowerCase();
  return (packet.answers ?? []).flatMap((a) =>
    a.type === 'TXT' && a.name.toLowerCase() === wanted ? [(a.data as Buffer[]).map((b) => Buffer.from(b).toString('utf8')).join('')] : [],
  );
}

/** `host:port` or `host` (port 53), IPv6 as `[::1]:53`; undefined when unreadable. */
export function parseServer(raw: string, defaultPort = 53): DnsServer | undefined {
  const text = raw.trim();
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::([0-9]{1,5}))?$/.exec(text);
  const plain = /^([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$/.exec(text);
  const match = bracketed ?? plain;
  if (!match) return undefined;
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port < 1 || port > 65_535) return undefined;
  return { host: match[1]!, port };
}
