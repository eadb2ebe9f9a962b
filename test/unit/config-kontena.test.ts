import { rmSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createRenderer } from '../../src/render/render.js';
import { testRenderSettings } from '../support/render-check.js';
import { DEFAULT_CIPHERS, OLD_CLIENT_CIPHERS } from '../../src/settings/tls.js';
import type { SyslogTarget } from '../../src/settings/syslog-target.js';

// The Kontena load balancer's own settings, read as it read them: LOG_LEVEL numbers and DEBUG,
// SYSLOG_TARGET (the arguments of HAProxy's `log`), and the TLS minimum version.
const load = (env: Record<string, string>) => loadConfig({ KONTENA_SERVICE_NAME: 'lb', ...env }, { checkFilesystem: false });

function refusal(env: Record<string, string>): string {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`${JSON.stringify(env)} was accepted`);
}

describe('LOG_LEVEL and DEBUG', () => {
  it.each([
    ['0', 'debug'],
    ['1', 'info'],
    ['2', 'warn'],
    ['3', 'error'],
    ['4', 'fatal'],
    ['5', 'fatal'],
    ['debug', 'debug'],
    ['WARN', 'warn'],
    ['trace', 'trace'],
    ['silent', 'silent'],
  ])('LOG_LEVEL=%s is %s', (raw, level) => {
    expect(load({ LOG_LEVEL: raw }).logLevel).toBe(level);
  });

  it('defaults to info', () => {
    expect(load({}).logLevel).toBe('info');
  });

  it.each(['1', 'true', 'yes', 'anything'])('DEBUG=%s turns debug on, whatever LOG_LEVEL says (except trace)', (debug) => {
    expect(load({ DEBUG: debug }).logLevel).toBe('debug');
    expect(load({ DEBUG: debug, LOG_LEVEL: '3' }).logLevel).toBe('debug');
    expect(load({ DEBUG: debug, LOG_LEVEL: 'trace' }).logLevel).toBe('trace');
  });

  it.each(['', 'false', '0', 'no', 'off', 'FALSE'])('DEBUG=%j leaves LOG_LEVEL in charge', (debug) => {
    expect(load({ DEBUG: debug, LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
  });

  it.each(['6', '-1', '1.5', 'verbose', 'info debug'])('refuses LOG_LEVEL=%s with one line, even with DEBUG set', (raw) => {
    expect(refusal({ LOG_LEVEL: raw })).toBe(
      `LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent or a number 0-5 (0 debug, 1 info, 2 warn, 3 error, 4 and 5 fatal), got ${JSON.stringify(raw)}`,
    );
    expect(refusal({ LOG_LEVEL: raw, DEBUG: '1' })).toMatch(/^LOG_LEVEL must be/);
  });
});

describe('SYSLOG_TARGET', () => {
  it('is off unless set', () => {
    expect(load({}).syslogTarget).toBeUndefined();
  });

  it.each([
    ['127.0.0.1', { host: '127.0.0.1', ipv6: false, port: 514, facility: 'local1', level: 'info' }],
    ['127.0.0.1 local1 info', { host: '127.0.0.1', port: 514, facility: 'local1', level: 'info' }],
    ['10.0.0.5:5140 local0', { host: '10.0.0.5', port: 5140, facility: 'local0', level: undefined }],
    ['syslog.Example.com:514 daemon notice err', { host: 'syslog.example.com', port: 514, facility: 'daemon', level: 'notice', minLevel: 'err' }],
    ['[2001:db8::1]:1514 local7', { host: '2001:db8::1', ipv6: true, port: 1514, facility: 'local7' }],
    ['[::1] local2', { host: '::1', ipv6: true, port: 514 }],
    // Unbracketed IPv6: HAProxy (and so the Kontena image) read the text after the last colon as the port.
    ['2001:db8::1:5514 local0', { host: '2001:db8::1', ipv6: true, port: 5514 }],
    ['::1: local0', { host: '::1', ipv6: true, port: 514 }],
    ['udp@10.0.0.5 local0', { protocol: 'udp', host: '10.0.0.5' }],
    ['tcp@logs.example.com:6514 local0 info', { protocol: 'tcp', host: 'logs.example.com', port: 6514, level: 'info' }],
    ['udp6@[2001:db8::2]:514 user', { protocol: 'udp6', host: '2001:db8::2', ipv6: true, facility: 'user' }],
    ['tcp4@127.0.0.1', { protocol: 'tcp4', facility: 'local1', level: 'info' }],
    ['127.0.0.1:514 len 4096 format rfc5424 local0 info', { length: 4096, format: 'rfc5424', facility: 'local0', level: 'info' }],
    ['  10.0.0.5\tlocal3  ', { host: '10.0.0.5', facility: 'local3' }],
  ])('reads %j into typed fields', (raw, expected) => {
    expect(load({ SYSLOG_TARGET: raw }).syslogTarget).toMatchObject(expected);
  });

  it.each([
    ['an address HAProxy would not read', 'not_a_host!', /^SYSLOG_TARGET must start with an IPv4 address, an IPv6 address in brackets or a host name/],
    [
      'a line break (a second config line)',
      '127.0.0.1 local0\n    stats socket /tmp/evil level admin',
      /^SYSLOG_TARGET has more words|^SYSLOG_TARGET level must be/,
    ],
    ['an extra directive after the levels', '127.0.0.1 local0 info info extra', /^SYSLOG_TARGET has more words than an address, a facility and two levels/],
    ['an unknown facility', '127.0.0.1 local8', /^SYSLOG_TARGET facility must be one of kern, user, .*, got "local8"$/],
    ['an unknown level', '127.0.0.1 local0 verbose', /^SYSLOG_TARGET level must be one of emerg, .*, got "verbose"$/],
    ['an unknown minimum level', '127.0.0.1 local0 info loud', /^SYSLOG_TARGET minimum level must be one of/],
    ['a port out of range', '127.0.0.1:70000 local0', /^SYSLOG_TARGET has a port that is not a number between 1 and 65535: "70000"$/],
    ['a port that is not a number', 'logs.example.com:syslog', /^SYSLOG_TARGET has a port that is not a number/],
    ['an unknown address prefix', 'unix@/dev/log local0', /^SYSLOG_TARGET address prefix must be one of udp, udp4, udp6, tcp, tcp4, tcp6, got "unix"$/],
    ['a unix socket path', '/dev/log local0', /^SYSLOG_TARGET must start with an IPv4 address/],
    ['udp4@ with an IPv6 address', 'udp4@[::1] local0', /^SYSLOG_TARGET uses udp4@ \(IPv4 only\) with an IPv6 address$/],
    ['tcp6@ with an IPv4 address', 'tcp6@10.0.0.1 local0', /^SYSLOG_TARGET uses tcp6@ \(IPv6 only\) with an IPv4 address$/],
    ['brackets around a host name', '[logs.example.com]:514', /^SYSLOG_TARGET has brackets around something that is not an IPv6 address/],
    ['an IPv6 zone id', '[fe80::1%eth0]:514', /^SYSLOG_TARGET must start with/],
    ['a line length out of range', '127.0.0.1 len 10 local0', /^SYSLOG_TARGET len must be followed by a line length between 80 and 65535, got "10"$/],
    ['an unknown format', '127.0.0.1 format json local0', /^SYSLOG_TARGET format must be one of local, rfc3164, .*, got "json"$/],
    ['format before len (HAProxy refuses that order)', '127.0.0.1 format raw len 200 local0', /^SYSLOG_TARGET facility must be one of .*got "len"$/],
    ['a quote', '127.0.0.1 "local0"', /^SYSLOG_TARGET facility must be one of/],
  ])('refuses %s with one line saying what to fix', (_label, raw, message) => {
    const text = refusal({ SYSLOG_TARGET: raw });
    expect(text).toMatch(message);
    expect(text).not.toContain('\n');
  });
});

describe('SYSLOG_TARGET against hostile values', () => {
  const render = createRenderer();
  const settings = testRenderSettings();
  afterAll(() => rmSync(settings.stateDir, { recursive: true, force: true }));
  const LOG_LINE =
    /^ {4}log (?:(?:udp|tcp)[46]?@)?(?:\[[0-9a-f:.]+\]|[0-9a-z.-]+):\d{1,5}(?: len \d+)?(?: format [a-z0-9]+)? [a-z0-9]+(?: [a-z]+(?: [a-z]+)?)?$/;
  const piece = fc.oneof(
    fc.constantFrom(
      '127.0.0.1',
      '[::1]:514',
      'udp@',
      'tcp@',
      'logs.example.com',
      ':514',
      ' ',
      '\t',
      'local0',
      'info',
      'len',
      '200',
      'format',
      'raw',
      '\n',
      '\r',
      '#',
      '"',
      "'",
      '\\',
      '%[src]',
      '${HOME}',
      '\n    stats socket /tmp/x level admin',
      '\u0000',
      '\u2028',
      'é',
      '[',
      ']',
      '@',
      ':',
    ),
    fc.string({ maxLength: 6 }),
  );
  it('either stops edgelb with one line or renders exactly one log line of the expected shape', () => {
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 8 }), (parts) => {
        const raw = parts.join('');
        let syslog: SyslogTarget | undefined;
        try {
          syslog = load({ SYSLOG_TARGET: raw }).syslogTarget;
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as Error).message).not.toMatch(/[\n\r]/);
          return;
        }
        if (syslog === undefined) return; // only whitespace: not set
        const global = render({ http: [], tcp: [] }, { ...settings, syslog }).split('\ndefaults\n')[0]!;
        const logLines = global.split('\n').filter((l) => /^\s*log /.test(l));
        // The only log line of the global section (the access log's stdout line is the frontends').
        expect(logLines).toHaveLength(1);
        expect(logLines[0]).toMatch(LOG_LINE);
      }),
      { numRuns: 500 },
    );
  });
});

