import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { caBundleOf, caStoreKey, type CaStore } from '../../src/tls/ca-bundles.js';
import { makeCa } from '../support/certs.js';
import { parseAndRender, testRenderSettings } from '../support/render-check.js';
import { foreignLines, templateLinePatterns } from '../support/template-lines.js';

// Property tests over random entry sets, valid and hostile mixed: whatever the model lets through,
// the rendered config holds only line shapes the templates write, and HAProxy accepts it.
// custom_settings are left out of the generator: they are raw HAProxy lines by design (the
// documented exception, isolated by the controller when HAProxy rejects them).

const HOSTILE = [
  '\n',
  '\r',
  '\r\n',
  '#',
  '"',
  "'",
  '\\',
  ' ',
  '\t',
  '\u0000',
  '\u0007',
  '\u001b',
  '\u007f',
  '{{',
  '}}',
  '{{#each x}}',
  '{{this}}',
  '\u0435',
  '\u2028',
  '\uff0e',
  ' if TRUE',
  '\n    use_backend http-x if TRUE',
  '%[src]',
  '${HOME}',
  '$HOME',
  ',',
  ':',
  '/',
  '*.',
  '..',
  '-',
];
const fragment = fc.oneof(fc.constantFrom(...HOSTILE), fc.stringMatching(/^[a-z0-9]{1,8}$/), fc.string({ maxLength: 6, unit: 'binary' }));
const junk = fc.array(fragment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join(''));
const label = fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/);
const name = fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[a-z][a-z0-9._-]{0,6}[a-z0-9]$/) }, { weight: 1, arbitrary: junk });
const host = fc.oneof(
  { weight: 4, arbitrary: fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => `${l.join('.')}.test`) },
  { weight: 1, arbitrary: label.map((l) => `*.${l}.test`) },
  { weight: 2, arbitrary: junk },
);
const list = <T extends string>(item: fc.Arbitrary<T>, max: number) => fc.array(item, { minLength: 1, maxLength: max }).map((l) => l.join(','));
const urlPath = fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^\/[a-z0-9._~-]{0,6}(\/[a-z0-9]{1,4})?$/) }, { weight: 1, arbitrary: junk });
const port = fc.integer({ min: 1, max: 65535 }).map(String);
const upstream = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.integer({ min: 1, max: 254 }), fc.integer({ min: 1024, max: 65535 })).map(([ip, p]) => `127.0.0.${ip}:${p}`) },
  { weight: 1, arbitrary: fc.integer({ min: 1024, max: 65535 }).map((p) => `[::1]:${p}`) },
  { weight: 2, arbitrary: junk },
);
const orJunk = (good: fc.Arbitrary<string>) => fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: junk });
/** weights/<instance> (issue 15), for some instances. */
const instanceWeight = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: orJunk(fc.integer({ min: 0, max: 256 }).map(String)) },
);

