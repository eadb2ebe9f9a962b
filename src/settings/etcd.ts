import { etcdConnection, DEFAULT_ETCD_PORT } from '../etcd/connection-settings.js';
import { ConfigError } from './config-error.js';
import { group, setting } from './setting.js';
import { text } from './values.js';

// Which etcd, how to reach it, and which prefix is this load balancer's. The ETCD_* values are
// read as one connection by etcd/connection-settings.ts (they constrain each other: TLS files
// need https:// endpoints, a password needs a user), which names each setting in its messages.

const DEFAULT_ENDPOINT = `http://127.0.0.1:${DEFAULT_ETCD_PORT}`;

export const etcdSettings = group(
  {
    endpoints: setting({
      env: 'ETCD_ENDPOINTS',
      flag: 'etcd-endpoints',
      schema: text,
      shownDefault: DEFAULT_ENDPOINT,
      help: `comma-separated etcd URLs (every member of the cluster); in a container without it or ETCD_NODE: the default gateway, port ${DEFAULT_ETCD_PORT}`,
      docDefault: `\`${DEFAULT_ENDPOINT}\` (\`https://\` when a TLS file below is set); inside a container, without it and \`ETCD_NODE\`: the container's default gateway, port ${DEFAULT_ETCD_PORT} (as the Kontena image did)`,
      doc: 'comma-separated etcd URLs; list every member of a cluster, edgelb moves to the next one when a member stops answering',
    }),
    node: setting({
      env: 'ETCD_NODE',
      flag: 'etcd-node',
      schema: text,
      help: `an etcd host or host:port, port ${DEFAULT_ETCD_PORT} when not given (used when ETCD_ENDPOINTS is not set)`,
      doc: `an etcd host or \`host:port\` (\`10.0.0.1\`, \`10.0.0.1:2379\`, \`[fd00::1]:2379\`); port ${DEFAULT_ETCD_PORT} when not given; used when \`ETCD_ENDPOINTS\` is not set`,
    }),
    api: setting({
      env: 'ETCD_API',
      flag: 'etcd-api',
      schema: text,
      default: 'auto',
      help: 'auto, v3 or v2: the etcd API the platform writes the service links with (auto: what the server and the prefix show)',
      doc: 'the etcd API the platform writes the service links with: `v2` (a Kontena grid: its agents write through `/v2/keys`), `v3`, or `auto`: v2 when the server has no v3 API (etcd 2.x), v3 when its v2 API is off, otherwise whichever keyspace holds the prefix; when both are empty, edgelb watches both and the first write decides. See [etcd v2 and v3](#etcd-v2-and-v3)',
    }),
    caFile: setting({
      env: 'ETCD_CA_FILE',
      flag: 'etcd-ca-file',
      schema: text,
      help: "PEM file of the CA certificates that sign the etcd members' certificates (https endpoints)",
      docDefault: "— (the system's CAs for `https://` endpoints)",
      doc: "PEM file of the CA certificates that signed the etcd members' server certificates",
    }),
    certFile: setting({
      env: 'ETCD_CERT_FILE',
      flag: 'etcd-cert-file',
      schema: text,
      help: "PEM client certificate for etcd's client-certificate authentication (with ETCD_KEY_FILE)",
      doc: "PEM client certificate, for etcd's client-certificate authentication (`--client-cert-auth`); with `ETCD_KEY_FILE`. Any of the three TLS files requires `https://` endpoints",
    }),
    keyFile: setting({
      env: 'ETCD_KEY_FILE',
      flag: 'etcd-key-file',
      schema: text,
      help: 'PEM private key of ETCD_CERT_FILE',
      doc: 'the private key of `ETCD_CERT_FILE`',
    }),
    username: setting({
      env: 'ETCD_USERNAME',
      flag: 'etcd-username',
      schema: text,
      help: 'etcd user (RBAC); the password comes from ETCD_PASSWORD or ETCD_PASSWORD_FILE',
      docDefault: '— (no authentication)',
      doc: 'etcd user (v3 RBAC, or v2 auth); needs a password from one of the next two settings',
    }),
    passwordFile: setting({
      env: 'ETCD_PASSWORD_FILE',
      flag: 'etcd-password-file',
      schema: text,
      help: "a file holding the etcd user's password (a mounted secret); ETCD_PASSWORD is the environment-only alternative",
      doc: "a file holding the etcd user's password (a mounted secret; one trailing newline is ignored)",
    }),
    // Secret: environment only, taken as given, never logged.
    password: setting({
      env: 'ETCD_PASSWORD',
      schema: text,
      verbatim: true,
      help: "the etcd user's password, when it cannot come from a file",
      doc: "the etcd user's password, when it cannot come from a file; never logged, never in a flag (it would show in `ps`)",
    }),
    path: setting({
      env: 'ETCD_PATH',
      flag: 'etcd-path',
      schema: text,
      shownDefault: '/kontena/haproxy/<lb-name>',
      help: "the load balancer's etcd prefix",
      doc: "the load balancer's etcd prefix; overrides the two below",
    }),
    stackName: setting({
      env: 'KONTENA_STACK_NAME',
      flag: 'stack-name',
      schema: text,
      help: 'stack of the load balancer service (part of lb-name)',
      doc: 'lb-name is `<stack>/<service>`, or just `<service>` when the stack is empty or `null`',
    }),
    serviceName: setting({
      env: 'KONTENA_SERVICE_NAME',
      flag: 'service-name',
      schema: text,
      help: 'name of the load balancer service (part of lb-name)',
      docDefault: '— (required unless `ETCD_PATH` is set)',
      doc: "the load balancer service's name",
    }),
  },
  (values, context) => ({
    /** How to reach etcd (endpoints, API, TLS, credentials): secrets inside, never logged whole. */
    etcd: etcdConnection(context.text, values.password, context.platform),
    etcdPath: etcdPath(values.path, values.stackName, values.serviceName),
  }),
);

function etcdPath(explicit: string | undefined, stack: string | undefined, service: string | undefined): string {
  if (explicit) {
    if (!explicit.startsWith('/')) throw new ConfigError(`ETCD_PATH must start with '/', got ${JSON.stringify(explicit)}`);
    return explicit.replace(/\/+$/, '');
  }
  if (!service) throw new ConfigError('set KONTENA_SERVICE_NAME (with KONTENA_STACK_NAME) or ETCD_PATH to say which load balancer this is');
  const lbName = stack && stack !== 'null' ? `${stack}/${service}` : service;
  return `/kontena/haproxy/${lbName}`;
}
