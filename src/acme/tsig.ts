import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * TSIG (RFC 8945): signs a DNS message with a shared secret, and checks the server's signed
 * answer. dns-packet has no TSIG record type, so the record is encoded here by hand; the wire
 * names are in canonical form (lower case, never compressed), as §4.3.1 requires for the MAC.
 */

/** The algorithms edgelb signs with, by their names in settings and their wire names. */
export const TSIG_ALGORITHMS = { 'hmac-sha256': 'sha256', 'hmac-sha1': 'sha1', 'hmac-sha512': 'sha512' } as const;
export type TsigAlgorithm = keyof typeof TSIG_ALGORITHMS;

export interface TsigKey {
  /** The key's name, as in the server's `key "<name>"` statement. */
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  /** The decoded secret (the base64 text of `secret "..."`, decoded). */
  readonly secret: Buffer;
}

/** Seconds either side of the signing time the server accepts (RFC 8945 recommends 300). */
const FUDGE_SECONDS = 300;
const TYPE_TSIG = 250;
const CLASS_ANY = 255;
/** TSIG error field values (RFC 8945 §4.3.3 / IANA), by the names BIND logs. */
const TSIG_ERRORS: Readonly<Record<number, string>> = { 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME', 22: 'BADTRUNC' };

/** A name in uncompressed wire form, lower case: `example.com` → 7example3com0. */
export function nameWire(name: string): Buffer {
  const labels = name
    .toLowerCase()
    .replace(/\.$/, '')
    .split('.')
    .filter((l) => l !== '');
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'ascii');
    if (bytes.length > 63) throw new Error(`DNS label too long in ${name}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

function u48(value: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(value, 0, 6);
  return b;
}

/** The TSIG variables of §4.3.3 that follow the message in the MAC. */
function variables(key: TsigKey, timeSigned: number, fudge: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([
    nameWire(key.name),
    u16(CLASS_ANY),
    Buffer.alloc(4), // TTL 0
    nameWire(key.algorithm),
    u48(timeSigned),
    u16(fudge),
    u16(error),
    u16(other.length),
    other,
  ]);
}

function hmac(key: TsigKey, ...parts: Buffer[]): Buffer {
  const mac = createHmac(TSIG_ALGORITHMS[key.algorithm], key.secret);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** The MAC of a request `message` (without its TSIG record), as the server computes it. */
export function requestMac(message: Buffer, key: TsigKey, timeSigned: number, fudge = FUDGE_SECONDS): Buffer {
  return hmac(key, message, variables(key, timeSigned, fudge, 0, Buffer.alloc(0)));
}

export interface Signed {
  /** The message with its TSIG record appended (ARCOUNT one more). */
  readonly message: Buffer;
  /** The request's MAC: the server's signed answer covers it. */
  readonly mac: Buffer;
}

/** Appends a TSIG record to `message` (an encoded DNS message), signed at `timeSigned` (seconds since the epoch). */
export function signMessage(message: Buffer, key: TsigKey, timeSigned = Math.floor(Date.now() / 1000)): Signed {
  const mac = requestMac(message, key, timeSigned);
  const rdata = Buffer.concat([
    nameWire(key.algorithm),
    u48(timeSigned),
    u16(FUDGE_SECONDS),
    u16(mac.length),
    mac,
    message.subarray(0, 2), // original ID
    u16(0), // error
    u16(0), // other length
  ]);
  const record = Buffer.concat([nameWire(key.name), u16(TYPE_TSIG), u16(CLASS_ANY), Buffer.alloc(4), u16(rdata.length), rdata]);
  const head = Buffer.from(message);
  head.writeUInt16BE(head.readUInt16BE(10) + 1, 10);
  return { message: Buffer.concat([head, record]), mac };
}

/** The fields of a message's TSIG record, and the message without it. */
export interface TsigRecord {
  readonly unsigned: Buffer;
  readonly algorithm: string;
  readonly timeSigned: number;
  readonly fudge: number;
  readonly mac: Buffer;
  readonly originalId: number;
  readonly error: number;
  readonly other: Buffer;
}

/** The TSIG record ending `message` (the last additional record), or undefined when it has none. */
export function readTsig(message: Buffer): TsigRecord | undefined {
  const arcount = message.readUInt16BE(10);
  if (arcount === 0) return undefined;
  const starts = recordStarts(message);
  const start = starts.at(-1);
  if (start === undefined) return undefined;
  let at = skipName(message, start);
  if (message.readUInt16BE(at) !== TYPE_TSIG) return undefined;
  at += 10; // type, class, ttl, rdlength
  const algorithmEnd = skipName(message, at);
  const algorithm = readName(message, at);
  at = algorithmEnd;
  const timeSigned = message.readUIntBE(at, 6);
  const fudge = message.readUInt16BE(at + 6);
  const macSize = message.readUInt16BE(at + 8);
  at += 10;
  const mac = message.subarray(at, at + macSize);
  at += macSize;
  const originalId = message.readUInt16BE(at);
  const error = message.readUInt16BE(at + 2);
  const otherLength = message.readUInt16BE(at + 4);
  const other = message.subarray(at + 6, at + 6 + otherLength);
  const unsigned = Buffer.from(message.subarray(0, start));
  unsigned.writeUInt16BE(arcount - 1, 10);
  unsigned.writeUInt16BE(originalId, 0);
  return { unsigned, algorithm, timeSigned, fudge, mac, originalId, error, other };
}

/**
 * Checks the server's answer to a request signed with `requestMac` (§5.3): its MAC covers the
 * request's MAC, the answer without its TSIG record, and the TSIG variables. Returns a reason when
 * it is not properly signed, undefined when it is.
 */
export function verifyResponse(response: Buffer, key: TsigKey, requestMacValue: Buffer, now = Math.floor(Date.now() / 1000)): string | undefined {
  const tsig = readTsig(response);
  if (!tsig) return 'the answer is not signed';
  if (tsig.error !== 0) return `the server refused the signature: ${TSIG_ERRORS[tsig.error] ?? `TSIG error ${tsig.error}`}`;
  if (tsig.algorithm !== key.algorithm) return `the answer is signed with ${tsig.algorithm}, not ${key.algorithm}`;
  const expected = hmac(key, u16(requestMacValue.length), requestMacValue, tsig.unsigned, variables(key, tsig.timeSigned, tsig.fudge, tsig.error, tsig.other));
  if (tsig.mac.length !== expected.length || !timingSafeEqual(tsig.mac, expected)) return "the answer's signature does not match (wrong secret?)";
  if (Math.abs(now - tsig.timeSigned) > tsig.fudge) return 'the answer was signed too far from our clock (BADTIME)';
  return undefined;
}

/** Offsets where each resource record (after the questions) starts. */
function recordStarts(message: Buffer): number[] {
  const counts = [4, 6, 8, 10].map((offset) => message.readUInt16BE(offset));
  let at = 12;
  for (let q = 0; q < counts[0]!; q++) at = skipName(message, at) + 4;
  const starts: number[] = [];
  const records = counts[1]! + counts[2]! + counts[3]!;
  for (let r = 0; r < records; r++) {
    starts.push(at);
    at = skipName(message, at);
    at += 10 + message.readUInt16BE(at + 8);
  }
  if (at > message.length) throw new Error('truncated DNS message');
  return starts;
}

/** The offset after the name at `at` (labels, or a compression pointer). */
function skipName(message: Buffer, at: number): number {
  for (;;) {
    const length = message[at];
    if (length === undefined) throw new Error('truncated DNS name');
    if (length === 0) return at + 1;
    if ((length & 0xc0) === 0xc0) return at + 2;
    at += length + 1;
  }
}

/** An uncompressed name at `at`, without the trailing dot. */
function readName(message: Buffer, at: number): string {
  const labels: string[] = [];
  for (;;) {
    const length = message[at] ?? 0;
    if (length === 0 || (length & 0xc0) === 0xc0) return labels.join('.').toLowerCase();
    labels.push(message.toString('ascii', at + 1, at + 1 + length));
    at += length + 1;
  }
}
