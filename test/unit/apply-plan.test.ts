import { describe, expect, it } from 'vitest';
import { planApply, type ApplyPlanInput } from '../../src/controller/apply-plan.js';
import { parseEntries } from '../../src/model/parse.js';
import { createSectionRenderer, createServerArgsRenderer } from '../../src/render/render.js';
import type { CertSet } from '../../src/tls/store.js';
import { EMPTY_CERT_SET } from '../../src/tls/store.js';
import { renderSettingsIn } from '../support/render-settings.js';

// The typed plan of one apply (pure): from what is applied and served to the desired config.

const settings = renderSettingsIn('/s');
const render = createSectionRenderer();
const serverArgs = createServerArgsRenderer();
const stateOf = (entries: Record<string, string>) => parseEntries(new Map(Object.entries(entries)), { reservedPorts: [] }).state;
const web = { 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/web-1': '10.0.0.1:80' };
const withTwo = { ...web, 'services/web/upstreams/web-2': '10.0.0.2:80' };
const oneCert = { ...EMPTY_CERT_SET, served: [{ bundle: { id: 'a', pem: 'x' }, sni: ['web.test'], expired: false }] } as unknown as CertSet;

function input(before: Record<string, string> | undefined, after: Record<string, string>, extra: Partial<ApplyPlanInput> = {}): ApplyPlanInput {
  const applied = before && { revision: '1', state: stateOf(before), certs: EMPTY_CERT_SET, challenges: new Map() };
  const ours = applied && render(applied.state, settings);
  const state = stateOf(after);
  return {
    applied,
    serving: ours,
    ours,
    rendered: render(state, settings),
    state,
    certs: EMPTY_CERT_SET,
    challenges: new Map(),
    serverArgs: (service, upstream) => serverArgs(service, upstream, settings),
    runtimeServers: true,
    ...extra,
  };
}

describe('planApply', () => {
  it('reloads (or starts) when nothing is applied yet', () => {
    expect(planApply(input(undefined, web))).toEqual({ kind: 'reload', reason: 'nothing applied yet' });
  });

  it('finds nothing to do for the same entries', () => {
    expect(planApply(input(web, web))).toEqual({ kind: 'unchanged' });
  });

  it('changes instances at runtime, or reloads when runtime server updates are off', () => {
    expect(planApply(input(web, withTwo))).toMatchObject({ kind: 'runtime', certs: false, challenges: false, servers: { add: [{ name: 'web-2' }] } });
    expect(planApply(input(web, withTwo, { runtimeServers: false }))).toEqual({
      kind: 'reload',
      reason: expect.stringContaining('runtime server updates are off'),
    });
  });

  it('changes certificates and challenge tokens at runtime', () => {
    expect(planApply(input(web, web, { certs: oneCert }))).toMatchObject({ kind: 'runtime', certs: true, challenges: false });
    expect(planApply(input(web, web, { challenges: new Map([['tok', 'tok.thumb']]) }))).toMatchObject({ kind: 'runtime', certs: false, challenges: true });
  });

  describe('canary (issue 15)', () => {
    const next = { 'services/next/virtual_hosts': 'next.test', 'services/next/upstreams/n-1': '10.0.0.9:80' };
    const canary = (percent: number, extra: Record<string, string> = {}) => ({ ...web, ...next, 'services/web/canary': `next:${percent}`, ...extra });

    it('a new percentage is a map change at runtime, not a reload', () => {
      expect(planApply(input(canary(10), canary(50)))).toMatchObject({ kind: 'runtime', canaries: true, certs: false, challenges: false });
      expect(planApply(input(canary(10), canary(10)))).toEqual({ kind: 'unchanged' });
    });

    it('a canary added, removed, sent elsewhere or given a header changes the routes: a reload', () => {
      const other = { 'services/other/virtual_hosts': 'other.test' };
      expect(planApply(input({ ...web, ...next }, canary(10)))).toMatchObject({ kind: 'reload' });
      expect(planApply(input(canary(10), { ...web, ...next }))).toMatchObject({ kind: 'reload' });
      expect(planApply(input(canary(10, other), { ...canary(10, other), 'services/web/canary': 'other:10' }))).toMatchObject({ kind: 'reload' });
      expect(planApply(input(canary(10), canary(10, { 'services/web/canary_header': 'X-Canary:1' })))).toMatchObject({ kind: 'reload' });
    });
  });

  it('compares texts when HAProxy serves a config from an earlier run: equal is no change, different is a reload', () => {
    const same = input(web, web);
    expect(planApply({ ...same, serving: { text: same.rendered.text }, ours: undefined })).toEqual({ kind: 'unchanged' });
    expect(planApply({ ...input(web, withTwo), serving: { text: 'other' }, ours: undefined })).toEqual({
      kind: 'reload',
      reason: 'HAProxy serves a config from an earlier run',
    });
  });

  it('reloads when HAProxy serves a config of an earlier run that differs only in instances (nothing typed to compare it with)', () => {
    const changed = input(web, withTwo);
    expect(planApply({ ...changed, serving: { text: render(stateOf(web), settings).text } })).toEqual({
      kind: 'reload',
      reason: 'HAProxy serves a config from an earlier run',
    });
  });

  it('reloads for other settings', () => {
    const changed = input(web, web);
    const rendered = render(changed.state, { ...settings, checkInterval: '5000ms' });
    expect(planApply({ ...changed, rendered })).toEqual({ kind: 'reload', reason: 'settings changed' });
  });

  it('reloads with the peers added and removed when the replicas sharing counters change (HAProxy 2.6 cannot change peers at runtime)', () => {
    const local = { name: 'lb-a', address: '10.0.0.1:7946' };
    const peers = (...members: { name: string; address: string }[]) => ({ ...settings, peers: { local: 'lb-a', members: [local, ...members] } });
    const before = input(web, web);
    const ours = render(before.state, peers({ name: 'lb-b', address: '10.0.0.2:7946' }));
    const rendered = render(before.state, peers({ name: 'lb-c', address: '10.0.0.3:7946' }));
    expect(planApply({ ...before, ours, serving: ours, rendered })).toEqual({
      kind: 'reload',
      reason: 'peers changed: +lb-c 10.0.0.3:7946, -lb-b 10.0.0.2:7946',
    });
    expect(planApply({ ...before, ours, serving: ours, rendered: render(before.state, peers({ name: 'lb-b', address: '10.0.0.2:7946' })) })).toEqual({
      kind: 'unchanged',
    });
  });
});
