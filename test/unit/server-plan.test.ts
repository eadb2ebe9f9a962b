import { describe, expect, it } from 'vitest';
import type { HaproxyRuntime } from '../../src/haproxy/runtime.js';
import { ServerUpdater } from '../../src/haproxy/server-updater.js';
import { createLogger } from '../../src/log.js';
import { parseEntries } from '../../src/model/parse.js';
import type { HttpService, TcpService, Upstream } from '../../src/model/types.js';
import { planServers, type ServerPlanResult } from '../../src/plan/server-plan.js';
import { createSectionRenderer, createServerArgsRenderer } from '../../src/render/render.js';
import { renderSettingsIn } from '../support/render-settings.js';

// The typed plan (as haproxy-ingress's dynupdate_test.go): two sets of entries → the states
// compared as data → either the exact runtime API commands, or a reload with its reason. The
// commands come from the real ServerUpdater with a runtime that records what it is sent.

const settings = renderSettingsIn('/s');
const serverArgs = createServerArgsRenderer();
const args = (service: HttpService | TcpService, upstream: Upstream) => serverArgs(service, upstream, settings);
const stateOf = (entries: Record<string, string>) => parseEntries(new Map(Object.entries(entries)), { reservedPorts: [8080] }).state;
const plan = (before: Record<string, string>, after: Record<string, string>, defaults: string[] = []): ServerPlanResult =>
  planServers(stateOf(before), stateOf(after), args, defaults);

async function commandsOf(result: ServerPlanResult): Promise<string[]> {
  if (!('plan' in result)) throw new Error(`expected a runtime plan, got a reload: ${result.reloadBecause}`);
  const sent: string[] = [];
  const runtime = {
    raw: async (command: string) => {
      sent.push(command);
      return '';
    },
  } as unknown as HaproxyRuntime;
  const updater = new ServerUpdater(runtime, createLogger('silent', false), 30_000);
  await updater.apply(result.plan);
  updater.stop();
  return sent.flatMap((line) => line.split('; '));
}

const base = {
  'services/web/virtual_hosts': 'web.test',
  'services/web/upstreams/web-1': '10.0.0.1:80',
  'services/web/upstreams/web-2': '10.0.0.2:80',
  'tcp-services/db/external_port': '5432',
  'tcp-services/db/upstreams/db-1': '10.0.1.1:5432',
};
const without = (entries: Record<string, string>, ...keys: string[]) => Object.fromEntries(Object.entries(entries).filter(([key]) => !keys.includes(key)));
const CHECK = `check inter ${settings.checkInterval} fastinter ${settings.checkFastInterval} rise 2 fall 3`;
const addCommands = (server: string, address: string, extra = '', weight = 100) => [
  `add server ${server} ${address} ${CHECK} weight ${weight}${extra}`,
  `set server ${server} weight 0`,
  `enable server ${server}`,
  `set server ${server} health down`,
  `enable health ${server}`,
  `set server ${server} weight 100%`,
];

