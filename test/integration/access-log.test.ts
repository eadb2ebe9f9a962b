import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { closeBackends, expectRoute, startBackends, startEchoServer, startLbWith, tcpRoundTrip, type EchoServer } from '../support/lb.js';
import { rawExchange } from '../support/requests.js';
import { waitFor } from '../support/wait.js';

// KONTENA_LB_ACCESS_LOG against a real HAProxy: what it writes to its standard output for real
// requests, and that none of it reaches the controller's log. Here the controller runs in the
// test process and HAProxy's stdout is a file (test/support/edgelb.ts); `edgelb run` as its own
// process, with HAProxy writing to the very stdout edgelb has, is in access-log-process.test.ts.

const HOST = 'access.test';
let etcd: EtcdServer;
let b: Record<'web', Backend>;
let echo: EchoServer;
let tcpPort: number;
const lbs: Partial<Record<'text' | 'json' | 'off', TestEdgelb>> = {};

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web');
  echo = await startEchoServer();
  tcpPort = await freePort();
  const entries = {
    'services/web/virtual_hosts': HOST,
    'services/web/upstreams/one': b.web.address,
  };
  for (const format of ['text', 'json', 'off'] as const) {
    lbs[format] = await startLbWith(
      etcd,
      format === 'json'
        ? {
            ...entries,
            'tcp-services/echo/external_port': String(tcpPort),
            'tcp-services/echo/upstreams/one': `127.0.0.1:${echo.port}`,
          }
        : entries,
      format === 'text' ? {} : { KONTENA_LB_ACCESS_LOG: format },
    );
    await expectRoute(lbs[format]!, '/', HOST, 'web');
  }
});

afterAll(async () => {
  for (const lb of Object.values(lbs)) await lb?.stopAll();
  await echo?.close();
  await closeBackends(b);
  await etcd?.stop();
});

const linesOf = (lb: TestEdgelb) =>
  lb
    .haproxyStdout()
    .split('\n')
    .filter((l) => l !== '');

/** Waits for the one stdout line that holds `marker`. */
function lineWith(lb: TestEdgelb, marker: string): Promise<string> {
  return waitFor(() => linesOf(lb).find((l) => l.includes(marker)), { timeoutMs: 5000, what: `HAProxy's access-log line with ${marker}` });
}

