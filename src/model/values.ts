import type { HostPattern, UpstreamAddress } from './types.js';

/**
 * Validators for single entry values. Each returns the parsed value or throws
 * an EntryError whose message is the reason logged next to the key.
 * They are deliberately strict: whatever passes is rendered into HAProxy's
 * config, so nothing here may carry a space, quote, '#', backslash or control
 * byte that could change the structure of a line.
 */
export class EntryError extends Error {}

export const LIMITS = Object.freeze({
  nameLength: 63,
  valueBytes: 64 * 1024,
  hostsPerService: 100,
  pathsPerService: 50,
  customSettingLines: 100,
  lineLength: 1024,
});

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// No quotes, '#', '?', spaces or backslashes: each of them means something to HAProxy's tokenizer.
const PATH = /^\/[A-Za-z0-9._~%!$&*+,;=:@/-]*$/;
// Bytes that would end or split an HAProxy config line, or be read as syntax by its tokenizer.
const UNSAFE_IN_LINE = /[\u0000-\u001f\u007f]/;

/** A service or instance name: becomes part of HAProxy backend and server names. */
export function parseName(raw: string, what: string): string {
  if (raw.length > LIMITS.nameLength) throw new EntryError(`${what} name longer than ${LIMITS.nameLength} characters`);
  if (!NAME.test(raw)) {
    throw new EntryError(`${what} name ${JSON.stringify(raw)} may only contain letters, digits, '-', '_' and '.'`);
  }
  return raw;
}

/** A host name per RFC 1123 (lower-cased), optionally `*.` followed by one. */
export function parseHostPattern(raw: string): HostPattern {
  const lower = raw.trim().toLowerCase();
  const wildcard = lower.startsWith('*.');
  const name = wildcard ? lower.slice(2) : lower;
  if (name.length === 0 || name.length > 253) throw new EntryError(`host ${JSON.stringify(raw)} is not a valid host name`);
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) {
    throw new EntryError(`host ${JSON.stringify(raw)} is not a valid host name (RFC 1123 labels, optional leading '*.')`);
  }
  return { name, wildcard };
}

