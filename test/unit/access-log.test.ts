import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { parseEntries } from '../../src/model/parse.js';
import { createRenderer } from '../../src/render/render.js';
import { renderSettingsIn } from '../support/render-settings.js';
import type { RenderSettings } from '../../src/render/render-settings.js';
import type { AccessLogFormat } from '../../src/settings/access-log.js';

// KONTENA_LB_ACCESS_LOG: the setting, and the log lines the templates write for each value.
// What HAProxy writes with them, for real requests, is in test/integration/access-log.test.ts.

const dir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-access-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const load = (env: Record<string, string>) => loadConfig({ KONTENA_SERVICE_NAME: 'lb', ...env }, { checkFilesystem: false });

describe('KONTENA_LB_ACCESS_LOG', () => {
  it('is text by default', () => {
    expect(load({}).accessLog).toBe('text');
  });

  it.each([
    ['text', 'text'],
    ['json', 'json'],
    ['off', 'off'],
    ['JSON', 'json'],
    [' off ', 'off'],
  ])('reads %j as %s', (raw, value) => {
    expect(load({ KONTENA_LB_ACCESS_LOG: raw }).accessLog).toBe(value);
  });

  it.each(['yes', 'false', 'httplog', 'json,text'])('refuses %j with one line saying what to write', (raw) => {
    expect(() => load({ KONTENA_LB_ACCESS_LOG: raw })).toThrow(ConfigError);
    expect(() => load({ KONTENA_LB_ACCESS_LOG: raw })).toThrow(`KONTENA_LB_ACCESS_LOG must be one of text, json, off, got ${JSON.stringify(raw)}`);
  });
});

const settings = (accessLog: AccessLogFormat, extra: Partial<RenderSettings> = {}): RenderSettings =>
  renderSettingsIn(dir, { accessLog, metricsSocket: path.join(dir, 'metrics.sock'), stats: { port: 1000, password: 'secret' }, ...extra });
const state = parseEntries(
  new Map(
    Object.entries({
      'services/web/virtual_hosts': 'www.example.com',
      'services/web/upstreams/a': '10.0.0.1:80',
      'tcp-services/db/external_port': '5432',
      'tcp-services/db/upstreams/a': '10.0.0.2:5432',
    }),
  ),
  { reservedPorts: [8080] },
).state;
const render = createRenderer();

/** The lines of section `header` (e.g. `frontend http`), without the header. */
function section(text: string, header: string): string[] {
  const start = text.indexOf(`\n${header}\n`);
  expect(start, `no section ${header}`).toBeGreaterThan(0);
  const rest = text.slice(start + header.length + 2);
  return rest.slice(0, rest.search(/\n(?! {4})|$/)).split('\n');
}

const TARGET = '    log stdout len 4096 format raw local0 info';

describe('rendered access-log lines', () => {
  it("text: HAProxy's httplog and tcplog, written by each client-facing proxy to its stdout", () => {
    const text = render(state, settings('text'));
    expect(section(text, 'global').join('\n')).not.toMatch(/^ *log /m);
    expect(section(text, 'defaults')).toEqual(expect.arrayContaining(['    log global', '    option httplog', '    option dontlognull']));
    for (const proxy of ['frontend http', 'frontend metrics', 'listen stats', 'listen tcp-db']) expect(section(text, proxy), proxy).toContain(TARGET);
    expect(section(text, 'listen tcp-db')).toContain('    option tcplog');
    expect(section(text, 'frontend metrics')).toContain('    http-request set-log-level silent');
    expect(section(text, 'backend http-web').join('\n')).not.toMatch(/^ *(no )?log /m);
    expect(text).not.toMatch(/log-format/);
  });

  it("json: HAProxy's own log-format, an error-log-format, and the same targets", () => {
    const text = render(state, settings('json'));
    const defaults = section(text, 'defaults');
    expect(defaults.filter((l) => l.startsWith('    log-format \'{"time":')).length).toBe(1);
    expect(defaults.filter((l) => l.startsWith('    error-log-format \'{"time":')).length).toBe(1);
    expect(defaults).toContain('    option dontlognull');
    expect(text).not.toMatch(/option (http|tcp)log/);
    for (const proxy of ['frontend http', 'frontend metrics', 'listen stats', 'listen tcp-db']) expect(section(text, proxy), proxy).toContain(TARGET);
    expect(section(text, 'listen tcp-db').filter((l) => l.startsWith('    log-format \'{"time":'))).toHaveLength(1);
    expect(section(text, 'frontend metrics')).toContain('    http-request set-log-level silent');
  });

  it("off: no access log anywhere, syslog keeps HAProxy's messages through defaults", () => {
    const text = render(state, settings('off', { syslog: { host: '127.0.0.1', ipv6: false, port: 514, facility: 'local1', level: 'info' } }));
    expect(text).not.toMatch(/log stdout|option (http|tcp)log|log-format/);
    for (const proxy of ['frontend http', 'frontend metrics', 'listen stats', 'listen tcp-db']) expect(section(text, proxy), proxy).toContain('    no log');
    expect(section(text, 'global')).toContain('    log 127.0.0.1:514 local1 info');
    expect(section(text, 'defaults')).toContain('    log global');
    expect(section(text, 'defaults')).toContain('    option dontlognull');
  });

  it.each(['text', 'json', 'off'] as const)('%s: HAProxy accepts the config without a warning about logs', async (accessLog) => {
    const file = path.join(dir, `${accessLog}.cfg`);
    writeFileSync(path.join(dir, 'acme.map'), '');
    for (const syslog of [undefined, { host: '127.0.0.1', ipv6: false, port: 514, facility: 'local1', level: 'info' } as const]) {
      writeFileSync(file, render(state, settings(accessLog, { syslog, acceptProxy: true })));
      const result = await execa('haproxy', ['-c', '-f', file], { reject: false, all: true });
      expect(result.all).toContain('Configuration file is valid');
      expect(result.all).not.toMatch(/log format|log address|httplog|tcplog|log-format/i);
    }
  });
});

