import { mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgelb-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const base = { PATH: process.env.PATH, KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_STATE_DIR: path.join(tmp, 'state') };

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({ KONTENA_SERVICE_NAME: 'lb' }, { checkFilesystem: false });
    expect(config).toMatchObject({
      etcd: { endpoints: ['http://127.0.0.1:2379'], endpointsFrom: 'default', api: 'auto', tls: undefined, auth: undefined },
      etcdPath: '/kontena/haproxy/lb',
      httpPort: 80,
      httpsPort: 443,
      statsPort: 1000,
      stateDir: '/var/lib/edgelb',
      haproxyBin: 'haproxy',
      hardStopAfter: '1h',
      checkIntervalMs: 2000,
      drainTimeoutMs: 3_600_000,
      logLevel: 'info',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    [{ KONTENA_STACK_NAME: 'web', KONTENA_SERVICE_NAME: 'lb' }, '/kontena/haproxy/web/lb'],
    [{ KONTENA_STACK_NAME: 'null', KONTENA_SERVICE_NAME: 'lb' }, '/kontena/haproxy/lb'],
    [{ KONTENA_STACK_NAME: '', KONTENA_SERVICE_NAME: 'lb' }, '/kontena/haproxy/lb'],
    [{ ETCD_PATH: '/custom/path/', KONTENA_SERVICE_NAME: 'lb' }, '/custom/path'],
  ])('derives the etcd path from %o', (env, expected) => {
    expect(loadConfig(env, { checkFilesystem: false }).etcdPath).toBe(expected);
  });

  it('takes ETCD_NODE as a host on port 2379 and prefers ETCD_ENDPOINTS', () => {
    expect(loadConfig({ ...base, ETCD_NODE: '10.0.0.1' }, { checkFilesystem: false }).etcd.endpoints).toEqual(['http://10.0.0.1:2379']);
    expect(loadConfig({ ...base, ETCD_NODE: '10.0.0.1', ETCD_ENDPOINTS: 'http://a:1, http://b:2' }, { checkFilesystem: false }).etcd.endpoints).toEqual([
      'http://a:1',
      'http://b:2',
    ]);
  });

  it.each([
    [{ KONTENA_LB_HTTP_PORT: 'eighty' }, /KONTENA_LB_HTTP_PORT must be a port number/],
    [{ KONTENA_LB_HTTPS_PORT: '70000' }, /KONTENA_LB_HTTPS_PORT must be a port number/],
    [{ KONTENA_LB_HTTP_PORT: '8080', KONTENA_LB_STATS_PORT: '8080' }, /three different ports/],
    [{ ETCD_ENDPOINTS: 'not a url' }, /ETCD_ENDPOINTS must be/],
    [{ ETCD_PATH: 'relative' }, /ETCD_PATH must start with/],
    [{ KONTENA_SERVICE_NAME: '' }, /set KONTENA_SERVICE_NAME/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
    [{ KONTENA_LB_GLOBAL_SETTINGS: 'backend x' }, /may not open a new section/],
    [{ KONTENA_LB_HAPROXY_BIN: '/nonexistent/haproxy' }, /KONTENA_LB_HAPROXY_BIN: cannot find/],
  ])('refuses %o with one line saying what to fix', (env, message) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, ...env })).toThrow(message);
  });

  it('refuses a state dir that cannot be a directory', () => {
    const file = path.join(tmp, 'a-file');
    writeFileSync(file, '');
    expect(() => loadConfig({ ...base, KONTENA_LB_STATE_DIR: path.join(file, 'sub') })).toThrow(/KONTENA_LB_STATE_DIR .* is not a writable directory/);
  });

  it('creates the state dir private to its owner and finds haproxy on PATH', () => {
    const config = loadConfig(base);
    expect(statSync(config.stateDir).mode & 0o777).toBe(0o700);
    expect(path.isAbsolute(config.haproxyBin)).toBe(true);
  });
});
