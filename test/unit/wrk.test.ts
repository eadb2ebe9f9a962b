import { describe, expect, it } from 'vitest';
import { parseWrk } from '../../bench/lib/wrk.js';

// The data-plane benchmark reads wrk 4.1's text summary (Debian's /usr/bin/wrk).

const OUTPUT = `Running 5s test @ http://127.0.0.1:40123/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms    2.31ms  58.20ms   95.12%
    Req/Sec    20.61k     2.07k   24.87k    71.00%
  Latency Distribution
     50%  612.00us
     75%  801.00us
     90%    1.21ms
     99%   11.84ms
  205047 requests in 5.00s, 33.44MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  41003.92
Transfer/sec:      6.69MB
`;

describe('parseWrk', () => {
  it('reads requests/s, the count, latency percentiles and errors', () => {
    expect(parseWrk(OUTPUT)).toEqual({
      requestsPerSecond: 41003.92,
      requests: 205047,
      seconds: 5,
      p50Ms: 0.612,
      p90Ms: 1.21,
      p99Ms: 11.84,
      maxMs: 58.2,
      errors: 7,
      non2xx: 4,
    });
  });

  it('counts no errors when wrk reports none', () => {
    const clean = OUTPUT.replace(/^\s+Socket errors.*\n/m, '').replace(/^\s+Non-2xx.*\n/m, '');
    expect(parseWrk(clean)).toMatchObject({ errors: 0, non2xx: 0 });
  });

  it('refuses output without a summary', () => {
    expect(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused')).toThrow(/no Requests\/sec|no 50% latency|no request count/);
  });
});