export function parseHostList(raw: string): HostPattern[] {
  const hosts = splitList(raw).map(parseHostPattern);
  if (hosts.length > LIMITS.hostsPerService) throw new EntryError(`more than ${LIMITS.hostsPerService} hosts`);
  const seen = new Set<string>();
  return hosts.filter((h) => {
    const key = `${h.wildcard ? '*.' : ''}${h.name}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A path prefix: starts with '/', no spaces, quotes, '#', '?' or backslashes; trailing '/' dropped. */
function parsePathPrefix(raw: string): string {
  const path = raw.trim();
  if (!PATH.test(path) || path.length > LIMITS.lineLength) {
    throw new EntryError(`path ${JSON.stringify(raw)} must start with '/' and contain only URL path characters`);
  }
  if (path.includes('//')) throw new EntryError(`path ${JSON.stringify(raw)} contains an empty segment`);
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

export function parsePathList(raw: string): string[] {
  const paths = [...new Set(splitList(raw).map(parsePathPrefix))];
  if (paths.length > LIMITS.pathsPerService) throw new EntryError(`more than ${LIMITS.pathsPerService} paths`);
  return paths;
}

export function parsePort(raw: string, what = 'port'): number {
  const text = raw.trim();
  if (!/^[0-9]{1,5}$/.test(text)) throw new EntryError(`${what} ${JSON.stringify(raw)} is not a number`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new EntryError(`${what} ${port} is out of range 1-65535`);
  return port;
}

/** `host:port` or `[ipv6]:port`, the address of one instance. */
export function parseUpstream(name: string, raw: string): UpstreamAddress {
  const text = raw.trim();
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):([^:]*)$/.exec(text);
  if (!match) throw new EntryError(`upstream ${JSON.stringify(raw)} is not host:port`);
  const port = parsePort(match[3] ?? '', 'upstream port');
  if (match[1] !== undefined) return { name, host: `[${match[1]}]`, port };
  const host = match[2] ?? '';
  if (!isIpv4(host) && parseHostPattern(host).wildcard) {
    throw new EntryError(`upstream host ${JSON.stringify(host)} cannot be a wildcard`);
  }
  return { name, host: host.toLowerCase(), port };
}

const BALANCE = new Set(['roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'uri', 'random']);
const BALANCE_WITH_ARG = /^(?:url_param [A-Za-z0-9_.-]+|hdr\([A-Za-z0-9_-]+\)|rdp-cookie(?:\([A-Za-z0-9_-]+\))?|random\([0-9]+\))$/;

export function parseBalance(raw: string): string {
  const text = raw.trim();
  if (BALANCE.has(text) || BALANCE_WITH_ARG.test(text)) return text;
  throw new EntryError(`balance ${JSON.stringify(raw)} is not a supported algorithm (${[...BALANCE].join(', ')}, url_param <p>, hdr(<h>))`);
}

/** A max-age in seconds (HSTS): 0 to 2 years. */
export function parseMaxAge(raw: string): number {
  const text = raw.trim();
  if (!/^[0-9]{1,9}$/.test(text) || Number(text) > 63_072_000) {
    throw new EntryError(`hsts ${JSON.stringify(raw)} must be a max-age in seconds (0 to 63072000)`);
  }
  return Number(text);
}

export function parseBoolean(raw: string): boolean {
  const text = raw.trim().toLowerCase();
  if (text === 'true') return true;
  if (text === 'false' || text === '') return false;
  throw new EntryError(`${JSON.stringify(raw)} is not true or false`);
}

/** A single-line value such as a health check URI or a cookie line. */
function parseSingleLine(raw: string, what: string): string {
  const text = raw.trim();
  if (UNSAFE_IN_LINE.test(text)) throw new EntryError(`${what} contains a line break or control character`);
  if (text.length > LIMITS.lineLength) throw new EntryError(`${what} is longer than ${LIMITS.lineLength} characters`);
  return text;
}

export function parseHealthCheckUri(raw: string): string {
  const uri = parseSingleLine(raw, 'health_check_uri');
  if (!/^\/[A-Za-z0-9._~%!$&*+,;=:@/?-]*$/.test(uri)) {
    throw new EntryError(`health_check_uri ${JSON.stringify(raw)} must be a path starting with '/' without spaces or quotes`);
  }
  return uri;
}

/** The `cookie` key: empty means the load balancer's own cookie, otherwise a full `cookie ...` line. */
export function parseCookie(raw: string): string {
  const line = parseSingleLine(raw, 'cookie');
  if (line === '') return '';
  if (!/^cookie [A-Za-z0-9_.-]+( [A-Za-z0-9_.=-]+)*$/.test(line)) {
    throw new EntryError(`cookie ${JSON.stringify(raw)} must be empty or a line like "cookie NAME insert indirect nocache"`);
  }
  return line;
}

// Keywords that open a new section: a custom setting starting with one would move
// every following line of the service into a section the templates did not write.
const SECTION_KEYWORDS = new Set([
  'global',
  'defaults',
  'frontend',
  'backend',
  'listen',
  'userlist',
  'peers',
  'resolvers',
  'cache',
  'program',
  'http-errors',
  'ring',
  'mailers',
]);

/** Extra HAProxy lines (custom_settings, KONTENA_LB_*_SETTINGS): one directive per line, no new sections. */
export function parseSettingLines(raw: string, what: string): string[] {
  if (Buffer.byteLength(raw) > LIMITS.valueBytes) throw new EntryError(`${what} is larger than ${LIMITS.valueBytes} bytes`);
  const lines = raw
    .split('\n')
    .map((l) => l.replace(/\r$/, '').trim())
    .filter((l) => l !== '');
  if (lines.length > LIMITS.customSettingLines) throw new EntryError(`${what} has more than ${LIMITS.customSettingLines} lines`);
  for (const line of lines) {
    if (UNSAFE_IN_LINE.test(line)) throw new EntryError(`${what} contains a control character`);
    if (line.length > LIMITS.lineLength) throw new EntryError(`${what} has a line longer than ${LIMITS.lineLength} characters`);
    const keyword = line.split(/\s+/, 1)[0]?.toLowerCase() ?? '';
    if (SECTION_KEYWORDS.has(keyword)) throw new EntryError(`${what} may not open a new section ("${keyword}")`);
  }
  return lines;
}

// RFC 8555 section 8.3: the token is base64url; the key authorization is token "." thumbprint.
// Both end up in an HAProxy map file, so nothing else may reach it.
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const KEY_AUTHORIZATION = /^[A-Za-z0-9_.-]{1,600}$/;

/** An ACME HTTP-01 challenge token (`acme/challenges/<token>`, `ACME_CHALLENGE_<token>`). */
export function parseChallengeToken(token: string): string {
  if (!TOKEN.test(token)) throw new EntryError('ACME challenge token is not base64url');
  return token;
}

/** The value of a challenge token: its key authorization, `<token>.<thumbprint>`. */
export function parseKeyAuthorization(raw: string): string {
  const text = raw.trim();
  if (!KEY_AUTHORIZATION.test(text)) throw new EntryError('ACME key authorization is not "<token>.<thumbprint>"');
  return text;
}

function splitList(raw: string): string[] {
  if (Buffer.byteLength(raw) > LIMITS.valueBytes) throw new EntryError(`value is larger than ${LIMITS.valueBytes} bytes`);
  if (UNSAFE_IN_LINE.test(raw)) throw new EntryError('value contains a line break or control character');
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function isIpv4(host: string): boolean {
  const parts = host.split('.');
  return parts.length === 4 && parts.every((p) => /^[0-9]{1,3}$/.test(p) && Number(p) <= 255);
}
