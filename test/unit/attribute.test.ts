import { describe, expect, it } from 'vitest';
import { parseShowProc } from '../../src/haproxy/master-cli.js';
import { attributeErrors } from '../../src/render/attribute.js';

const config = [
  'global',
  '    maxconn 10',
  'defaults',
  '    mode http',
  'frontend http',
  '    acl host_web var(txn.host) -m str a.com',
  '    acl path0_my_api path -m str /x',
  'backend http-web',
  '    bogus 1',
  'listen tcp-db',
  '    bind *:5432',
  '    server a 1.2.3.4:1 bad',
].join('\n');

describe('attributeErrors', () => {
  it('maps haproxy -c errors to the service whose lines caused them', () => {
    const result = attributeErrors(config, [
      { line: 9, message: "parsing [x:9] : unknown keyword 'bogus' in 'backend' section" },
      { line: 12, message: "[x:12] : 'server tcp-db/a' : unknown keyword 'bad'." },
      { line: 7, message: 'acl error' },
      { line: 6, message: 'acl error' },
      { line: 2, message: 'global error' },
      { line: undefined, message: "Proxy 'http-other': something" },
    ]);
    expect([...result.services.keys()].sort()).toEqual(['http:my_api', 'http:other', 'http:web', 'tcp:db']);
    expect(result.unattributed).toEqual(['global error']);
  });
});

describe('parseShowProc', () => {
  it('reads the master and worker rows of HAProxy 2.6', () => {
    const text = [
      '#<PID>          <type>          <reloads>       <uptime>        <version>',
      '2697            master          3 [failed: 1]   0d00h10m22s     2.6.12',
      '# workers',
      '2841            worker          0               0d00h00m03s     2.6.12',
      '2700            worker          1               0d00h10m03s     2.6.12',
      '# programs',
      '',
    ].join('\n');
    expect(parseShowProc(text)).toEqual({
      masterPid: 2697,
      reloads: 3,
      failedReloads: 1,
      workers: [
        { pid: 2841, reloads: 0 },
        { pid: 2700, reloads: 1 },
      ],
    });
  });
});
