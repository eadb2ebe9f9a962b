import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseShowStat } from '../../src/admin/haproxy-stats.js';

// `show stat -1 4 -1` as HAProxy 2.6.12 answered it: a server draining, one down (connection
// refused), one in maintenance, one without checks, one whose HTTP check got `503 Busy, "really"`
// (a quoted field holding a comma and quotes), and a TCP service's server.
const SAMPLE = readFileSync(path.resolve(import.meta.dirname, '../fixtures/haproxy-2.6-show-stat-servers.csv'), 'utf8');

describe('parseShowStat', () => {
  it('reads every server row of a real HAProxy 2.6 answer by column name', () => {
    expect(parseShowStat(SAMPLE).map((s) => [s.proxy, s.server, s.health, s.status, s.check, s.lastChangeSeconds, s.currentSessions, s.totalSessions])).toEqual(
      [
        ['http-web', 'web-1', 'drain', 'DRAIN', 'L4OK', 1, 0, 0],
        ['http-web', 'web-dead', 'down', 'DOWN', 'L4CON', 16, 0, 0],
        ['http-web', 'web-maint', 'maint', 'MAINT', '', 16, 0, 0],
        ['http-web', 'web-nocheck', 'unchecked', 'no check', '', 16, 0, 0],
        ['http-api', 'api-1', 'down', 'DOWN', 'L7STS', 15, 0, 0],
        ['tcp-echo', 'echo-1', 'up', 'UP', 'L4OK', 16, 0, 0],
      ],
    );
  });

  it('keeps the columns after a quoted field in place', () => {
    const text = [
      '# pxname,svname,last_chk,status,scur,stot,check_status,lastchg',
      'http-web,web-1,"Busy, ""really""",UP 1/3,2,9,* L7OK,4',
      'http-web,web-2,"a,b",MAINT (resolution),0,0,,',
      'http-web,BACKEND,,UP,2,9,,4',
      '',
    ].join('\n');
    expect(parseShowStat(text)).toEqual([
      {
        proxy: 'http-web',
        server: 'web-1',
        health: 'up',
        status: 'UP 1/3',
        check: 'L7OK',
        lastChangeSeconds: 4,
        currentSessions: 2,
        totalSessions: 9,
        sessionRate: 0,
      },
      {
        proxy: 'http-web',
        server: 'web-2',
        health: 'maint',
        status: 'MAINT (resolution)',
        check: '',
        lastChangeSeconds: undefined,
        currentSessions: 0,
        totalSessions: 0,
        sessionRate: 0,
      },
    ]);
  });

  it('refuses an answer without the header (an error text, a refused command)', () => {
    expect(() => parseShowStat('Permission denied\n\n')).toThrow(/unexpected answer to "show stat"/);
    expect(() => parseShowStat('Unknown command.\n')).toThrow(expect.objectContaining({ code: 'haproxy_answer_unreadable' }));
  });
});
