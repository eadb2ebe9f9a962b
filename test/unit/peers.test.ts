import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parsePeerAddress, parsePeerName, peerSetOf, peersChange } from '../../src/model/peers.js';
import { EntryError } from '../../src/model/values.js';
import { desiredConfig } from '../../src/pipeline/desired-config.js';
import { settingsBaseOf } from '../../src/pipeline/settings-of.js';
import { peersSettingsOf } from '../../src/render/peers-view.js';
import { EMPTY_CERT_SET } from '../../src/tls/store.js';
import { parseAndRender, testRenderSettings } from '../support/render-check.js';

// Issue 15, counters shared between replicas: the registrations read from etcd, the peers section
// rendered from them (and accepted by haproxy -c), the settings. What clients see is in
// test/integration/peers.test.ts.

const local = { name: 'lb-a', address: '10.81.0.5:7946' };

describe('peer registrations', () => {
  it.each(['10.0.0.1:7946', '[fd00::5]:1', '127.0.0.1:65535'])('accepts the address %j', (raw) => expect(parsePeerAddress(raw)).toBe(raw));
  it.each([
    ['[fd00:0::5]:7946', '[fd00::5]:7946'],
    ['[FD00::5]:7946', '[fd00::5]:7946'],
    ['10.0.0.1:07946', '10.0.0.1:7946'],
  ])('writes the address %j one way, %j (so two spellings of one address compare equal)', (raw, canonical) => expect(parsePeerAddress(raw)).toBe(canonical));
  it.each([
    '',
    'lb-b:7946',
    '10.0.0.1',
    '10.0.0.1:0',
    '10.0.0.1:65536',
    '10.0.0.256:80',
    'fd00::5:80',
    '10.0.0.1:80\n    bind *:81',
    '10.0.0.1:80 ssl',
    'unix@/tmp/x',
  ])('rejects the address %j', (raw) => expect(() => parsePeerAddress(raw)).toThrow(EntryError));
  it.each(['lb-1', 'a', 'c0ffee.node_1'])('accepts the name %j', (raw) => expect(parsePeerName(raw)).toBe(raw));
  it.each(['', '-lb', 'lb 1', 'lb\n1', 'x'.repeat(64), 'lb/1'])('rejects the name %j', (raw) => expect(() => parsePeerName(raw)).toThrow(EntryError));

  it('keeps the valid registrations of the other replicas, sorted, and leaves out hostile ones with key and reason', () => {
    const { peers, rejected } = peerSetOf(
      new Map([
        ['peers/lb-c', '10.81.0.7:7946'],
        ['peers/lb-b', ' 10.81.0.6:7946\n'],
        ['peers/lb-a', local.address], // this replica's own registration
        ['peers/evil', '10.0.0.1:80\n    bind *:81'],
        ['peers/bad name', '10.81.0.9:7946'],
        ['peers/ghost', local.address],
      ]),
      local,
    );
    expect(peers).toEqual({
      local,
      remotes: [
        { name: 'lb-b', address: '10.81.0.6:7946' },
        { name: 'lb-c', address: '10.81.0.7:7946' },
      ],
    });
    expect(rejected.map((r) => [r.key, r.code])).toEqual([
      ['peers/evil', 'invalid_peer'],
      ['peers/bad name', 'invalid_peer'],
      ['peers/ghost', 'invalid_peer'],
    ]);
    expect(rejected[2]!.reason).toMatch(/own peer address/);
  });

  it("refuses another name at this replica's own address, however the address is spelt", () => {
    const own = { name: 'lb-a', address: parsePeerAddress('[fd00::5]:7946') };
    const { peers, rejected } = peerSetOf(new Map([['peers/ghost', '[FD00:0:0::5]:7946']]), own);
    expect(peers.remotes).toEqual([]);
    expect(rejected[0]!.reason).toMatch(/own peer address/);
  });

  it("refuses another replica registered under this replica's name", () => {
    const { peers, rejected } = peerSetOf(new Map([['peers/lb-a', '10.81.0.8:7946']]), local);
    expect(peers.remotes).toEqual([]);
    expect(rejected[0]!.reason).toMatch(/KONTENA_LB_PEER_NAME/);
  });

  it('names the peers added and removed', () => {
    const b = { name: 'lb-b', address: '10.81.0.6:7946' };
    expect(peersChange([local, b], [local, b])).toBeUndefined();
    expect(peersChange([local], [local, b])).toBe('peers changed: +lb-b 10.81.0.6:7946');
    expect(peersChange([local, b], [local, { ...b, address: '10.81.0.9:7946' }])).toBe('peers changed: +lb-b 10.81.0.9:7946, -lb-b 10.81.0.6:7946');
  });
});

