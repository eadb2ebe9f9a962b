import { ConfigError } from './config-error.js';

/** The levels edgelb's logger (pino) knows, least to most severe; `silent` logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The Kontena load balancer set Ruby's Logger level from LOG_LEVEL as an integer:
 * 0 DEBUG, 1 INFO, 2 WARN, 3 ERROR, 4 FATAL, 5 UNKNOWN. UNKNOWN still logged the most severe
 * messages (those logged as "unknown"), so 5 maps to fatal rather than to silent: an operator
 * who turns logging down never loses the line that says why edgelb stopped.
 */
const RUBY_LOGGER_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'fatal', 'fatal'];

// The Kontena image turned debug on for any DEBUG value; edgelb also lets the usual "off"
// words mean off, so DEBUG=false does not do the opposite of what it says.
const DEBUG_OFF = new Set(['false', '0', 'no', 'off']);

/** LOG_LEVEL: a level's name or a Ruby Logger number. */
export function parseLogLevel(raw: string): LogLevel {
  const name = raw.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(name)) return name as LogLevel;
  if (/^[0-5]$/.test(raw)) return RUBY_LOGGER_LEVELS[Number(raw)]!;
  throw new ConfigError(
    `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} or a number 0-5 (0 debug, 1 info, 2 warn, 3 error, 4 and 5 fatal), got ${JSON.stringify(raw)}`,
  );
}

/** DEBUG as the Kontena image read it: any value is on, except the usual "off" words. */
export function isDebugOn(raw: string): boolean {
  return raw !== '' && !DEBUG_OFF.has(raw.toLowerCase());
}

/**
 * DEBUG on means at least debug (trace stays trace). LOG_LEVEL is parsed on its own first, so a
 * bad LOG_LEVEL stops edgelb even with DEBUG set and a typo is never hidden.
 */
export function effectiveLogLevel(level: LogLevel, debugOn: boolean): LogLevel {
  return debugOn && level !== 'trace' ? 'debug' : level;
}
