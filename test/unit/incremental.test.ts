import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reparseUpstreamChanges, reuseUnchanged } from '../../src/model/incremental.js';
import { parseEntries } from '../../src/model/parse.js';
import { createSectionRenderer } from '../../src/render/render.js';
import type { RenderSettings } from '../../src/render/view.js';

const options = { reservedPorts: [80] };
const base: Record<string, string> = {
  'services/web/virtual_hosts': 'web.test',
  'services/web/upstreams/web-1': '10.0.0.1:80',
  'services/api/virtual_path': '/api',
  'services/api/upstreams/api-1': '10.0.0.2:80',
  'services/bad/virtual_hosts': 'bad..host',
  'services/bad/upstreams/bad-1': '10.0.0.3:80',
  'tcp-services/db/external_port': '5432',
  'tcp-services/db/upstreams/db-1': '10.0.1.1:5432',
};
const previousOf = (entries: Record<string, string>) => {
  const map = new Map(Object.entries(entries));
  return { entries: map, result: parseEntries(map, options) };
};

describe('reparseUpstreamChanges', () => {
  it('gives what a full parse gives, and keeps the objects of untouched services', () => {
    const previous = previousOf(base);
    const next = new Map(previous.entries);
    next.set('services/web/upstreams/web-2', '10.0.0.9:80');
    next.set('tcp-services/db/upstreams/db-1', '10.0.1.2:5432');
    const quick = reparseUpstreamChanges(previous, next, options);
    expect(quick).toBeDefined();
    expect(quick).toEqual(parseEntries(next, options));
    const api = (s: { http: readonly { name: string }[] }) => s.http.find((x) => x.name === 'api');
    expect(api(quick!.state)).toBe(api(previous.result.state));
  });

  it.each([
    ['a setting', 'services/web/balance', 'leastconn'],
    ['a new service made of an upstream only', 'services/fresh/upstreams/f-1', '10.0.0.7:80'],
    ['an upstream of a service with a rejected entry', 'services/bad/upstreams/bad-2', '10.0.0.8:80'],
    ['an invalid upstream', 'services/web/upstreams/web-2', 'not an address'],
  ])('leaves %s to the full parse', (_, key, value) => {
    const previous = previousOf(base);
    const next = new Map(previous.entries);
    next.set(key, value);
    expect(reparseUpstreamChanges(previous, next, options)).toBeUndefined();
  });

  it('property: whenever it answers, it answers exactly what parseEntries does', () => {
    const upstreamKey = fc.tuple(fc.constantFrom('services/web', 'services/api', 'tcp-services/db', 'services/new'), fc.constantFrom('a', 'b', 'web-1', 'db-1'))
      .map(([service, instance]) => `${service}/upstreams/${instance}`);
    const value = fc.oneof(fc.constantFrom('10.0.0.5:80', '10.0.0.6:8080', '[fd00::1]:80', 'host.internal:81', 'bad'), fc.string({ maxLength: 12 }));
    const change = fc.tuple(upstreamKey, fc.option(value, { nil: undefined }));
    fc.assert(
      fc.property(fc.array(change, { maxLength: 6 }), (changes) => {
        const previous = previousOf(base);
        const next = new Map(previous.entries);
        for (const [key, v] of changes) {
          if (v === undefined) next.delete(key);
          else next.set(key, v);
        }
        const quick = reparseUpstreamChanges(previous, next, options);
        if (quick) expect(quick).toEqual(parseEntries(next, options));
      }),
      { numRuns: 300 },
    );
  });
});

describe('reuseUnchanged', () => {
  it('hands back the previous object of every service that did not change, so the renderer cache hits', () => {
    const before = parseEntries(new Map(Object.entries(base)), options);
    const after = reuseUnchanged(before.state, parseEntries(new Map(Object.entries({ ...base, 'services/web/balance': 'leastconn' })), options));
    expect(after.state.http.find((s) => s.name === 'api')).toBe(before.state.http.find((s) => s.name === 'api'));
    expect(after.state.http.find((s) => s.name === 'web')).not.toBe(before.state.http.find((s) => s.name === 'web'));
  });
});

describe('createSectionRenderer', () => {
  const settings = {
    httpPort: 8080, adminSocket: '/s', errorsDir: '/e', challengeMap: '/m', globalSettings: [], defaultsSettings: [],
    hardStopAfter: '1h', serverStateFile: '/ss', checkInterval: '2000ms', checkFastInterval: '250ms', acceptProxy: false, tunnelTimeout: '1h', accessLog: 'text',
  } satisfies RenderSettings;

  it('renders from its caches exactly what a fresh renderer renders', () => {
    const cached = createSectionRenderer();
    const before = reuseUnchanged(undefined, parseEntries(new Map(Object.entries(base)), options));
    cached(before.state, settings);
    const nextEntries = { ...base, 'services/web/upstreams/web-2': '10.0.0.9:80', 'services/api/virtual_path': '/v2' };
    const after = reuseUnchanged(before.state, parseEntries(new Map(Object.entries(nextEntries)), options));
    expect(cached(after.state, settings).text).toBe(createSectionRenderer()(after.state, settings).text);
    expect(cached(after.state, { ...settings, checkInterval: '5000ms' }).text).toContain('inter 5000ms');
  });
});