describe('the peers section', () => {
  const entries = new Map(
    Object.entries({
      'services/rated/virtual_hosts': 'rated.test',
      'services/rated/rate_limit': '10/10s',
      'services/rated/upstreams/one': '127.0.0.1:8081',
    }),
  );
  const set = {
    local,
    remotes: [
      { name: 'lb-0', address: '[fd00::4]:7946' },
      { name: 'lb-b', address: '10.81.0.6:7946' },
    ],
  };

  it('lists every replica, this one as the localpeer, sorted by name, and haproxy -c accepts it', async () => {
    const base = testRenderSettings();
    const settings = { ...base, peers: peersSettingsOf(set) };
    expect(settings.peers.members.map((p) => p.name)).toEqual(['lb-0', 'lb-a', 'lb-b']);
    const { config } = parseAndRender(entries, settings);
    expect(config).toMatch(/^ {4}localpeer lb-a$/m);
    expect(config).toContain('peers edgelb\n');
    expect(config).toMatch(/^ {4}peer lb-0 \[fd00::4\]:7946\n {4}peer lb-a 10\.81\.0\.5:7946\n {4}peer lb-b 10\.81\.0\.6:7946\n/m);
    expect(config).not.toContain('peers.sock');
    const file = path.join(base.stateDir, 'haproxy.cfg');
    writeFileSync(file, config);
    const check = await execa('haproxy', ['-c', '-f', file], { reject: false });
    expect(check.stderr).not.toMatch(/ALERT/);
    expect(check.exitCode).toBe(0);
  });

  it('is the local peer alone on its unix socket when KONTENA_LB_PEERS is off', () => {
    const settings = testRenderSettings();
    const { config } = parseAndRender(entries, settings);
    expect(config).toMatch(/^ {4}localpeer edgelb$/m);
    expect(config).toContain(`peers edgelb\n    peer edgelb unix@${settings.peerSocket}\n`);
  });

  it('comes from the registrations in desiredConfig, their rejections with the others', () => {
    const config = loadConfig({ ETCD_PATH: '/lb', KONTENA_LB_STATE_DIR: '/tmp/x' }, { checkFilesystem: false });
    const parsed = { state: { http: [], tcp: [] }, rejected: [] };
    const desired = desiredConfig(
      {
        parsed,
        challenges: { challenges: new Map(), rejected: [] },
        certs: EMPTY_CERT_SET,
        peers: { set, rejected: [{ key: 'peers/evil', code: 'invalid_peer', reason: 'r' }] },
      },
      settingsBaseOf(config),
    );
    expect(desired.settings.peers?.local).toBe('lb-a');
    expect(desired.rejected.map((r) => r.key)).toEqual(['peers/evil']);
  });
});

describe('KONTENA_LB_PEERS settings', () => {
  const load = (env: Record<string, string>) => loadConfig({ ETCD_PATH: '/lb', KONTENA_LB_STATE_DIR: '/tmp/x', ...env }, { checkFilesystem: false });

  it('is off by default', () => expect(load({}).peers).toBeUndefined());
  it('takes the address and name with etcd, the name defaulting to the host name', () => {
    expect(load({ KONTENA_LB_PEERS: 'etcd', KONTENA_LB_PEERS_ADDRESS: '10.81.0.5:7946', KONTENA_LB_PEER_NAME: 'lb-a' }).peers).toEqual(local);
    expect(load({ KONTENA_LB_PEERS: 'etcd', KONTENA_LB_PEERS_ADDRESS: '10.81.0.5:7946' }).peers?.name).toMatch(/^[A-Za-z0-9]/);
  });
  it.each([
    [{ KONTENA_LB_PEERS: 'consul' }, /KONTENA_LB_PEERS must be off or etcd, got "consul"/],
    [{ KONTENA_LB_PEERS: 'etcd' }, /needs KONTENA_LB_PEERS_ADDRESS/],
    [{ KONTENA_LB_PEERS: 'etcd', KONTENA_LB_PEERS_ADDRESS: 'lb:7946' }, /KONTENA_LB_PEERS_ADDRESS: a peer address/],
    [{ KONTENA_LB_PEERS: 'etcd', KONTENA_LB_PEERS_ADDRESS: '10.0.0.1:1', KONTENA_LB_PEER_NAME: 'a b' }, /KONTENA_LB_PEER_NAME: a peer name/],
  ])('stops with one line for %j', (env, message) => expect(() => load(env)).toThrow(message));

  it('stops when the address is not one of this host (HAProxy could not bind the local peer)', () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-peers-'));
    const env = { ETCD_PATH: '/lb', KONTENA_LB_STATE_DIR: stateDir, PATH: process.env.PATH ?? '', KONTENA_LB_PEERS: 'etcd', KONTENA_LB_PEER_NAME: 'lb-a' };
    expect(() => loadConfig({ ...env, KONTENA_LB_PEERS_ADDRESS: '192.0.2.77:7946' })).toThrow(
      /KONTENA_LB_PEERS_ADDRESS 192\.0\.2\.77:7946: 192\.0\.2\.77 is not an address of this host \(it has .*127\.0\.0\.1/,
    );
    expect(loadConfig({ ...env, KONTENA_LB_PEERS_ADDRESS: '127.0.0.1:7946' }).peers?.address).toBe('127.0.0.1:7946');
  });
});
