import { EntryError, LIMITS } from './values.js';

/**
 * request_headers, response_headers: one `set <Name> <value>`, `add <Name> <value>` or
 * `del <Name>` per line, for HAProxy's `http-request`/`http-response` `set-header`, `add-header`
 * and `del-header` (configuration manual 2.6, 4.2). The name is written as one word and the
 * value between single quotes, where HAProxy's tokenizer reads nothing but the closing quote
 * (2.2 "Quoting and escaping"); the value is then a log-format string (8.2.4), where `%` starts
 * a sample expression, so the view doubles every `%` and the value is sent as written.
 */

export interface HeaderRule {
  readonly action: 'set' | 'add' | 'del';
  readonly name: string;
  /** As written (set, add); the view escapes it for the log-format string. */
  readonly value?: string;
}

export const MAX_HEADER_RULES = 50;

/** A header name: RFC 7230 3.2.6 token characters, less '#', '$', '%' and "'" (HAProxy's tokenizer reads them as syntax). */
export const HEADER_NAME = /^[A-Za-z0-9!&*+.^_`|~-]{1,64}$/;
// Printable ASCII and spaces (RFC 7230 field-content without obs-text), less "'" and '\'.
const VALUE = /^[\u0020-\u0026\u0028-\u005b\u005d-\u007e]*$/;
const LINE = /^(set|add|del)[ \t]+(\S+)(?:[ \t]+(.*))?$/;

/**
 * Headers whose meaning HAProxy keeps for itself (message framing, the connection, the protocol
 * switch): rewriting them could desynchronize HAProxy and the server about where a message ends.
 */
const RESERVED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);

/**
 * The client certificate's result (client_ca): edgelb deletes these from every request and sets
 * them itself, so a service may not write them either (nor their `_` spelling, which CGI-style
 * servers read as the same header).
 */
const CLIENT_CERT_HEADER = /^x[-_]ssl[-_]client[-_]/i;

export function parseHeaderRules(raw: string, key: string): HeaderRule[] {
  if (Buffer.byteLength(raw) > LIMITS.valueBytes) throw new EntryError(`${key} is larger than ${LIMITS.valueBytes} bytes`);
  const lines = raw
    .split('\n')
    .map((l) => l.replace(/\r$/, '').trim())
    .filter((l) => l !== '');
  if (lines.length > MAX_HEADER_RULES) throw new EntryError(`${key} has more than ${MAX_HEADER_RULES} lines`);
  return lines.map((line, i) => parseRule(line, `${key} line ${i + 1}`));
}

function parseRule(line: string, where: string): HeaderRule {
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(line)) throw new EntryError(`${where} contains a control character`);
  if (line.length > LIMITS.lineLength) throw new EntryError(`${where} is longer than ${LIMITS.lineLength} characters`);
  const match = LINE.exec(line);
  if (!match) throw new EntryError(`${where} is not "set <Name> <value>", "add <Name> <value>" or "del <Name>"`);
  const action = match[1] as HeaderRule['action'];
  const name = match[2]!;
  const value = match[3]?.trim();
  if (!HEADER_NAME.test(name)) {
    throw new EntryError(`${where}: header name ${JSON.stringify(name)} may only contain letters, digits and !&*+.^_\`|~- (at most 64)`);
  }
  if (RESERVED.has(name.toLowerCase())) throw new EntryError(`${where}: ${name} is HAProxy's to manage and cannot be changed`);
  if (CLIENT_CERT_HEADER.test(name)) throw new EntryError(`${where}: ${name} carries the client certificate's check (client_ca) and is set by edgelb only`);
  if (action === 'del') {
    if (value) throw new EntryError(`${where}: del takes a header name only`);
    return { action, name };
  }
  if (!value) throw new EntryError(`${where}: ${action} needs a value`);
  if (!VALUE.test(value)) {
    throw new EntryError(`${where}: the value may only contain printable ASCII without "'" or '\\' (no tabs or control characters)`);
  }
  return { action, name, value };
}
