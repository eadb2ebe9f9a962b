import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from './config-error.js';

// SYSLOG_TARGET holds the arguments of an HAProxy `log` line, as the Kontena image pasted it
// after `log`. edgelb reads it into typed fields and the template writes the line from them,
// so nothing the variable holds reaches the config as text. Syntax: configuration manual 2.6,
// section 3.1 "log" and section 11 "Address formats".

export const SYSLOG_FACILITIES = [
  'kern',
  'user',
  'mail',
  'daemon',
  'auth',
  'syslog',
  'lpr',
  'news',
  'uucp',
  'cron',
  'auth2',
  'ftp',
  'ntp',
  'audit',
  'alert',
  'cron2',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
] as const;
export const SYSLOG_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;
export const SYSLOG_FORMATS = ['local', 'rfc3164', 'rfc5424', 'priority', 'short', 'timed', 'iso', 'raw'] as const;
/** Protocol prefixes HAProxy 2.6 accepts on a log address: UDP (the default) or TCP, either family or one. */
export const SYSLOG_PROTOCOLS = ['udp', 'udp4', 'udp6', 'tcp', 'tcp4', 'tcp6'] as const;

export type SyslogFacility = (typeof SYSLOG_FACILITIES)[number];
export type SyslogLevel = (typeof SYSLOG_LEVELS)[number];

export interface SyslogTarget {
  /** `udp@`, `tcp6@`, ...; absent: HAProxy's default, syslog over UDP. */
  readonly protocol?: (typeof SYSLOG_PROTOCOLS)[number];
  /** An IPv4 or IPv6 address (no brackets), or a host name HAProxy resolves when it loads the config. */
  readonly host: string;
  readonly ipv6: boolean;
  readonly port: number;
  /** `len`: the longest line sent (80-65535). */
  readonly length?: number;
  readonly format?: (typeof SYSLOG_FORMATS)[number];
  readonly facility: SyslogFacility;
  /** Only messages at least this severe are sent; absent: all of them. */
  readonly level?: SyslogLevel;
  /** More severe messages are sent at this level. */
  readonly minLevel?: SyslogLevel;
}

const DEFAULT_PORT = 514;
// The Kontena image's default target was `127.0.0.1 local1 info`: a bare address keeps that facility and level.
const BARE_ADDRESS_DEFAULTS = { facility: 'local1', level: 'info' } as const;
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const USAGE = 'an address and optionally a facility and levels, like "10.0.0.5:514 local0 info" or "udp@syslog.example.com"';

/** `[udp@|tcp@...]<address>[:port] [len <n>] [format <f>] [<facility> [<level> [<minlevel>]]]`. */
export function parseSyslogTarget(raw: string): SyslogTarget {
  const words = raw.trim().split(/[ \t]+/);
  const address = parseAddress(words.shift() ?? '');
  let length: number | undefined;
  let format: SyslogTarget['format'];
  // HAProxy reads `len` before `format`, and both before the facility.
  if (words[0] === 'len') {
    words.shift();
    length = lineLength(words.shift());
  }
  if (words[0] === 'format') {
    words.shift();
    format = oneOf(words.shift(), SYSLOG_FORMATS, 'format');
  }
  if (words.length === 0) return { ...address, length, format, ...BARE_ADDRESS_DEFAULTS };
  if (words.length > 3) fail(`has more words than an address, a facility and two levels (${words.length} after the address)`);
  const [facility, level, minLevel] = words;
  return {
    ...address,
    length,
    format,
    facility: oneOf(facility, SYSLOG_FACILITIES, 'facility'),
    level: level === undefined ? undefined : oneOf(level, SYSLOG_LEVELS, 'level'),
    minLevel: minLevel === undefined ? undefined : oneOf(minLevel, SYSLOG_LEVELS, 'minimum level'),
  };
}

function parseAddress(text: string): Pick<SyslogTarget, 'protocol' | 'host' | 'ipv6' | 'port'> {
  const prefixed = /^([a-z0-9]+)@(.*)$/.exec(text);
  const protocol = prefixed ? oneOf(prefixed[1], SYSLOG_PROTOCOLS, 'address prefix') : undefined;
  const rest = prefixed ? prefixed[2]! : text;
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    [, host = '', portText] = bracketed;
  } else if (rest.split(':').length > 2) {
    // Unbracketed IPv6: HAProxy takes what follows the last colon as the port, as the Kontena image did.
    host = rest.slice(0, rest.lastIndexOf(':'));
    portText = rest.slice(rest.lastIndexOf(':') + 1);
  } else {
    [host = '', portText] = rest.split(':');
  }
  // Plain IPv6 only: a zone id (`%eth0`) would be the only way for other characters in.
  const ipv6 = /^[0-9A-Fa-f:.]+$/.test(host) && isIPv6(host);
  const lower = host.toLowerCase();
  if (!ipv6 && !isIPv4(host) && !HOST_NAME.test(lower)) {
    fail(`must start with an IPv4 address, an IPv6 address in brackets or a host name, optionally with :port (${USAGE}), got ${JSON.stringify(text)}`);
  }
  if (bracketed && !ipv6) fail(`has brackets around something that is not an IPv6 address: ${JSON.stringify(text)}`);
  if (protocol?.endsWith('4') && ipv6) fail(`uses ${protocol}@ (IPv4 only) with an IPv6 address`);
  if (protocol?.endsWith('6') && isIPv4(host)) fail(`uses ${protocol}@ (IPv6 only) with an IPv4 address`);
  return { protocol, host: ipv6 ? host : lower, ipv6, port: port(portText) };
}

function port(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_PORT;
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535)
    fail(`has a port that is not a number between 1 and 65535: ${JSON.stringify(text)}`);
  return Number(text);
}

function lineLength(text: string | undefined): number {
  if (text === undefined || !/^[0-9]{2,5}$/.test(text) || Number(text) < 80 || Number(text) > 65535) {
    fail(`len must be followed by a line length between 80 and 65535, got ${JSON.stringify(text ?? '')}`);
  }
  return Number(text);
}

function oneOf<T extends string>(word: string | undefined, allowed: readonly T[], what: string): T {
  if (word !== undefined && (allowed as readonly string[]).includes(word)) return word as T;
  return fail(`${what} must be one of ${allowed.join(', ')}, got ${JSON.stringify(word ?? '')}`);
}

function fail(problem: string): never {
  throw new ConfigError(`SYSLOG_TARGET ${problem}`);
}
