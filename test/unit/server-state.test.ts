import { describe, expect, it } from 'vitest';
import { freshServerStates, nextServerStates, NO_SERVER_STATES } from '../../src/haproxy/server-state.js';
import { parseEntries } from '../../src/model/parse.js';
import { createServerStateRenderer } from '../../src/render/render.js';
import { configServers } from '../../src/render/servers.js';

const serversOf = (entries: Record<string, string>) => configServers(parseEntries(new Map(Object.entries(entries)), { reservedPorts: [] }).state);

const base = {
  'services/web/virtual_hosts': 'web.test',
  'services/web/upstreams/web-1': '10.0.0.1:80',
  'services/web/upstreams/web-2': '10.0.0.2:80',
  'tcp-services/db/external_port': '5432',
  'tcp-services/db/upstreams/db-1': '10.0.1.1:5432',
};

const header =
  '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port';
const row = (backend: string, server: string, addr: string, port: number, adminState = 0) =>
  `3 ${backend} 1 ${server} ${addr} 2 ${adminState} 1 1 12 8 2 0 6 0 0 0 - ${port} - 0 0 - - 0`;

describe('nextServerStates', () => {
  it('carries the states of servers the next config has at the same address; the others start down', () => {
    const running = [
      header,
      row('http-web', 'web-1', '10.0.0.1', 80),
      row('http-web', 'web-2', '10.0.0.2', 80),
      row('http-web', 'gone', '10.0.0.5', 80),
      row('tcp-db', 'db-1', '10.0.1.1', 5432),
      '',
    ].join('\n');
    const next = serversOf({ ...base, 'services/web/upstreams/web-2': '10.0.0.22:80', 'services/web/upstreams/web-3': '10.0.0.3:80' });
    const states = nextServerStates(running, next);
    expect(states.carried.map((l) => l.split(' ')[3])).toEqual(['web-1', 'db-1']);
    // web-2 moved: HAProxy would otherwise take its old address from the file.
    expect(states.down.map((s) => `${s.proxy}/${s.name} ${s.host}:${s.port}`)).toEqual(['http-web/web-2 10.0.0.22:80', 'http-web/web-3 10.0.0.3:80']);
  });

  it('does not carry a server whose TLS changed (backend_protocol): the old srv_use_ssl would override the line', () => {
    const running = [header, row('http-web', 'web-1', '10.0.0.1', 80), row('tcp-db', 'db-1', '10.0.1.1', 5432)].join('\n');
    const next = serversOf({ ...base, 'services/web/backend_protocol': 'https', 'services/web/backend_verify': 'none' });
    const states = nextServerStates(running, next);
    expect(states.carried.map((l) => l.split(' ')[3])).toEqual(['db-1']);
    expect(states.down.map((s) => `${s.name} ${s.ssl}`)).toEqual(['web-1 true', 'web-2 true']);
  });

  it('does not carry a server in maintenance forced through the runtime API (a drained one): it starts down', () => {
    const running = [header, row('http-web', 'web-1', '10.0.0.1', 80, 1), row('http-web', 'web-2', '10.0.0.2', 80)].join('\n');
    const states = nextServerStates(running, serversOf(base));
    expect(states.carried.map((l) => l.split(' ')[3])).toEqual(['web-2']);
    expect(states.down.map((s) => s.name)).toEqual(['web-1', 'db-1']);
  });

  it('starts nothing down whose check only HAProxy can run, nor an instance given by host name', () => {
    const next = serversOf({
      ...base,
      'services/web/custom_settings': 'option httpchk HEAD /ping',
      'tcp-services/db/upstreams/db-2': 'db.internal:5432',
    });
    expect(freshServerStates(next).down.map((s) => `${s.proxy}/${s.name}`)).toEqual(['tcp-db/db-1']);
  });
});