const HTTP_FIELDS: Record<string, fc.Arbitrary<string>> = {
  virtual_hosts: orJunk(list(host, 4)),
  virtual_path: orJunk(list(urlPath, 3)),
  keep_virtual_path: orJunk(fc.constantFrom('true', 'false')),
  balance: orJunk(fc.constantFrom('roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'uri', 'random', 'url_param q', 'hdr(host)')),
  health_check_uri: orJunk(fc.stringMatching(/^\/[a-z0-9]{0,6}(\?[a-z]=[0-9])?$/)),
  health_check_port: orJunk(port),
  cookie: orJunk(fc.constantFrom('', 'cookie JSESSIONID prefix nocache', 'cookie SRV insert indirect nocache', 'cookie X rewrite')),
  ssl_redirect: orJunk(fc.constantFrom('true', 'false')),
  hsts: orJunk(fc.integer({ min: 0, max: 63_072_000 }).map(String)),
  basic_auth_secrets: orJunk(fc.constantFrom('user admin insecure-password pw1', 'user ops insecure-password x2\nuser dev insecure-password y3')),
  // Per-client limits (issue 15).
  rate_limit: orJunk(fc.tuple(fc.integer({ min: 1, max: 1_000_000 }), fc.constantFrom('500ms', '1s', '10s', '1m', '60m', '1h')).map(([n, p]) => `${n}/${p}`)),
  conn_limit: orJunk(fc.integer({ min: 1, max: 100_000 }).map(String)),
  // issue 15 routing keys
  timeout_server: orJunk(fc.constantFrom('1ms', '30s', '2m', '24h', '25h', '0s', '30')),
  timeout_connect: orJunk(fc.constantFrom('500ms', '5s', '1h')),
  // `@other` becomes the name of another service of the set (entrySet), so that canaries render.
  canary: orJunk(fc.constantFrom('@other:10', '@other:0', '@other:100', 'x:50', '@other:101')),
  canary_header: orJunk(fc.constantFrom('X-Canary:1', 'X-Try:always', 'Bad Name:1')),
  backend_protocol: orJunk(fc.constantFrom('http', 'h2', 'https', 'https', 'h2c')),
  backend_verify: orJunk(fc.constantFrom('none', 'required')),
  retry_on: orJunk(fc.constantFrom('conn-failure', 'conn-failure, empty-response 503', 'all-retryable-errors', 'none', 'none 503', '599')),
  // Client certificates (issue 16) and backend_ca (issue 15): `ok` names a bundle of the store
  // below, `missing` none (the service is closed); junk is rejected as a name.
  client_ca: orJunk(fc.constantFrom('ok', 'missing')),
  client_verify: orJunk(fc.constantFrom('required', 'optional', 'none')),
  client_crl: orJunk(fc.constantFrom('missing')),
  backend_ca: orJunk(fc.constantFrom('ok', 'missing')),
};
const addresses = orJunk(
  list(
    fc.oneof(
      fc.ipV4(),
      fc.ipV4().map((a) => `${a}/${a.length % 33}`),
      fc.ipV6(),
      fc.ipV6().map((a) => `${a}/${a.length % 129}`),
    ),
    4,
  ),
);
const headerLine = fc.oneof(
  fc.tuple(fc.constantFrom('set', 'add'), fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,8}$/), fc.stringMatching(/^[ -&(-[\]-~]{1,12}$/)).map((p) => p.join(' ')),
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,8}$/).map((n) => `del ${n}`),
);
const headerLines = orJunk(fc.array(orJunk(headerLine), { minLength: 1, maxLength: 3 }).map((l) => l.join('\n')));
HTTP_FIELDS.request_headers = headerLines;
HTTP_FIELDS.response_headers = headerLines;
HTTP_FIELDS.cors_origins = orJunk(
  fc.oneof(
    fc.constant('*'),
    list(
      fc.tuple(fc.constantFrom('http', 'https'), label, fc.constantFrom('', ':3000')).map(([s, h, p]) => `${s}://${h}.test${p}`),
      3,
    ),
  ),
);
HTTP_FIELDS.cors_methods = orJunk(list(fc.constantFrom('GET', 'post', 'PUT', 'DELETE', 'OPTIONS'), 3));
HTTP_FIELDS.cors_headers = orJunk(list(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,8}$/), 3));
HTTP_FIELDS.compression = orJunk(fc.constantFrom('true', 'false'));
HTTP_FIELDS.ip_allow = addresses;
HTTP_FIELDS.ip_deny = addresses;
const TCP_FIELDS: Record<string, fc.Arbitrary<string>> = {
  external_port: orJunk(fc.integer({ min: 20_000, max: 30_000 }).map(String)),
  balance: HTTP_FIELDS.balance!,
  ip_allow: addresses,
  ip_deny: addresses,
  conn_limit: HTTP_FIELDS.conn_limit!,
  timeout_server: HTTP_FIELDS.timeout_server!,
  timeout_connect: HTTP_FIELDS.timeout_connect!,
};