describe('planServers: the exact runtime commands of each change', () => {
  it.each([
    ['an added instance', base, { ...base, 'services/web/upstreams/web-3': '10.0.0.3:80' }, addCommands('http-web/web-3', '10.0.0.3:80')],
    ['a removed instance (drained)', base, without(base, 'services/web/upstreams/web-2'), ['set server http-web/web-2 state maint']],
    [
      'a moved TCP instance',
      base,
      { ...base, 'tcp-services/db/upstreams/db-1': '10.0.1.9:6432' },
      [
        'set server tcp-db/db-1 weight 0',
        'set server tcp-db/db-1 addr 10.0.1.9 port 6432',
        'set server tcp-db/db-1 health down',
        'set server tcp-db/db-1 weight 100',
      ],
    ],
    [
      'an instance added to an h2 service (the server line says proto h2)',
      { ...base, 'services/web/backend_protocol': 'h2' },
      { ...base, 'services/web/backend_protocol': 'h2', 'services/web/upstreams/web-3': '10.0.0.3:80' },
      addCommands('http-web/web-3', '10.0.0.3:80', ' proto h2'),
    ],
    [
      'an instance added to an https service (ssl verify none, as stated)',
      { ...base, 'services/web/backend_protocol': 'https', 'services/web/backend_verify': 'none' },
      { ...base, 'services/web/backend_protocol': 'https', 'services/web/backend_verify': 'none', 'services/web/upstreams/web-3': '10.0.0.3:443' },
      addCommands('http-web/web-3', '10.0.0.3:443', ' ssl verify none'),
    ],
    ['a changed weight (HTTP)', base, { ...base, 'services/web/weights/web-2': '0' }, ['set server http-web/web-2 weight 0']],
    ['a changed weight (TCP)', base, { ...base, 'tcp-services/db/weights/db-1': '256' }, ['set server tcp-db/db-1 weight 256']],
    ['a weight set back to the default (key deleted)', { ...base, 'services/web/weights/web-1': '7' }, base, ['set server http-web/web-1 weight 100']],
    ['a weight written for an instance not there yet', base, { ...base, 'services/web/weights/web-9': '5' }, []],
    [
      'an added instance with its weight',
      base,
      { ...base, 'services/web/upstreams/web-3': '10.0.0.3:80', 'services/web/weights/web-3': '20' },
      addCommands('http-web/web-3', '10.0.0.3:80', '', 20),
    ],
    [
      'a moved instance whose weight changed too (one readdress, with the new weight)',
      base,
      { ...base, 'tcp-services/db/upstreams/db-1': '10.0.1.9:5432', 'tcp-services/db/weights/db-1': '3' },
      [
        'set server tcp-db/db-1 weight 0',
        'set server tcp-db/db-1 addr 10.0.1.9 port 5432',
        'set server tcp-db/db-1 health down',
        'set server tcp-db/db-1 weight 3',
      ],
    ],
    ['an IPv6 instance', base, { ...base, 'services/web/upstreams/web-6': '[fd00::6]:80' }, addCommands('http-web/web-6', '[fd00::6]:80')],
    [
      'an instance checked on its health_check_port',
      { ...base, 'services/web/health_check_port': '8081' },
      { ...base, 'services/web/health_check_port': '8081', 'services/web/upstreams/web-3': '10.0.0.3:80' },
      addCommands('http-web/web-3', '10.0.0.3:80', ' port 8081'),
    ],
    [
      'the first instance of an empty service',
      without(base, 'services/web/upstreams/web-1', 'services/web/upstreams/web-2'),
      without(base, 'services/web/upstreams/web-2'),
      addCommands('http-web/web-1', '10.0.0.1:80'),
    ],
    [
      'every instance of a service removed (each drained)',
      base,
      without(base, 'services/web/upstreams/web-1', 'services/web/upstreams/web-2'),
      ['set server http-web/web-1 state maint', 'set server http-web/web-2 state maint'],
    ],
    ['a field no template reads (acme) changed', base, { ...base, 'services/web/acme': 'true' }, []],
    ['no change at all', base, base, []],
  ])('%s', async (_, before, after, commands) => {
    expect(await commandsOf(plan(before, after))).toEqual(commands);
  });

  it('moves a server with the arguments its line in the file has', () => {
    const after = { ...base, 'services/web/health_check_port': '8081' };
    const text = createSectionRenderer()(stateOf(after), settings).text;
    const result = planServers(stateOf({ ...after, 'services/web/upstreams/web-2': '10.0.0.7:80' }), stateOf(after), args);
    if (!('plan' in result)) throw new Error(result.reloadBecause);
    const moved = result.plan.readdress[0]!;
    expect(text).toContain(`    server ${moved.name} ${moved.address} ${moved.args}\n`);
  });

  it.each([
    ['a new service', { 'services/api/virtual_path': '/api', 'services/api/upstreams/api-1': '10.0.2.1:80' }, /service http:api was added/],
    ['a changed route', { 'services/web/virtual_hosts': 'other.test' }, /routes or settings of http:web/],
    ['a changed setting', { 'services/web/balance': 'leastconn' }, /routes or settings of http:web/],
    ['server options changed (health check port)', { 'services/web/health_check_port': '8081' }, /routes or settings/],
    ['the protocol to the instances changed (h2 on every server line)', { 'services/web/backend_protocol': 'h2' }, /routes or settings/],
    ['a timeout changed', { 'services/web/timeout_server': '5s' }, /routes or settings/],
    ['an instance given by host name (a dynamic server never resolves names)', { 'services/web/upstreams/web-3': 'web-3.internal:80' }, /host name/],
  ])('reloads for %s', (_, change, reason) => {
    expect(plan(base, { ...base, ...change })).toEqual({ reloadBecause: expect.stringMatching(reason) });
  });

  it.each([
    ['a cookie-sticky service (add server has no cookie option)', { 'services/web/cookie': '' }, /cookie/],
    [
      'a service with its own default-server line (runtime servers ignore it)',
      { 'services/web/custom_settings': 'default-server maxconn 50' },
      /default-server/,
    ],
  ])('reloads for an instance of %s', (_, setting, reason) => {
    const before = { ...base, ...setting };
    expect(plan(before, { ...before, 'services/web/upstreams/web-3': '10.0.0.3:80' })).toEqual({ reloadBecause: expect.stringMatching(reason) });
  });

  it('reloads for an instance change when KONTENA_LB_CUSTOM_SETTINGS set default-server options, not for init-addr alone', () => {
    const after = { ...base, 'services/web/upstreams/web-3': '10.0.0.3:80' };
    expect(plan(base, after, ['default-server maxconn 50'])).toEqual({ reloadBecause: expect.stringContaining('default-server') });
    expect(plan(base, after, ['default-server init-addr none', 'timeout check 3s'])).toHaveProperty('plan');
  });
});