function request(lines: string[]): Buffer {
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

describe('KONTENA_LB_ACCESS_LOG=json', () => {
  it("writes one JSON object per request with status, service and timings; the controller's log never sees it", async () => {
    const lb = lbs.json!;
    const id = randomUUID();
    expect((await get(lb.httpPort, `/json/${id}?q=1`, HOST)).status).toBe(200);
    const entry = JSON.parse(await lineWith(lb, id)) as Record<string, unknown>;
    expect(entry).toMatchObject({
      type: 'http',
      client_ip: '127.0.0.1',
      frontend: 'http',
      backend: 'http-web',
      server: 'one',
      method: 'GET',
      host: HOST,
      uri: `/json/${id}?q=1`,
      status: 200,
      termination_state: '----',
      retries: '0',
    });
    expect(entry.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(entry.time as string) - Date.now())).toBeLessThan(60_000);
    for (const timer of ['request_ms', 'queue_ms', 'connect_ms', 'response_ms', 'active_ms', 'total_ms']) {
      expect(entry[timer], timer).toEqual(expect.any(Number));
      expect(entry[timer] as number, timer).toBeGreaterThanOrEqual(0);
    }
    expect(entry.response_bytes).toBeGreaterThan(0);
    expect(entry.request_bytes).toBeGreaterThan(0);
    expect(typeof entry.client_port).toBe('number');
    expect(JSON.stringify(lb.logs)).not.toContain(id);
  });

  it('stays valid JSON, one line each, for hostile requests', async () => {
    const lb = lbs.json!;
    const id = randomUUID().slice(0, 8);
    const before = linesOf(lb).length;
    // Each: the raw request, and (for those HAProxy accepts) the URI and Host the line must show.
    const cases: { what: string; bytes: Buffer; uri?: string; host?: string }[] = [
      {
        what: 'quote, backslash, bracket, braces',
        bytes: request([`GET /h/${id}/1/a"b\\c]d{|}e HTTP/1.1`, `Host: ${HOST}`, 'Connection: close']),
        uri: `/h/${id}/1/a"b\\c]d{|}e`,
      },
      // HAProxy 2.6 takes a DEL in the URI or refuses it depending on where it falls.
      { what: 'DEL in the URI', bytes: request([`GET /h/${id}/2/\x7f HTTP/1.1`, `Host: ${HOST}`, 'Connection: close']) },
      {
        what: 'a hostile Host header',
        bytes: request([`GET /h/${id}/3 HTTP/1.1`, 'Host: A"b\\c\x01\td', 'Connection: close']),
        uri: `/h/${id}/3`,
        host: 'a"b\\c\x01\td',
      },
      {
        what: 'a Host that is not UTF-8',
        bytes: request([`GET /h/${id}/4 HTTP/1.1`, 'Host: x\xffy\xc3\xa9\xf0\x9f\x98\x80z', 'Connection: close']),
        uri: `/h/${id}/4`,
      },
      // Long: the URI and the Host are cut before escaping (a control byte in the Host becomes 6 bytes).
      {
        what: 'a long URI and Host of bytes that need escaping',
        bytes: request([`GET /h/${id}/5/${'"'.repeat(3000)} HTTP/1.1`, `Host: ${'\x01'.repeat(3000)}`, 'Connection: close']),
      },
      { what: 'a quote as the method', bytes: request([`G"T /h/${id}/6 HTTP/1.1`, `Host: ${HOST}`, 'Connection: close']) },
      { what: 'a control byte in the URI', bytes: request([`GET /h/${id}/7/\x01 HTTP/1.1`, `Host: ${HOST}`, 'Connection: close']) },
      { what: 'bytes that are not UTF-8 in the URI', bytes: request([`GET /h/${id}/8/\xff\xfe HTTP/1.1`, `Host: ${HOST}`, 'Connection: close']) },
      { what: 'a TLS hello on the plain port', bytes: Buffer.from('16030100a5010000a10303', 'hex') },
    ];
    for (const c of cases) await rawExchange(lb.httpPort, c.bytes);
    const lines = await waitFor(
      () => {
        const all = linesOf(lb);
        return all.length >= before + cases.length ? all.slice(before) : undefined;
      },
      { timeoutMs: 5000, what: `${cases.length} access-log lines (one per hostile request)` },
    );
    for (const line of lines) {
      expect(() => JSON.parse(line), line).not.toThrow();
      expect(Buffer.byteLength(line) + 1).toBeLessThanOrEqual(4096);
    }
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const c of cases.filter((x) => x.uri !== undefined)) {
      const entry = entries.find((e) => e.uri === c.uri);
      expect(entry, `${c.what}: a line with uri ${JSON.stringify(c.uri)}`).toBeDefined();
      if (c.host !== undefined) expect(entry!.host, c.what).toBe(c.host);
    }
    // Bytes that are not UTF-8, and characters past U+FFFF (the emoji), are left out (json converter, utf8s).
    expect(entries.find((e) => e.uri === `/h/${id}/4`)!.host).toBe('xy\u00e9z');
    const long = entries.find((e) => typeof e.uri === 'string' && e.uri.startsWith(`/h/${id}/5/`))!;
    expect(long.uri).toBe(`/h/${id}/5/${'"'.repeat(400 - `/h/${id}/5/`.length)}`);
    expect(long.host).toBe('\x01'.repeat(100));
    // What HAProxy refuses while parsing is still a JSON line, of the error format: status 400.
    expect(entries.filter((e) => e.type === 'error' && e.status === 400).length).toBeGreaterThanOrEqual(4);
    expect(JSON.stringify(lb.logs)).not.toContain(`/h/${id}`);
  });

  it('writes a JSON line per TCP connection', async () => {
    const lb = lbs.json!;
    const payload = Buffer.from(`tcp-${randomUUID()}`);
    const back = await waitFor(() => tcpRoundTrip(tcpPort, payload), { timeoutMs: 5000, what: 'an echo through the TCP service' });
    expect(back.equals(payload)).toBe(true);
    const entry = await waitFor(
      () =>
        linesOf(lb)
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((e) => e.type === 'tcp'),
      {
        timeoutMs: 5000,
        what: 'a tcp access-log line',
      },
    );
    expect(entry).toMatchObject({ frontend: 'tcp-echo', backend: 'tcp-echo', server: 'one', client_ip: '127.0.0.1', retries: '0' });
    expect(entry.request_bytes).toBe(payload.length);
    expect(entry.response_bytes).toBe(payload.length);
    expect(entry.termination_state).toMatch(/^[-A-Za-z]{2}$/);
  });

  it("writes nothing else to stdout but HAProxy's plain-text notices of each proxy a worker stops (the TCP service made a reload) and of a TCP service's server changing state (put in service by the first probe)", () => {
    const other = linesOf(lbs.json!).filter((l) => !l.startsWith('{'));
    expect(other.length).toBeGreaterThan(0);
    for (const line of other) expect(line).toMatch(/^Proxy \S+ stopped \(cumulated conns: FE: \d+, BE: \d+\)\.$|^Server tcp-\S+ is (?:UP|DOWN), /);
  });

  it("leaves HAProxy's messages to the controller's log, at their level: a server going down", async () => {
    const lb = lbs.json!;
    await lb.put('services/web/upstreams/gone', '127.0.0.1:1');
    const down = await waitFor(() => lb.logs.find((l) => l.component === 'haproxy' && /Server http-web\/gone is DOWN/.test(String(l.haproxy))), {
      timeoutMs: 15_000,
      what: "the DOWN message in the controller's log",
    });
    expect(down.level).toBe(40);
    await lb.del('services/web/upstreams/gone');
    expect(lb.haproxyStdout()).not.toContain('is DOWN');
  });
});

describe('KONTENA_LB_ACCESS_LOG=text (the default) and off', () => {
  it("text: HAProxy's httplog line on its stdout, not in the controller's log; off: no line at all", async () => {
    const id = randomUUID();
    const path = `/text/${id}`;
    expect((await get(lbs.off!.httpPort, path, HOST)).status).toBe(200);
    expect((await get(lbs.text!.httpPort, path, HOST)).status).toBe(200);
    const line = await lineWith(lbs.text!, id);
    expect(line).toMatch(
      new RegExp(
        `^127\\.0\\.0\\.1:\\d+ \\[[^\\]]+\\] http http-web/one \\d+/\\d+/\\d+/\\d+/\\d+ 200 \\d+ - - ---- \\d+/\\d+/\\d+/\\d+/0 0/0 "GET ${path} HTTP/1\\.1"$`,
      ),
    );
    expect(JSON.stringify(lbs.text!.logs)).not.toContain(id);
    // The off LB had the request first; the text LB's line is written by now, so would its be.
    expect(lbs.off!.haproxyStdout()).toBe('');
    expect(JSON.stringify(lbs.off!.logs)).not.toContain(id);
  });
});