const fieldsOf = (fields: Record<string, fc.Arbitrary<string>>) =>
  fc.record(
    Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: v })])),
  );

const service = fc.record({
  tcp: fc.boolean(),
  name,
  http: fieldsOf(HTTP_FIELDS),
  tcpFields: fieldsOf(TCP_FIELDS),
  upstreams: fc.array(fc.tuple(name, upstream, instanceWeight), { minLength: 1, maxLength: 3 }),
});

const entrySet = (maxServices: number) =>
  fc.array(service, { minLength: Math.floor(maxServices / 2), maxLength: maxServices }).map((services) => {
    const entries = new Map<string, string>();
    for (const s of services) {
      const base = `${s.tcp ? 'tcp-services' : 'services'}/${s.name}`;
      const other = services.find((o) => !o.tcp && o.name !== s.name)?.name ?? s.name;
      for (const [field, value] of Object.entries(s.tcp ? s.tcpFields : s.http)) {
        if (value !== undefined) entries.set(`${base}/${field}`, field === 'canary' ? value.replace('@other', other) : value);
      }
      for (const [instance, address, weight] of s.upstreams) {
        entries.set(`${base}/upstreams/${instance}`, address);
        if (weight !== undefined) entries.set(`${base}/weights/${instance}`, weight);
      }
    }
    return entries;
  });

// One real CA, stored as both a client CA and a backend CA named `ok`.
const caPem = (await makeCa('fuzz CA')).certPem;
const cas: CaStore = {
  bundles: new Map((['client-ca', 'backend-ca'] as const).map((kind) => [caStoreKey(kind, 'ok'), caBundleOf(kind, 'ok', `${kind}s/ok`, caPem)])),
  rejected: [],
};

const patterns = templateLinePatterns();
const plain = testRenderSettings();
const withTls = testRenderSettings({ tls: true });

describe('rendering random entry sets', () => {
  it('every rendered config holds only line shapes the templates write (2,000 sets)', () => {
    fc.assert(
      fc.property(entrySet(6), fc.boolean(), (entries, tls) => {
        const { config } = parseAndRender(entries, tls ? withTls : plain, undefined, cas);
        expect(foreignLines(config, patterns)).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });

  it('HAProxy accepts every rendered config (haproxy -c on 40 larger sets)', async () => {
    const sets = fc.sample(entrySet(25), { numRuns: 40, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 100_000) });
    const failures: string[] = [];
    let services = 0;
    let rendered = '';
    const check = async (entries: Map<string, string>, i: number) => {
      const { parsed, config, caFiles } = parseAndRender(entries, plain, undefined, cas);
      services += parsed.state.http.length + parsed.state.tcp.length;
      for (const { file, pem } of caFiles) {
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, pem);
      }
      rendered += config;
      const file = path.join(plain.stateDir, `fuzz-${i}.cfg`);
      await writeFile(file, config);
      const result = await execa('haproxy', ['-c', '-f', file], { reject: false, all: true, timeout: 20_000 });
      if (result.exitCode !== 0)
        failures.push(
          `${file}: ${String(result.all)
            .split('\n')
            .filter((l) => /ALERT/.test(l))
            .slice(0, 3)
            .join(' | ')}\nentries: ${JSON.stringify([...entries])}`,
        );
    };
    for (let i = 0; i < sets.length; i += 2) await Promise.all(sets.slice(i, i + 2).map((entries, j) => check(entries, i + j)));
    expect(failures).toEqual([]);
    expect(services).toBeGreaterThan(100); // the generator really produces services HAProxy has to parse
    // ...and the policies' lines among them, so haproxy -c really checked each kind at least once.
    for (const line of [
      'acl ip_allowed src',
      'stick-table type ipv6',
      'compression algo',
      'http-response ',
      'timeout server',
      ' proto h2',
      'ssl verify required ca-file',
    ]) {
      expect(rendered, line).toContain(line);
    }
  }, 60_000);
});
