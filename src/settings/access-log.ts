import { ConfigError } from './config-error.js';

/**
 * KONTENA_LB_ACCESS_LOG: what HAProxy writes for each request (HTTP) or connection (TCP
 * services) on edgelb's standard output. `text`: HAProxy's own `option httplog` / `option
 * tcplog` lines; `json`: one JSON object per line, built by HAProxy's log-format (see
 * templates/access-log.hbs); `off`: no access log at all. The templates decide the lines.
 */
export const ACCESS_LOG_FORMATS = ['text', 'json', 'off'] as const;
export type AccessLogFormat = (typeof ACCESS_LOG_FORMATS)[number];
export const DEFAULT_ACCESS_LOG: AccessLogFormat = 'text';

export function parseAccessLog(raw: string): AccessLogFormat {
  const value = raw.toLowerCase();
  if ((ACCESS_LOG_FORMATS as readonly string[]).includes(value)) return value as AccessLogFormat;
  throw new ConfigError(`KONTENA_LB_ACCESS_LOG must be one of ${ACCESS_LOG_FORMATS.join(', ')}, got ${JSON.stringify(raw)}`);
}
