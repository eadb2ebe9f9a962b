import { DEFAULT_ACCESS_LOG, parseAccessLog } from './access-log.js';
import { effectiveLogLevel, isDebugOn, parseLogLevel } from './log-level.js';
import { group, setting } from './setting.js';
import { parseSyslogTarget } from './syslog-target.js';
import { parsedBy, text } from './values.js';

// edgelb's own log (LOG_LEVEL, DEBUG, as the Kontena image read them) and HAProxy's logs.

export const loggingSettings = group(
  {
    logLevel: setting({
      env: 'LOG_LEVEL',
      flag: 'log-level',
      default: 'info',
      schema: () => parsedBy(parseLogLevel),
      help: 'trace, debug, info, warn, error, fatal, silent, or 0-5 as the Kontena image took it (0 debug ... 4 and 5 fatal)',
      doc: '`trace`, `debug`, `info`, `warn`, `error`, `fatal`, `silent`, or a number as the Kontena load balancer took it (Ruby\'s Logger): `0` debug, `1` info, `2` warn, `3` error, `4` fatal, `5` fatal (Ruby\'s "unknown" level still logged the most severe messages, so edgelb keeps its fatal lines rather than going silent). Anything else stops edgelb',
    }),
    debug: setting({
      env: 'DEBUG',
      schema: () => text().transform(isDebugOn),
      help: 'debug logging, as with the Kontena load balancer',
      docDefault: '— (off)',
      doc: 'debug logging, as with the Kontena load balancer: any value turns it on except empty, `false`, `0`, `no` and `off` (the Kontena load balancer took even those as on); it wins over `LOG_LEVEL` unless that is `trace`',
    }),
    /** The access log HAProxy writes to stdout (and syslog) itself: text, json or off. */
    accessLog: setting({
      env: 'KONTENA_LB_ACCESS_LOG',
      flag: 'access-log',
      default: DEFAULT_ACCESS_LOG,
      schema: () => parsedBy(parseAccessLog),
      help: 'the access log HAProxy writes to stdout: text (httplog/tcplog), json (one object per line) or off',
      doc: "the access log HAProxy writes itself to edgelb's standard output (and to `SYSLOG_TARGET`): `text` (HAProxy's `option httplog` for HTTP, `option tcplog` for TCP services), `json` (one JSON object per request or connection, built by HAProxy) or `off` (none). The controller never reads these lines. See [Access log](#access-log)",
    }),
    /** HAProxy also logs there (besides edgelb's stdout); undefined: stdout only. */
    syslogTarget: setting({
      env: 'SYSLOG_TARGET',
      flag: 'syslog-target',
      schema: () => parsedBy(parseSyslogTarget),
      help: 'also send HAProxy\'s logs to this syslog server: "<address>[:port] [<facility> [<level> [<minlevel>]]]"',
      docDefault: '— (stdout only)',
      doc: "also send HAProxy's messages and access log to a syslog server, as the Kontena load balancer did; the access log on stdout stays. The arguments of HAProxy's `log`: `<address>[:port] [len <n>] [format <f>] [<facility> [<level> [<minlevel>]]]`, e.g. `10.0.0.5:514 local0 info`. The address is an IPv4 address, an IPv6 address (`[2001:db8::1]:514`; unbracketed, the text after the last colon is the port, as in HAProxy), or a host name, which HAProxy resolves when it loads the config (one that does not resolve makes HAProxy refuse the config: `edgelb check` shows it); port 514 by default; `udp@`, `udp4@`, `udp6@` (UDP, the default) or `tcp@`, `tcp4@`, `tcp6@` in front to choose. A bare address means facility `local1` and level `info`, the Kontena default (`127.0.0.1 local1 info`). Facilities and levels are HAProxy's (configuration manual, \"log\"); unix socket paths are not taken. The value is read into fields and the line written from them: anything else stops edgelb with one line",
    }),
  },
  ({ debug, logLevel, ...values }) => ({ ...values, logLevel: effectiveLogLevel(logLevel, debug ?? false) }),
);