// Every access-log line must parse as JSON and fit one atomic write (4096 bytes with its
// newline, the `len` of the log target). This fills each variable of the rendered formats with
// its longest value: a client's string at 6 bytes per byte (a control byte becomes \u00XX), the
// longest names edgelb gives (63-character service and instance names), 64-bit counters.
const LONGEST: Record<string, string> = {
  ci: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  cp: '65535',
  ft: `tcp-${'s'.repeat(63)}~`,
  f: `tcp-${'s'.repeat(63)}`,
  b: `http-${'s'.repeat(63)}`,
  s: 'i'.repeat(63),
  ST: '-1',
  B: '18446744073709551615',
  U: '18446744073709551615',
  TR: '-2147483648',
  Tw: '-2147483648',
  Tc: '-2147483648',
  Tr: '-2147483648',
  Ta: '-2147483648',
  Tt: '-2147483648',
  tsc: '----',
  ts: '--',
  rc: '+2147483647',
};

function longestLine(format: string): string {
  return format
    .replace(/%\[([^\]]*)\]/g, (_, expression: string) => {
      if (expression.startsWith('date,utime(')) return '2026-12-31T23:59:59';
      if (expression.startsWith('date_us,')) return '999';
      // fc_err_str: HAProxy's fixed messages (configuration manual 2.6, "fc_err_str"), the longest under 100 characters.
      if (expression.startsWith('fc_err_str,json')) return 'x'.repeat(100);
      const cut = /,bytes\(0,(\d+)\),json\(utf8s\)$/.exec(expression);
      expect(cut, `the client's string ${expression} is cut before the json converter`).not.toBeNull();
      return '\\u0001'.repeat(Number(cut![1]));
    })
    .replace(/%(\w+)/g, (_, name: string) => {
      expect(LONGEST, `the longest value of %${name}`).toHaveProperty(name);
      return LONGEST[name]!;
    });
}

describe('JSON access-log lines', () => {
  const text = render(state, settings('json'));
  const formats = [...text.matchAll(/^ {4}((?:error-)?log-format) '(.*)'$/gm)].map((m) => ({ directive: m[1]!, format: m[2]! }));

  it('are three formats: HTTP, TCP and errors (refused requests, failed connections)', () => {
    expect(formats.map((f) => `${f.directive} ${/"type":"([a-z-]+)"/.exec(f.format)?.[1]}`).sort()).toEqual([
      'error-log-format error',
      'log-format http',
      'log-format tcp',
    ]);
  });

  it.each(['http', 'tcp', 'error'])('%s: parses as JSON, with the documented fields, within 4096 bytes at the longest', (type) => {
    const { format } = formats.find((f) => f.format.includes(`"type":"${type}"`))!;
    const line = longestLine(format);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(Buffer.byteLength(line) + 1).toBeLessThanOrEqual(4096);
    const fields = {
      http: [
        'time',
        'type',
        'client_ip',
        'client_port',
        'frontend',
        'backend',
        'server',
        'method',
        'host',
        'uri',
        'status',
        'response_bytes',
        'request_bytes',
        'request_ms',
        'queue_ms',
        'connect_ms',
        'response_ms',
        'active_ms',
        'total_ms',
        'termination_state',
        'retries',
      ],
      tcp: [
        'time',
        'type',
        'client_ip',
        'client_port',
        'frontend',
        'backend',
        'server',
        'response_bytes',
        'request_bytes',
        'queue_ms',
        'connect_ms',
        'total_ms',
        'termination_state',
        'retries',
      ],
      error: ['time', 'type', 'client_ip', 'client_port', 'frontend', 'status', 'termination_state', 'error'],
    }[type]!;
    expect(Object.keys(parsed)).toEqual(fields);
    expect(parsed.time).toBe('2026-12-31T23:59:59.999Z');
  });
});
