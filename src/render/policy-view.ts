import { aclLineChunks } from './acl-lines.js';
import type { AddressList } from '../model/address-list.js';
import type { CorsOrigins } from '../model/cors.js';
import type { HeaderRule } from '../model/header-rules.js';
import type { HttpService } from '../model/types.js';

/**
 * The views of a service's access and header policies (issue 15): what http-backend.hbs and
 * tcp-service.hbs read to write them. Built from the service's validated fields only.
 */

/** ip_allow and ip_deny as ACL lines; `closed` when either could not be used. Undefined: no rule. */
export function accessView(service: { readonly ipAllow: AddressList | undefined; readonly ipDeny: AddressList | undefined }) {
  const { ipAllow, ipDeny } = service;
  if (ipAllow === undefined && ipDeny === undefined) return undefined;
  if ((ipAllow && 'closed' in ipAllow) || (ipDeny && 'closed' in ipDeny)) return { closed: true, allow: [], deny: [] };
  return {
    closed: false,
    allow: ipAllow && 'addresses' in ipAllow ? aclLineChunks(ipAllow.addresses) : [],
    deny: ipDeny && 'addresses' in ipDeny ? aclLineChunks(ipDeny.addresses) : [],
  };
}

/**
 * request_headers, response_headers. The value goes between single quotes, where HAProxy's
 * tokenizer reads it literally; it is then a log-format string (configuration manual 2.6,
 * 8.2.4), where only `%` means something: doubled, it is a literal `%`.
 */
export function headerRulesView(rules: readonly HeaderRule[]) {
  return rules.map((rule) => ({ action: rule.action, name: rule.name, quoted: rule.value?.replaceAll('%', '%%') }));
}

/** cors_origins (with cors_methods, cors_headers): undefined when the service answers no CORS. */
export function corsView(service: {
  readonly corsOrigins: CorsOrigins | undefined;
  readonly corsMethods: readonly string[];
  readonly corsHeaders: readonly string[];
}) {
  const { corsOrigins } = service;
  if (corsOrigins === undefined) return undefined;
  return {
    any: 'any' in corsOrigins,
    origins: 'origins' in corsOrigins ? aclLineChunks(corsOrigins.origins) : [],
    // One word each: a list separated by commas alone is a valid header value (RFC 7230 7).
    methods: service.corsMethods.join(','),
    headers: service.corsHeaders.join(','),
  };
}

/** Everything of an HTTP service's policies that http-backend.hbs reads: one spread in its view. */
export function httpPoliciesView(service: HttpService) {
  return {
    access: accessView(service),
    cors: corsView(service),
    requestHeaders: headerRulesView(service.requestHeaders),
    responseHeaders: headerRulesView(service.responseHeaders),
    compression: service.compression,
    clientTls: clientTlsView(service),
  };
}

/**
 * client_ca (issue 16) as the backend checks it, or the service closed because a CA bundle it
 * names could not be used (403; 503 for backend_ca). Undefined: the service names no bundle.
 */
export function clientTlsView(service: HttpService) {
  const files = service.caFiles;
  if (files === undefined) return undefined;
  if (files.closed) return { closedStatus: files.closed.status };
  if (files.clientCa === undefined) return undefined;
  const others = files.otherChecks;
  return {
    client: { required: service.clientVerify !== 'optional' },
    ...(others ? { otherChecks: { exact: aclLineChunks(others.exact), suffixes: aclLineChunks(others.suffixes) } } : {}),
  };
}
