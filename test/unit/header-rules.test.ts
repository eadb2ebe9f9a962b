import { describe, expect, it } from 'vitest';
import { parseHeaderRules } from '../../src/model/header-rules.js';
import { headerRulesView } from '../../src/render/policy-view.js';

describe('request_headers, response_headers', () => {
  it('reads set, add and del lines, CRLF and blank lines included', () => {
    expect(parseHeaderRules('set X-Env production\r\n\n  add Cache-Control  no-cache, no-store \ndel\tServer', 'request_headers')).toEqual([
      { action: 'set', name: 'X-Env', value: 'production' },
      { action: 'add', name: 'Cache-Control', value: 'no-cache, no-store' },
      { action: 'del', name: 'Server' },
    ]);
    expect(parseHeaderRules('', 'request_headers')).toEqual([]);
  });

  it('keeps a value with #, $, double quotes and % as written; the view doubles each % for the log-format string', () => {
    const rules = parseHeaderRules('set X-Odd a#b "c" $HOME ${HOME} %[src] 50%', 'k');
    expect(rules[0]?.value).toBe('a#b "c" $HOME ${HOME} %[src] 50%');
    expect(headerRulesView(rules)).toEqual([{ action: 'set', name: 'X-Odd', quoted: 'a#b "c" $HOME ${HOME} %%[src] 50%%' }]);
  });

  it.each([
    ['replace X-A b', /is not "set <Name> <value>"/],
    ['set X-A', /set needs a value/],
    ['add X-A   ', /add needs a value/],
    ['del X-A b', /del takes a header name only/],
    ["set X-A it's", /without "'"/],
    ['set X-A a\\b', /without "'" or '\\'/],
    ['set X-A a\tb', /no tabs/],
    ['set X-A caf\u00e9', /printable ASCII/],
    ['set X-A a\u0000b', /control character/],
    ['set X-A a\u001bb', /control character/],
    ['set X#A b', /header name/],
    ["set X'A b", /header name/],
    ['set X%A b', /header name/],
    ['set X$A b', /header name/],
    ['set X:A b', /header name/],
    ['set "X-A" b', /header name/],
    [`set ${'x'.repeat(65)} b`, /at most 64/],
    ['set Content-Length 0', /HAProxy's to manage/],
    ['del transfer-encoding', /HAProxy's to manage/],
    ['set Connection close', /HAProxy's to manage/],
    ['set X-SSL-Client-DN /CN=admin', /set by edgelb only/],
    ['del x_ssl_client_verify', /set by edgelb only/],
    [`set X-A ${'a'.repeat(1100)}`, /longer than 1024/],
    [Array.from({ length: 51 }, (_, i) => `set X-${i} v`).join('\n'), /more than 50 lines/],
  ])('refuses %j', (raw, reason) => {
    expect(() => parseHeaderRules(raw, 'request_headers')).toThrow(reason);
  });

  it('names the line that is wrong', () => {
    expect(() => parseHeaderRules('set X-A b\nset X-B', 'response_headers')).toThrow(/^response_headers line 2: set needs a value$/);
  });
});
