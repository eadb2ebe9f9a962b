import type { ValidationError } from '../haproxy/validate.js';

/** Services named like `http:web` or `tcp:db`, the same keys as diffStates uses. */
export interface Attribution {
  readonly services: ReadonlyMap<string, readonly string[]>;
  /** Errors outside any service: global, defaults, or the shared frontend. */
  readonly unattributed: readonly string[];
}

/**
 * Maps `haproxy -c` errors back to the services whose lines caused them, using the names
 * the template gives things: backend `http-<service>`, listen `tcp-<service>`, and the
 * frontend ACLs `host_<service>`, `hostwild_<service>`, `path<n>_<service>`.
 */
export function attributeErrors(configText: string, errors: readonly ValidationError[]): Attribution {
  const lines = configText.split('\n');
  const services = new Map<string, string[]>();
  const unattributed: string[] = [];
  for (const error of errors) {
    const service = error.line !== undefined ? serviceAtLine(lines, error.line) : serviceInMessage(error.message);
    if (service) services.set(service, [...(services.get(service) ?? []), error.message]);
    else unattributed.push(error.message);
  }
  return { services, unattributed };
}

function serviceAtLine(lines: readonly string[], lineNumber: number): string | undefined {
  const acl = /^\s*acl (?:host|hostwild|path\d+)_(\S+) /.exec(lines[lineNumber - 1] ?? '');
  if (acl?.[1]) return `http:${acl[1]}`;
  for (let i = Math.min(lineNumber, lines.length) - 1; i >= 0; i--) {
    const header = /^(global|defaults|frontend|backend|listen|userlist)\b\s*(\S*)/.exec(lines[i] ?? '');
    if (header) return proxyToService(header[2] ?? '');
  }
  return undefined;
}

function serviceInMessage(message: string): string | undefined {
  const named = /(?:proxy|backend|listen) '([^'/]+)'|'server ([^'/]+)\//i.exec(message);
  return proxyToService(named?.[1] ?? named?.[2] ?? '');
}

function proxyToService(proxy: string): string | undefined {
  const match = /^(http|tcp)-(.+)$/.exec(proxy);
  if (match) return `${match[1]}:${match[2]}`;
  // A service's basic-auth users are its userlist auth-<service> (render/view.ts userlistName).
  const userlist = /^auth-(.+)$/.exec(proxy);
  return userlist ? `http:${userlist[1]}` : undefined;
}
