import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EdgelbError } from '../../src/errors.js';
import { HaproxySocketError, sendCommand } from '../../src/haproxy/master-cli.js';
import { HaproxyError, HaproxyProcess } from '../../src/haproxy/process.js';
import { createLogger } from '../../src/log.js';

// HAProxy's CLI sockets and process fail with stable codes (src/errors.ts), the system's error kept as the cause.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'edgelb-errors-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('HAProxy CLI socket errors', () => {
  it('a socket nobody listens on: haproxy_socket_unreachable, with the system error as cause', async () => {
    const error = await sendCommand(path.join(dir, 'missing.sock'), 'show proc', 1000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HaproxySocketError);
    expect(error).toBeInstanceOf(EdgelbError);
    expect(error).toMatchObject({ code: 'haproxy_socket_unreachable', cause: { code: 'ENOENT' } });
  });

  it('a socket that never answers: haproxy_socket_timeout', async () => {
    const socketPath = path.join(dir, 'mute.sock');
    const open: net.Socket[] = [];
    const server = net.createServer((socket) => open.push(socket));
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const error = await sendCommand(socketPath, 'show proc', 50).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'haproxy_socket_timeout' });
    } finally {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('HaproxyProcess errors', () => {
  it('a reload of an HAProxy that does not run: haproxy_not_running', async () => {
    const haproxy = new HaproxyProcess({
      bin: 'haproxy',
      configFile: path.join(dir, 'haproxy.cfg'),
      masterSocket: path.join(dir, 'master.sock'),
      logger: createLogger('silent', false),
    });
    const error = await haproxy.reload().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HaproxyError);
    expect(error).toMatchObject({ code: 'haproxy_not_running' });
  });
});
