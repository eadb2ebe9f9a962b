import { isIP } from 'node:net';
import { group, setting } from './setting.js';
import { checked, port } from './values.js';

// edgelb's own HTTP server: /healthz, /status, /metrics.

export const adminSettings = group(
  {
    adminPort: setting({
      env: 'KONTENA_LB_ADMIN_PORT',
      flag: 'admin-port',
      default: '8404',
      schema: port,
      help: 'admin HTTP port: /healthz, /status, /metrics',
      doc: "edgelb's admin HTTP port: `/healthz`, `/status` (JSON), `/metrics` (Prometheus); see [Admin port](#admin-port-health-status-metrics). Reserved: no TCP service may take it",
    }),
    adminBind: setting({
      env: 'KONTENA_LB_ADMIN_BIND',
      flag: 'admin-bind',
      default: '127.0.0.1',
      schema: (env) =>
        checked(
          (raw) => isIP(raw) !== 0 || raw === 'localhost',
          (raw) => `${env} must be an IP address such as 127.0.0.1 or 0.0.0.0, got ${JSON.stringify(raw)}`,
        ),
      help: 'address the admin port listens on (0.0.0.0 for every interface)',
      doc: 'the address the admin port listens on; `0.0.0.0` (or `::`) for every interface, e.g. for a Prometheus server elsewhere. `/status` lists every backend address: keep it off the internet',
    }),
    // Secret: environment only (a flag would show in `ps`), taken as given, never logged or shown.
    adminPassword: setting({
      env: 'KONTENA_LB_ADMIN_PASSWORD',
      verbatim: true,
      schema: () =>
        checked(
          (raw) => raw.length <= 256,
          () => 'KONTENA_LB_ADMIN_PASSWORD may be at most 256 characters',
        ).transform((raw) => (raw === '' ? undefined : raw)),
      help: 'puts the dashboard behind HTTP basic auth, user admin',
      docDefault: '— (dashboard only on a loopback bind)',
      doc: 'puts the dashboard (`/` on the admin port) behind HTTP basic auth, user `admin`. Required for the dashboard when `KONTENA_LB_ADMIN_BIND` is not a loopback address: without it the dashboard answers 403 there (and a warning is logged), while `/healthz`, `/status` and `/metrics` stay open as before. Never logged',
    }),
  },
  (values) => values,
);
