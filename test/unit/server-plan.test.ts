import { describe, expect, it } from 'vitest';
import { layoutOf, planServerChanges } from '../../src/haproxy/server-plan.js';
import { parseEntries } from '../../src/model/parse.js';
import { diffConfigs } from '../../src/render/config-diff.js';
import { createSectionRenderer } from '../../src/render/render.js';
import type { RenderSettings } from '../../src/render/view.js';

const settings: RenderSettings = {
  httpPort: 8080,
  adminSocket: '/s/haproxy.sock',
  errorsDir: '/e',
  challengeMap: '/s/acme.map',
  globalSettings: [],
  defaultsSettings: [],
  hardStopAfter: '1h',
  serverStateFile: '/s/server-state',
  checkInterval: '2000ms',
  checkFastInterval: '250ms',
  acceptProxy: false,
  tunnelTimeout: '1h',
  accessLog: 'text',
};
const render = createSectionRenderer();
const configOf = (entries: Record<string, string>) =>
  render(parseEntries(new Map(Object.entries(entries)), { reservedPorts: [8080] }).state, settings);
const textOf = (entries: Record<string, string>) => configOf(entries).text;

const base = {
  'services/web/virtual_hosts': 'web.test',
  'services/web/upstreams/web-1': '10.0.0.1:80',
  'services/web/upstreams/web-2': '10.0.0.2:80',
  'tcp-services/db/external_port': '5432',
  'tcp-services/db/upstreams/db-1': '10.0.1.1:5432',
};

function plan(before: Record<string, string>, after: Record<string, string>) {
  return planServerChanges(diffConfigs(configOf(before), configOf(after)));
}

const names = (lines: readonly { proxy: string; name: string }[]) => lines.map((l) => `${l.proxy}/${l.name}`);

describe('planServerChanges', () => {
  it('turns added, removed and moved instances into runtime operations, for HTTP and TCP services', () => {
    const after = { ...base, 'services/web/upstreams/web-3': '10.0.0.3:80', 'tcp-services/db/upstreams/db-1': '10.0.1.9:6432' };
    delete (after as Record<string, string>)['services/web/upstreams/web-1'];
    const result = plan(base, after);
    expect('plan' in result && {
      add: names(result.plan.add), remove: names(result.plan.remove), readdress: names(result.plan.readdress),
    }).toEqual({ add: ['http-web/web-3'], remove: ['http-web/web-1'], readdress: ['tcp-db/db-1'] });
    if (!('plan' in result)) return;
    // The server is created with the options the file has, health check included.
    expect(result.plan.add[0]).toMatchObject({ host: '10.0.0.3', port: 80, address: '10.0.0.3:80' });
    expect(result.plan.add[0]!.args).toMatch(/^check inter 2000ms fastinter 250ms rise 2 fall 3$/);
    expect(result.plan.readdress[0]).toMatchObject({ host: '10.0.1.9', port: 6432 });
  });

  it('finds nothing to do for the same config', () => {
    expect(plan(base, base)).toEqual({ plan: { add: [], remove: [], readdress: [] } });
  });

  it('scales a service from zero instances up and back down without a reload', () => {
    const none = Object.fromEntries(Object.entries(base).filter(([key]) => !key.startsWith('services/web/upstreams/')));
    expect(plan(none, base)).toHaveProperty('plan');
    expect(plan(base, none)).toHaveProperty('plan');
  });

  it.each([
    ['a new service', { 'services/api/virtual_path': '/api', 'services/api/upstreams/api-1': '10.0.2.1:80' }],
    ['a changed route', { 'services/web/virtual_hosts': 'other.test' }],
    ['a changed setting', { 'services/web/balance': 'leastconn' }],
    ['server options changed (health check port)', { 'services/web/health_check_port': '8081' }],
    ['an instance of a cookie-sticky service (add server has no cookie option)', { 'services/web/cookie': '', 'services/web/upstreams/web-3': '10.0.0.3:80' }],
    ['an instance given by host name (a dynamic server never resolves names)', { 'services/web/upstreams/web-3': 'web-3.internal:80' }],
    ['an instance of a service with its own default-server line (runtime servers ignore it)', { 'services/web/custom_settings': 'default-server maxconn 50', 'services/web/upstreams/web-3': '10.0.0.3:80' }],
  ])('needs a reload for %s', (_, change) => {
    const before = 'services/web/cookie' in change ? { ...base, 'services/web/cookie': '' }
      : 'services/web/custom_settings' in change ? { ...base, 'services/web/custom_settings': change['services/web/custom_settings'] } : base;
    const result = plan(before, { ...base, ...change });
    expect(result).toHaveProperty('reloadBecause');
  });

  it('does not mistake a server line in another section for an upstream', () => {
    const layout = layoutOf('global\n    server-state-file /x\nfrontend f\n    bind :80\nbackend b\n    server s1 10.0.0.1:80 check\n');
    expect([...layout.servers.keys()]).toEqual(['b']);
    expect(layout.skeleton).not.toContain('server s1');
    expect(layout.skeleton).toContain('server-state-file /x');
  });

  it('reloads for an instance change when KONTENA_LB_CUSTOM_SETTINGS set default-server options (runtime servers ignore them), not for init-addr alone', () => {
    const change = diffConfigs(configOf(base), configOf({ ...base, 'services/web/upstreams/web-3': '10.0.0.3:80' }));
    expect(planServerChanges(change, ['default-server maxconn 50'])).toEqual({ reloadBecause: expect.stringContaining('default-server') });
    expect(planServerChanges(change, ['default-server init-addr none', 'timeout check 3s'])).toHaveProperty('plan');
  });
});
