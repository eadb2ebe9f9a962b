import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { probeServer } from '../../src/haproxy/health-probe.js';

const servers: Server[] = [];

/** A loopback TCP server that answers each connection with `answer` (or never, when undefined). */
async function listen(answer?: (request: string) => string): Promise<{ port: number; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((socket) => {
    socket.setEncoding('latin1');
    let buffered = '';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (!buffered.includes('\r\n\r\n') || !answer) return;
      requests.push(buffered);
      socket.end(answer(buffered));
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, requests };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

describe('probeServer', () => {
  it('passes a TCP connect to a listening port, and fails a refused one', async () => {
    const { port } = await listen();
    expect(await probeServer({ host: '127.0.0.1', port }, { kind: 'connect', port: undefined }, 1000)).toEqual({ ok: true });
    const closed = servers.pop()!;
    await new Promise((resolve) => closed.close(resolve));
    expect(await probeServer({ host: '127.0.0.1', port }, { kind: 'connect', port: undefined }, 1000)).toEqual({ ok: false, reason: 'ECONNREFUSED' });
  });

  it("sends the HTTP check's request line to the check port and accepts 200-399", async () => {
    const ok = await listen(() => 'HTTP/1.1 204 No Content\r\n\r\n');
    expect(await probeServer({ host: '127.0.0.1', port: 1 }, { kind: 'http', path: '/health?x=1', port: ok.port }, 1000)).toEqual({ ok: true });
    expect(ok.requests).toEqual(['GET /health?x=1 HTTP/1.0\r\n\r\n']);
    const redirect = await listen(() => 'HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n');
    expect(await probeServer({ host: '127.0.0.1', port: redirect.port }, { kind: 'http', path: '/', port: undefined }, 1000)).toEqual({ ok: true });
  });

  it('fails an error status, an answer that is not HTTP, and a server that never answers', async () => {
    const failing = await listen(() => 'HTTP/1.1 503 Service Unavailable\r\n\r\n');
    expect(await probeServer({ host: '127.0.0.1', port: failing.port }, { kind: 'http', path: '/', port: undefined }, 1000)).toEqual({
      ok: false,
      reason: 'HTTP 503',
    });
    const garbage = await listen(() => 'SSH-2.0-OpenSSH\r\n');
    expect(await probeServer({ host: '127.0.0.1', port: garbage.port }, { kind: 'http', path: '/', port: undefined }, 1000)).toEqual({
      ok: false,
      reason: 'not an HTTP answer',
    });
    const silent = await listen();
    expect(await probeServer({ host: '127.0.0.1', port: silent.port }, { kind: 'http', path: '/', port: undefined }, 100)).toEqual({
      ok: false,
      reason: 'no answer within 100 ms',
    });
  });
});
