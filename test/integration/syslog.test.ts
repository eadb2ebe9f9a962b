import { randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { closeBackends, expectRoute, startBackends, startLbWith } from '../support/lb.js';
import { waitFor } from '../support/wait.js';

// SYSLOG_TARGET as Kontena users set it: a bare address. A real UDP syslog listener on a random
// loopback port receives HAProxy's access-log line for a request sent through a real HAProxy,
// with the Kontena default facility and level (local1, info), and HAProxy writes it to stdout too
// (its own, here a file: see test/support/edgelb.ts), not through the controller's log.

let etcd: EtcdServer;
let b: Record<'web', Backend>;
let lb: TestEdgelb;
let syslog: dgram.Socket;
const datagrams: string[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web');
  syslog = dgram.createSocket('udp4');
  syslog.on('message', (message) => datagrams.push(message.toString('utf8')));
  await new Promise<void>((resolve) => syslog.bind(0, '127.0.0.1', resolve));
  const port = (syslog.address() as AddressInfo).port;
  lb = await startLbWith(
    etcd,
    {
      'services/web/virtual_hosts': 'syslog.test',
      'services/web/upstreams/one': b.web.address,
    },
    { SYSLOG_TARGET: `127.0.0.1:${port}` },
  );
  await expectRoute(lb, '/', 'syslog.test', 'web');
});

afterAll(async () => {
  await lb?.stopAll();
  syslog?.close();
  await closeBackends(b);
  await etcd?.stop();
});

describe('SYSLOG_TARGET', () => {
  it('sends the access-log line of a request to the syslog server, at facility local1 and level info', async () => {
    const path = `/syslog-probe/${randomUUID()}`;
    expect((await get(lb.httpPort, path, 'syslog.test')).status).toBe(200);
    const line: string = await waitFor(() => datagrams.find((d) => d.includes(`GET ${path} HTTP/1.1`)), {
      timeoutMs: 5000,
      what: `the access-log line for ${path} to reach the syslog listener (received: ${datagrams.length} datagrams)`,
    });
    // <PRI> = facility * 8 + severity: local1 (17) and info (6) make 142. HAProxy's default
    // "local" format: the priority, a timestamp, haproxy[pid]: and the httplog line (newline-terminated).
    expect(line).toMatch(
      new RegExp(
        `^<142>\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d haproxy\\[\\d+\\]: 127\\.0\\.0\\.1:\\d+ .* http http-web/one .* 200 .*"GET ${path} HTTP/1\\.1"\n?$`,
      ),
    );
  });

  it("keeps the access log on HAProxy's stdout too, and out of the controller's log", async () => {
    const path = `/stdout-probe/${randomUUID()}`;
    expect((await get(lb.httpPort, path, 'syslog.test')).status).toBe(200);
    await waitFor(() => lb.haproxyStdout().includes(`"GET ${path} HTTP/1.1"`), { timeoutMs: 5000, what: 'the access-log line on stdout' });
    await waitFor(() => datagrams.some((d) => d.includes(`GET ${path} HTTP/1.1`)), { timeoutMs: 5000, what: 'the same line on syslog' });
    expect(JSON.stringify(lb.logs)).not.toContain(path);
  });

  it("sends HAProxy's messages there too: a server going down", async () => {
    await lb.put('services/web/upstreams/gone', '127.0.0.1:1');
    await waitFor(() => datagrams.find((d) => /Server http-web\/gone is DOWN/.test(d)), { timeoutMs: 15_000, what: 'the DOWN message on syslog' });
    await lb.del('services/web/upstreams/gone');
  });

  it('writes the log line from typed fields', () => {
    expect(lb.config.syslogTarget).toMatchObject({ host: '127.0.0.1', facility: 'local1', level: 'info' });
  });
});
