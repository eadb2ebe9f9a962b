import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reparseGroups, reuseUnchanged, SnapshotParser } from '../../src/model/incremental.js';
import { parseEntries } from '../../src/model/parse.js';
import { groupOf } from '../../src/model/snapshot.js';
import { changedServices } from '../../src/model/state-changes.js';
import type { ParseResult } from '../../src/model/types.js';
import { isEmptyPlan, planServers } from '../../src/plan/server-plan.js';
import { createServerArgsRenderer } from '../../src/render/render.js';
import { createSectionRenderer } from '../../src/render/render.js';
import type { RenderSettings } from '../../src/render/render-settings.js';
import { EntryStore } from '../../src/sources/entry-store.js';

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
  'tcp-services/cache/external_port': '6379',
  'tcp-services/cache/upstreams/c-1': '10.0.1.3:6379',
  'certs/web': 'not a certificate',
};
const parse = (entries: ReadonlyMap<string, string>) => parseEntries(entries, options);

/** The quick parse of `next` after `previous`, told the groups that differ. */
function quickParse(previous: ParseResult, before: ReadonlyMap<string, string>, next: ReadonlyMap<string, string>) {
  const groups = new Set([...before, ...next].filter(([key]) => before.get(key) !== next.get(key)).map(([key]) => groupOf(key)));
  const read = (group: string) => new Map([...next].filter(([key]) => groupOf(key) === group));
  return reparseGroups(previous, groups, read, options);
}

