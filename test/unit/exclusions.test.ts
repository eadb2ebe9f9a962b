import { describe, expect, it } from 'vitest';
import { Exclusions } from '../../src/controller/exclusions.js';
import { createLogger } from '../../src/log.js';
import { parseEntries } from '../../src/model/parse.js';

// Services HAProxy refused are left out until their entries change; a canary pointing at one is
// dropped with it (the config would otherwise name a backend it no longer has).

const entries = new Map(
  Object.entries({
    'services/web/virtual_hosts': 'web.test',
    'services/web/upstreams/a': '10.0.0.1:80',
    'services/web/canary': 'web-next:10',
    'services/web-next/virtual_path': '/next',
    'services/web-next/upstreams/b': '10.0.0.2:80',
  }),
);

describe('Exclusions', () => {
  it('leaves a refused service out, and the canary of another service that pointed at it', () => {
    const state = parseEntries(entries, { reservedPorts: [] }).state;
    expect(state.http.find((s) => s.name === 'web')?.canary).toMatchObject({ service: 'web-next' });
    const exclusions = new Exclusions(createLogger('silent', false));
    exclusions.add(state, 'http:web-next', 'unknown keyword');
    const applied = exclusions.apply(state);
    expect(applied.http.map((s) => s.name)).toEqual(['web']);
    expect(applied.http[0]?.canary).toBeUndefined();
    expect(exclusions.list()).toEqual([{ service: 'http:web-next', reason: 'unknown keyword' }]);
  });

  it('brings the service back once its entries change', () => {
    const state = parseEntries(entries, { reservedPorts: [] }).state;
    const exclusions = new Exclusions(createLogger('silent', false));
    exclusions.add(state, 'http:web-next', 'unknown keyword');
    const changed = parseEntries(new Map(entries).set('services/web-next/virtual_path', '/v2'), { reservedPorts: [] }).state;
    expect(exclusions.apply(changed).http.map((s) => s.name)).toEqual(['web', 'web-next']);
  });
});