describe('nextServerStates, what HAProxy would take from the file over the config', () => {
  it('does not carry a server whose check port changed: it starts down and is probed on the new one', () => {
    const running = [header, row('http-web', 'web-1', '10.0.0.1', 80), row('http-web', 'web-2', '10.0.0.2', 80)].join('\n');
    const states = nextServerStates(running, serversOf({ ...base, 'services/web/health_check_port': '9000' }));
    expect(states.carried.map((l) => l.split(' ')[3])).toEqual([]);
    expect(states.down.map((s) => `${s.name}:${s.checkPort}`)).toEqual(['web-1:9000', 'web-2:9000', 'db-1:undefined']);
  });

  it('carries a server whose move waits for its proof at its old address, serving', () => {
    const running = [header, row('http-web', 'web-1', '10.0.0.1', 80), row('http-web', 'web-2', '10.0.0.2', 80)].join('\n');
    const next = serversOf({ ...base, 'services/web/upstreams/web-2': '10.0.0.22:80' });
    const states = nextServerStates(running, next, new Set(['http-web/web-2']));
    expect(states.carried).toEqual([row('http-web', 'web-1', '10.0.0.1', 80), row('http-web', 'web-2', '10.0.0.2', 80)]);
    expect(states.down.map((s) => s.name)).toEqual(['db-1']);
  });

  it('matches an IPv6 instance with the address as HAProxy prints it', () => {
    const running = [header, row('http-web', 'web-1', 'fd00::1', 80)].join('\n');
    const next = serversOf({ 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/web-1': '[fd00:0:0::1]:80' });
    expect(next.map((s) => s.host)).toEqual(['fd00::1']);
    expect(nextServerStates(running, next).carried).toHaveLength(1);
  });

  it('finds the columns by the header HAProxy writes, and carries nothing without one', () => {
    const reordered = '1\n# be_name srv_name srv_port srv_addr srv_admin_state srv_check_port\nhttp-web web-1 80 10.0.0.1 0 0\n';
    expect(nextServerStates(reordered, serversOf(base)).carried).toEqual(['http-web web-1 80 10.0.0.1 0 0']);
    expect(nextServerStates('1\n3 http-web 1 web-1 10.0.0.1 2 0 1 1 12 8 2 0 6 0 0 0 - 80 - 0 0 - - 0\n', serversOf(base)).carried).toEqual([]);
  });
});

describe('the server-state file', () => {
  const render = createServerStateRenderer();

  it('is a version line and a header when there is nothing to carry or start down', () => {
    expect(
      render(NO_SERVER_STATES)
        .split('\n')
        .filter((l) => l !== ''),
    ).toEqual(header.split('\n'));
  });

  it('writes carried rows as HAProxy gave them and a stopped, unchecked row per server starting down, with its check port', () => {
    const next = serversOf({ ...base, 'services/web/health_check_port': '9000' });
    const text = render({ carried: [row('tcp-db', 'db-1', '10.0.1.1', 5432)], down: next.filter((s) => s.proxy === 'http-web') });
    const rows = text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .slice(1);
    expect(rows).toEqual([
      row('tcp-db', 'db-1', '10.0.1.1', 5432),
      '0 http-web 0 web-1 10.0.0.1 0 0 100 100 0 1 0 0 6 0 0 0 - 80 - 0 9000 - - 0',
      '0 http-web 0 web-2 10.0.0.2 0 0 100 100 0 1 0 0 6 0 0 0 - 80 - 0 9000 - - 0',
    ]);
    for (const r of rows) expect(r.split(' ')).toHaveLength(25);
  });

  it("writes a started-down row with the line's weight and its TLS (srv_use_ssl: HAProxy takes it over the line)", () => {
    const next = serversOf({ ...base, 'services/web/backend_protocol': 'https', 'services/web/backend_verify': 'none', 'services/web/weights/web-1': '7' });
    const rows = render({ carried: [], down: next.filter((s) => s.name === 'web-1') })
      .split('\n')
      .filter((l) => l.startsWith('0 '));
    expect(rows).toEqual(['0 http-web 0 web-1 10.0.0.1 0 0 7 7 0 1 0 0 6 0 0 0 - 80 - 1 0 - - 0']);
  });
});