describe('reparseGroups', () => {
  it('gives what a full parse gives, and keeps the objects of untouched services', () => {
    const before = new Map(Object.entries(base));
    const previous = parse(before);
    const next = new Map(before);
    next.set('services/web/upstreams/web-2', '10.0.0.9:80');
    next.set('tcp-services/db/upstreams/db-1', '10.0.1.2:5432');
    const quick = quickParse(previous, before, next);
    expect(quick).toBeDefined();
    expect(quick).toEqual(parse(next));
    const api = (s: { http: readonly { name: string }[] }) => s.http.find((x) => x.name === 'api');
    expect(api(quick!.state)).toBe(api(previous.state));
    expect([...changedServices(previous.state, quick!.state)].sort()).toEqual(['http:web', 'tcp:db']);
  });

  it('re-parses a setting of a service that parsed cleanly, not only its instances', () => {
    const before = new Map(Object.entries(base));
    const next = new Map(before);
    next.set('services/web/balance', 'leastconn');
    next.set('tcp-services/db/balance', 'roundrobin');
    expect(quickParse(parse(before), before, next)).toEqual(parse(next));
  });

  it('answers the previous result itself when only keys outside the services changed', () => {
    const before = new Map(Object.entries(base));
    const previous = parse(before);
    const next = new Map(before);
    next.set('certs/web', 'another');
    next.set('acme/challenges/token', 'token.thumb');
    expect(quickParse(previous, before, next)).toBe(previous);
  });

  it.each([
    ['a new service made of an upstream only', 'services/fresh/upstreams/f-1', '10.0.0.7:80'],
    ['an upstream of a service with a rejected entry', 'services/bad/upstreams/bad-2', '10.0.0.8:80'],
    ['an invalid upstream', 'services/web/upstreams/web-2', 'not an address'],
    ['a TCP service moved to another port', 'tcp-services/db/external_port', '5433'],
    ['a stray key in the services directory', 'services/web', 'x'],
    ['a key deeper than a service has', 'services/web/upstreams/a/b', '10.0.0.1:80'],
  ])('leaves %s to the full parse', (_, key, value) => {
    const before = new Map(Object.entries(base));
    const next = new Map(before);
    next.set(key, value);
    expect(quickParse(parse(before), before, next)).toBeUndefined();
  });

  it('leaves a deleted service to the full parse', () => {
    const before = new Map(Object.entries(base));
    const next = new Map([...before].filter(([key]) => !key.startsWith('services/api/')));
    expect(quickParse(parse(before), before, next)).toBeUndefined();
  });

  // Keys of a few services and every kind of field, valid and not: whatever changes, the quick
  // parse either declines or gives exactly parseEntries' result.
  const services = ['services/web', 'services/api', 'services/bad', 'services/new', 'tcp-services/db', 'tcp-services/cache', 'tcp-services/new'];
  const fields = [
    'virtual_hosts',
    'virtual_path',
    'balance',
    'external_port',
    'cookie',
    'health_check_uri',
    'upstreams/a',
    'upstreams/web-1',
    'upstreams/db-1',
    'acme',
    'nonsense',
  ];
  const key = fc.oneof(
    { weight: 9, arbitrary: fc.tuple(fc.constantFrom(...services), fc.constantFrom(...fields)).map(([s, f]) => `${s}/${f}`) },
    { weight: 1, arbitrary: fc.constantFrom('services/web', 'certs/x', 'acme/challenges/t', 'services/web/upstreams/a/b', 'services//upstreams/a') },
  );
  const value = fc.oneof(
    fc.constantFrom(
      '10.0.0.5:80',
      '10.0.0.6:8080',
      '[fd00::1]:80',
      'host.internal:81',
      'bad',
      '5432',
      '6379',
      '7000',
      '80',
      'x.test',
      '/p',
      'true',
      'leastconn',
      '',
    ),
    fc.string({ maxLength: 12 }),
  );
  const change = fc.tuple(key, fc.option(value, { nil: undefined }));

  it('property: whenever it answers, it answers exactly what parseEntries does', () => {
    let answered = 0;
    fc.assert(
      fc.property(fc.array(change, { maxLength: 6 }), (changes) => {
        const before = new Map(Object.entries(base));
        const next = new Map(before);
        for (const [k, v] of changes) {
          if (v === undefined) next.delete(k);
          else next.set(k, v);
        }
        const quick = quickParse(parse(before), before, next);
        if (quick) answered++;
        if (quick) expect(quick).toEqual(parse(next));
      }),
      { numRuns: 500 },
    );
    // The property says little if the quick parse always declines.
    expect(answered).toBeGreaterThan(50);
  });

  it("property: a SnapshotParser fed the source's snapshots always gives parseEntries' result, through deletes, directory deletes and fresh reads", () => {
    const step = fc.oneof(
      { weight: 8, arbitrary: change.map(([k, v]) => ({ kind: 'change' as const, key: k, value: v })) },
      { weight: 1, arbitrary: fc.constantFrom(...services, 'services', '').map((dir) => ({ kind: 'deleteDir' as const, dir })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'reread' as const }) },
    );
    fc.assert(
      fc.property(fc.array(fc.array(step, { minLength: 1, maxLength: 4 }), { maxLength: 8 }), (batches) => {
        const store = new EntryStore();
        store.replace(new Map(Object.entries(base)));
        const parser = new SnapshotParser(options);
        parser.parse(store.seal('1'));
        batches.forEach((batch, i) => {
          for (const s of batch) {
            if (s.kind === 'reread') store.replace(store.copy());
            else if (s.kind === 'deleteDir') store.deleteDir(s.dir);
            else if (s.value === undefined) store.delete(s.key);
            else store.set(s.key, s.value);
          }
          const snapshot = store.seal(String(i + 2));
          expect(parser.parse(snapshot)).toEqual(parse(store.copy()));
        });
      }),
      { numRuns: 300 },
    );
  });
});

describe('reuseUnchanged', () => {
  it('hands back the previous object of every service that did not change, so the renderer cache hits', () => {
    const before = parse(new Map(Object.entries(base)));
    const after = reuseUnchanged(before.state, parse(new Map(Object.entries({ ...base, 'services/web/balance': 'leastconn' }))));
    expect(after.state.http.find((s) => s.name === 'api')).toBe(before.state.http.find((s) => s.name === 'api'));
    expect(after.state.http.find((s) => s.name === 'web')).not.toBe(before.state.http.find((s) => s.name === 'web'));
  });
});

