import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseShowPeers, secondsOf } from '../../src/admin/haproxy-peers.js';

// `show peers` as HAProxy 2.6.12 answered it (two HAProxy processes sharing one stick table
// through a peers section of three: lb-a asked, lb-b running, lb-c never started):
// - established: lb-b connected (ESTA, active), lb-c refused (CONN), lb-a the local peer;
// - peer-killed: a second after lb-b's HAProxy was killed; lb-b is inactive but its last_status
//   is still the ESTA of the session that ended, and lb-c is active with a connection attempt.
const fixture = (name: string) => readFileSync(path.resolve(import.meta.dirname, `../fixtures/${name}`), 'utf8');
const ESTABLISHED = fixture('haproxy-2.6-show-peers.txt');
const PEER_KILLED = fixture('haproxy-2.6-show-peers-peer-killed.txt');

describe('parseShowPeers', () => {
  it('reads each peer of a real HAProxy 2.6 answer with its session state', () => {
    expect(parseShowPeers(ESTABLISHED)).toEqual([
      {
        name: 'lb-c',
        local: false,
        address: '127.0.0.1:17948',
        active: false,
        lastStatus: 'CONN',
        established: false,
        lastHandshakeSeconds: 4,
        reconnectSeconds: 0,
        newConnections: 1,
        protocolErrors: 0,
        tables: 1,
      },
      {
        name: 'lb-b',
        local: false,
        address: '127.0.0.1:17947',
        active: true,
        lastStatus: 'ESTA',
        established: true,
        lastHandshakeSeconds: 2,
        reconnectSeconds: 2,
        newConnections: 2,
        protocolErrors: 0,
        tables: 1,
      },
      {
        name: 'lb-a',
        local: true,
        address: '127.0.0.1:17946',
        active: false,
        lastStatus: 'NONE',
        established: false,
        lastHandshakeSeconds: null,
        reconnectSeconds: null,
        newConnections: 0,
        protocolErrors: 0,
        tables: 1,
      },
    ]);
  });

  it('does not take the ESTA an ended session leaves behind for an established one', () => {
    const byName = new Map(parseShowPeers(PEER_KILLED).map((p) => [p.name, p]));
    expect(byName.get('lb-b')).toMatchObject({ active: false, lastStatus: 'ESTA', established: false, lastHandshakeSeconds: 7 });
    expect(byName.get('lb-c')).toMatchObject({ active: true, lastStatus: 'CONN', established: false });
  });

  it('takes what it knows from an answer of another shape, and refuses one that is not a dump', () => {
    const text = [
      '0x1: [01/Jan/2030:00:00:00] id=s1 disabled=0 flags=0x0',
      // A later HAProxy's line, with fields 2.6 does not print and a second addr= (the connection's) below.
      '  0x2: id=x(remote,active) addr=[fd00::5]:7946 app_state=RUNNING learn_state=NOTASSIGNED last_status=ESTA last_hdshk=1m3s',
      '        flags=0x0 appctx:0x9 st0=7 st1=0 task_calls=5 state=EST',
      '        xprt=RAW src=[fd00::6]:40000 addr=[fd00::5]:7946',
      '        shared tables:',
      '              table:0x3 id=t1 update=0',
      '              table:0x4 id=t2 update=0',
      '0x5: [01/Jan/2030:00:00:00] id=s2 disabled=0 flags=0x0',
      '  0x6: id=y(remote,inactive) addr=10.0.0.1:1',
    ].join('\n');
    expect(parseShowPeers(text).map((p) => [p.name, p.address, p.established, p.tables, p.lastStatus, p.newConnections])).toEqual([
      ['x', '[fd00::5]:7946', true, 2, 'ESTA', null],
      ['y', '10.0.0.1:1', false, 0, 'NONE', null],
    ]);
    expect(parseShowPeers('')).toEqual([]);
    expect(() => parseShowPeers('Unknown command\n')).toThrow(/unexpected answer to "show peers"/);
  });

  it("reads HAProxy's human times", () => {
    expect([secondsOf('0s'), secondsOf('59s'), secondsOf('1m3s'), secondsOf('2h5m'), secondsOf('3d4h')]).toEqual([0, 59, 63, 7500, 273_600]);
    expect([secondsOf('<NEVER>'), secondsOf('<PAST>'), secondsOf('?'), secondsOf(''), secondsOf(undefined)]).toEqual([null, null, null, null, null]);
  });
});