describe('KONTENA_LB_SSL_MIN_VERSION', () => {
  it('defaults to TLSv1.2 with the intermediate ciphers', () => {
    expect(load({})).toMatchObject({ sslMinVersion: 'TLSv1.2', sslCiphers: DEFAULT_CIPHERS });
  });

  it.each([
    ['TLSv1.0', 'TLSv1.0', OLD_CLIENT_CIPHERS],
    ['TLSv1', 'TLSv1.0', OLD_CLIENT_CIPHERS],
    ['tlsv1.1', 'TLSv1.1', OLD_CLIENT_CIPHERS],
    ['TLSv1.2', 'TLSv1.2', DEFAULT_CIPHERS],
    ['TLSv1.3', 'TLSv1.3', DEFAULT_CIPHERS],
  ])('%s: minimum %s, and a default cipher list that works with it', (raw, version, ciphers) => {
    expect(load({ KONTENA_LB_SSL_MIN_VERSION: raw })).toMatchObject({ sslMinVersion: version, sslCiphers: ciphers });
  });

  it("the list for TLS 1.0/1.1 clients lowers OpenSSL 3's security level, without which they cannot connect", () => {
    expect(OLD_CLIENT_CIPHERS).toMatch(/:@SECLEVEL=0$/);
    expect(OLD_CLIENT_CIPHERS).toContain('ECDHE-RSA-AES128-SHA');
  });

  it('keeps an explicit KONTENA_LB_SSL_CIPHERS as it is', () => {
    expect(load({ KONTENA_LB_SSL_MIN_VERSION: 'TLSv1.0', KONTENA_LB_SSL_CIPHERS: 'ECDHE-RSA-AES128-SHA' }).sslCiphers).toBe('ECDHE-RSA-AES128-SHA');
  });

  it.each(['SSLv3', 'TLSv1.4', '1.2', 'TLSv1.2 TLSv1.3'])('refuses %s with one line', (raw) => {
    expect(refusal({ KONTENA_LB_SSL_MIN_VERSION: raw })).toBe(
      `KONTENA_LB_SSL_MIN_VERSION must be one of TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3, got ${JSON.stringify(raw)}`,
    );
  });
});