describe('createSectionRenderer', () => {
  const settings = {
    httpPort: 8080,
    adminSocket: '/s',
    errorsDir: '/e',
    challengeMap: '/m',
    canaryMap: '/tmp/canary.map',
    globalSettings: [],
    defaultsSettings: [],
    hardStopAfter: '1h',
    serverStateFile: '/ss',
    peerSocket: '/peers.sock',
    checkInterval: '2000ms',
    checkFastInterval: '250ms',
    acceptProxy: false,
    tunnelTimeout: '1h',
    accessLog: 'text',
  } satisfies RenderSettings;

  it('renders from its caches exactly what a fresh renderer renders', () => {
    const cached = createSectionRenderer();
    const before = reuseUnchanged(undefined, parse(new Map(Object.entries(base))));
    cached(before.state, settings);
    const nextEntries = { ...base, 'services/web/upstreams/web-2': '10.0.0.9:80', 'services/api/virtual_path': '/v2' };
    const after = reuseUnchanged(before.state, parse(new Map(Object.entries(nextEntries))));
    expect(cached(after.state, settings).text).toBe(createSectionRenderer()(after.state, settings).text);
    expect(cached(after.state, { ...settings, checkInterval: '5000ms' }).text).toContain('inter 5000ms');
  });

  it('keeps the head (the same string) when only instances changed, and hands back the same config when nothing did', () => {
    const render = createSectionRenderer();
    const store = new EntryStore();
    store.replace(new Map(Object.entries(base)));
    const parser = new SnapshotParser(options);
    const first = render(parser.parse(store.seal('1')).state, settings);
    store.set('services/web/upstreams/web-2', '10.0.0.9:80');
    const second = render(parser.parse(store.seal('2')).state, settings);
    expect(second.head).toBe(first.head);
    expect(second.sectionOf('http:web')).toContain('server web-2 10.0.0.9:80');
    expect(second.sectionOf('http:web')).not.toBe(first.sectionOf('http:web'));
    store.set('certs/web', 'changed, but not a route');
    expect(render(parser.parse(store.seal('3')).state, settings)).toBe(second);
  });

  it('property: after any changes, the cached render matches a fresh full render, and a runtime plan changes nothing but server lines', () => {
    const serverArgs = createServerArgsRenderer();
    const args = (service: Parameters<typeof serverArgs>[0], upstream: Parameters<typeof serverArgs>[1]) => serverArgs(service, upstream, settings);
    const withoutServers = (text: string) =>
      text
        .split('\n')
        .filter((line) => !line.startsWith('    server '))
        .join('\n');
    const upstream = fc.tuple(
      fc.constantFrom('services/web', 'services/api', 'tcp-services/db'),
      fc.constantFrom('a', 'b', 'web-1', 'db-1'),
      fc.option(fc.constantFrom('10.0.0.5:80', '10.0.0.6:8080'), { nil: undefined }),
    );
    const setting = fc.tuple(
      fc.constantFrom('services/web/virtual_hosts', 'services/api/virtual_path', 'services/web/balance'),
      fc.constantFrom('x.test', '/v2', 'leastconn'),
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(upstream, setting), { minLength: 1, maxLength: 5 }), (changes) => {
        const render = createSectionRenderer();
        const store = new EntryStore();
        store.replace(new Map(Object.entries(base)));
        const parser = new SnapshotParser(options);
        let previous = render(parser.parse(store.seal('1')).state, settings);
        changes.forEach((c, i) => {
          if (c.length === 3) {
            const [service, instance, address] = c;
            if (address === undefined) store.delete(`${service}/upstreams/${instance}`);
            else store.set(`${service}/upstreams/${instance}`, address);
          } else {
            store.set(c[0], c[1]);
          }
          const next = render(parser.parse(store.seal(String(i + 2))).state, settings);
          const fresh = createSectionRenderer()(parse(store.copy()).state, settings);
          expect(next.text).toBe(fresh.text);
          const decision = planServers(previous.state, next.state, args);
          if ('plan' in decision) {
            expect(next.head).toBe(previous.head);
            expect(withoutServers(next.text)).toBe(withoutServers(previous.text));
            if (isEmptyPlan(decision.plan)) expect(next.text).toBe(previous.text);
          } else {
            expect(next.text).not.toBe(previous.text);
          }
          previous = next;
        });
      }),
      { numRuns: 40 },
    );
  });
});
