import { EntryError, parseSettingLines } from '../model/values.js';
import { ConfigError } from './config-error.js';
import { group, setting } from './setting.js';
import { absolutePath, duration, durationMs, parsedBy, text } from './values.js';

// Where HAProxy runs from and the settings of the HAProxy process itself. Whether the state dir
// is writable and where the executable is are checked by config.ts (the file system).

/** KONTENA_LB_*_SETTINGS: one directive per line, no new sections (the rule custom_settings entries follow). */
const settingLines = (env: string) =>
  parsedBy((raw) => {
    try {
      return parseSettingLines(raw, env);
    } catch (error) {
      if (error instanceof EntryError) throw new ConfigError(error.message);
      throw error;
    }
  });

export const haproxySettings = group(
  {
    stateDir: setting({
      env: 'KONTENA_LB_STATE_DIR',
      flag: 'state-dir',
      default: '/var/lib/edgelb',
      schema: absolutePath,
      help: 'rendered config, certificates and sockets',
      doc: "holds `haproxy.cfg` (the last good config, served at start if etcd has not answered within 2 s), `haproxy.cfg.candidate`, `certs/` (served bundles, 0600, and the `crt-list`), `acme-challenges.map`, `canary.map` (canary shares), `server-state` (instance health handed from one HAProxy worker to the next, only during a reload), and the sockets `haproxy.sock` (runtime API), `master.sock` (master CLI) `metrics.sock` (HAProxy's Prometheus exporter) and `peers.sock` (the local peer that carries rate and connection counters into the next worker); created with mode 0700",
    }),
    haproxyBin: setting({
      env: 'KONTENA_LB_HAPROXY_BIN',
      flag: 'haproxy-bin',
      default: 'haproxy',
      schema: text,
      help: 'the HAProxy executable',
      docDefault: '`haproxy` on `PATH`',
      doc: 'the HAProxy 2.x executable',
    }),
    customSettings: setting({
      env: 'KONTENA_LB_CUSTOM_SETTINGS',
      flag: 'custom-settings',
      verbatim: true,
      schema: settingLines,
      help: "lines appended to HAProxy's defaults section",
      doc: "lines appended to HAProxy's `defaults` section",
    }),
    globalSettings: setting({
      env: 'KONTENA_LB_GLOBAL_SETTINGS',
      flag: 'global-settings',
      verbatim: true,
      schema: settingLines,
      help: "lines appended to HAProxy's global section",
      doc: "lines appended to HAProxy's `global` section",
    }),
    hardStopAfter: setting({
      env: 'KONTENA_LB_HARD_STOP_AFTER',
      flag: 'hard-stop-after',
      default: '1h',
      schema: duration,
      help: 'longest time an old HAProxy worker may keep connections after a reload',
      doc: 'after a reload, old HAProxy workers finish their connections but stop after this long at most',
    }),
    /** Health-check interval of every upstream (HAProxy `inter`), in milliseconds. */
    checkIntervalMs: setting({
      env: 'KONTENA_LB_CHECK_INTERVAL',
      flag: 'check-interval',
      default: '2s',
      schema: (env) => durationMs(env, { min: 100, max: 3600_000, message: (raw) => `${env} must be between 100ms and 1h, got ${JSON.stringify(raw)}` }),
      help: "health-check interval of every upstream (HAProxy's checks; a new instance gets traffic as soon as the controller's own first check passes)",
      doc: 'interval of HAProxy\'s health checks of every instance (100ms–1h). After a check changes result, re-checks come every 250 ms (or the interval, if shorter) until 2 passes (up) or 3 failures (down). A new or moved instance does not wait for them: edgelb\'s own first check lets it in (see "Healthy in milliseconds"); its retries stop after twice this interval (at most 10 s), one attempt times out after this interval (at most 1 s)',
    }),
    /** How long a removed instance may keep its in-flight requests before they are closed, in milliseconds. */
    drainTimeoutMs: setting({
      env: 'KONTENA_LB_DRAIN_TIMEOUT',
      flag: 'drain-timeout',
      default: '1h',
      schema: (env) => durationMs(env),
      help: 'how long a removed instance may finish its in-flight requests and open connections',
      doc: 'how long a removed instance may finish its in-flight requests and open connections (WebSockets) before edgelb closes them',
    }),
  },
  (values) => ({ ...values, customSettings: values.customSettings ?? [], globalSettings: values.globalSettings ?? [] }),
);
