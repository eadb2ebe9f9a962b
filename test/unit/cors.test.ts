import { describe, expect, it } from 'vitest';
import { parseCorsHeaders, parseCorsMethods, parseCorsOrigins } from '../../src/model/cors.js';

describe('cors_origins, cors_methods, cors_headers', () => {
  it('reads * or a list of origins, lower-cased, duplicates dropped', () => {
    expect(parseCorsOrigins(' * ', 'cors_origins')).toEqual({ any: true });
    expect(parseCorsOrigins('https://App.Example.com, http://localhost:3000,https://app.example.com,http://10.0.0.1:8080', 'cors_origins')).toEqual({
      origins: ['https://app.example.com', 'http://localhost:3000', 'http://10.0.0.1:8080'],
    });
  });

  it.each([
    ['', /is empty/],
    ['*, https://a.test', /stands alone/],
    ['app.example.com', /not an origin/],
    ['https://app.example.com/', /not an origin/],
    ['https://app.example.com/path', /not an origin/],
    ['ftp://app.example.com', /not an origin/],
    ['https://*.example.com', /not an origin/],
    ['https://app.example.com:0', /not an origin/],
    ['https://app.example.com:99999', /not an origin/],
    ['https://user@app.example.com', /not an origin/],
    ['https://app.example.com if TRUE', /not an origin/],
    ['https:// app.example.com', /not an origin/],
    ['https://app .example.com', /not an origin/],
    ['https://app.example.com\t', /control/],
    ['https://app.example.com#x', /not an origin/],
    ['https://%[src]', /not an origin/],
    ["https://a'b.test", /not an origin/],
    ['https://a.test\nbackend evil', /control/],
    [Array.from({ length: 101 }, (_, i) => `https://a${i}.test`).join(','), /more than 100 origins/],
  ])('refuses origins %j', (raw, reason) => {
    expect(() => parseCorsOrigins(raw, 'cors_origins')).toThrow(reason);
  });

  it('methods: a fixed set, upper-cased', () => {
    expect(parseCorsMethods('get, Post,DELETE', 'cors_methods')).toEqual(['GET', 'POST', 'DELETE']);
    expect(() => parseCorsMethods('GET,TRACE', 'cors_methods')).toThrow(/"TRACE" is not one of/);
    expect(() => parseCorsMethods('GET POST', 'cors_methods')).toThrow(/is not one of/);
    expect(() => parseCorsMethods('%[src]', 'cors_methods')).toThrow(/is not one of/);
  });

  it('headers: header names only', () => {
    expect(parseCorsHeaders('Content-Type, X-Requested-With', 'cors_headers')).toEqual(['Content-Type', 'X-Requested-With']);
    for (const bad of ['X A', 'X#A', "X'A", 'X%A', 'X:A', '"X"']) expect(() => parseCorsHeaders(bad, 'cors_headers')).toThrow(/not a header name/);
  });
});
