import { describe, expect, it } from 'vitest';
import { eventOf } from '../../src/etcd/v2-store.js';

// etcd v2 watch events as changes to the load balancer's entries. etcd hands a recursive watch
// on /kontena/haproxy/lb-internal/ the removal of the directory /kontena/haproxy/lb as well (its
// history matches deleted directories by string prefix): that one must not touch our entries.

const PREFIX = '/kontena/haproxy/lb';
const node = (key: string, extra: { value?: string; dir?: boolean } = {}) => ({ key, modifiedIndex: 7, ...extra });

describe('eventOf', () => {
  it.each([
    [
      'a value set under the prefix',
      'set',
      node(`${PREFIX}/services/web/upstreams/web-1`, { value: '10.0.0.1:80' }),
      { type: 'put', key: 'services/web/upstreams/web-1', value: '10.0.0.1:80' },
    ],
    ['a compare-and-swap', 'compareAndSwap', node(`${PREFIX}/acme/leader`, { value: 'b' }), { type: 'put', key: 'acme/leader', value: 'b' }],
    ['a key deleted', 'delete', node(`${PREFIX}/services/web/upstreams/web-1`), { type: 'delete', key: 'services/web/upstreams/web-1' }],
    ['a TTL key expired', 'expire', node(`${PREFIX}/acme/replicas/a`), { type: 'delete', key: 'acme/replicas/a' }],
    ['a service directory removed (the unlink)', 'delete', node(`${PREFIX}/services/web`, { dir: true }), { type: 'delete', key: 'services/web', dir: true }],
    ['the prefix itself removed', 'delete', node(PREFIX, { dir: true }), { type: 'delete', key: '', dir: true }],
    ['a parent of the prefix removed (the stack)', 'delete', node('/kontena/haproxy', { dir: true }), { type: 'delete', key: '', dir: true }],
    ['the whole store removed', 'delete', node('/', { dir: true }), { type: 'delete', key: '', dir: true }],
    ['a directory made under the prefix', 'set', node(`${PREFIX}/services`, { dir: true }), 'nothing'],
    ['a parent made', 'set', node('/kontena/haproxy', { dir: true }), 'nothing'],
    ['a sibling load balancer removed', 'delete', node('/kontena/haproxy/l', { dir: true }), 'outside'],
    ['a load balancer whose name extends ours removed', 'delete', node('/kontena/haproxy/lb-internal', { dir: true }), 'outside'],
    ['a value of another load balancer set', 'set', node('/kontena/haproxy/lb2/services/x/balance', { value: 'roundrobin' }), 'outside'],
  ] as const)('%s', (_, action, event, expected) => {
    expect(eventOf(action, event, PREFIX)).toEqual(expected);
  });

  it('takes a sibling whose name our prefix extends as outside (lb-internal watching, lb removed)', () => {
    expect(eventOf('delete', node('/kontena/haproxy/lb', { dir: true }), '/kontena/haproxy/lb-internal')).toBe('outside');
  });
});
