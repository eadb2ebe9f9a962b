import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { addSettingFlags, flagProperty, hasFlag, withFlags } from '../../src/settings/flags.js';
import { SETTINGS } from '../../src/settings/schema.js';

// The settings' schema itself: names are unique, secrets have no flag, every default passes its
// own schema, flags map onto the variables, and the Config keeps the fields the code reads.

describe('the settings schema', () => {
  it('names each variable, flag and flag property once', () => {
    const envs = SETTINGS.map((s) => s.env);
    const flags = SETTINGS.filter(hasFlag).map((s) => s.flag);
    expect(new Set(envs).size).toBe(envs.length);
    expect(new Set(flags).size).toBe(flags.length);
    expect(new Set(flags.map(flagProperty)).size).toBe(flags.length);
    for (const flag of flags) expect(flag).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
  });

  it('gives secrets no flag: a flag would show in ps and shell history', () => {
    for (const env of ['ETCD_PASSWORD', 'STATS_PASSWORD', 'KONTENA_LB_VAULT_KEY']) {
      expect(SETTINGS.find((s) => s.env === env)?.flag, env).toBeUndefined();
    }
  });

  it.each(SETTINGS.filter((s) => s.default !== undefined).map((s) => [s.env, s] as const))('%s: the default passes its own schema', (_env, setting) => {
    expect(setting.schema!.safeParse(undefined).success).toBe(true);
    expect(setting.schema!.safeParse(undefined).data).toEqual(setting.schema!.safeParse(setting.default).data);
  });

  it('documents every default it applies, and help for every flag', () => {
    for (const setting of SETTINGS) {
      if (setting.default !== undefined) expect(setting.shownDefault, setting.env).toBe(setting.default);
      expect(setting.help.length, setting.env).toBeGreaterThan(10);
      expect(setting.help, setting.env).not.toContain('\n');
    }
  });

  it('keeps the Config fields the rest of the code reads', () => {
    const config = loadConfig({ KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_ACME_EMAIL: 'ops@example.com' }, { checkFilesystem: false });
    expect(Object.keys(config).sort()).toEqual([
      'acceptProxy',
      'accessLog',
      'acme',
      'acmeDns',
      'adminBind',
      'adminPassword',
      'adminPort',
      'certWarnDays',
      'certsDir',
      'checkIntervalMs',
      'customSettings',
      'defaultCert',
      'drainTimeoutMs',
      'etcd',
      'etcdPath',
      'globalSettings',
      'haproxyBin',
      'hardStopAfter',
      'healthUri',
      'http2',
      'httpPort',
      'httpsPort',
      'logLevel',
      'peers',
      'peersCert',
      'sslCiphers',
      'sslCiphersuites',
      'sslMinVersion',
      'stateDir',
      'statsPassword',
      'statsPort',
      'syslogTarget',
      'trustedProxies',
      'tunnelTimeout',
      'vaultKey',
    ]);
    expect(config.acme).toEqual({
      email: 'ops@example.com',
      directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory',
      domains: [],
      renewDays: 30,
      checkIntervalMs: 3_600_000,
      leaderTtlSeconds: 10,
      directoryCa: undefined,
    });
    expect(config).toMatchObject({
      customSettings: [],
      globalSettings: [],
      accessLog: 'text',
      http2: true,
      acceptProxy: false,
      adminPort: 8404,
      adminBind: '127.0.0.1',
    });
  });

  it('refuses a value with exactly one line naming the setting', () => {
    expect(() => loadConfig({ KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_ACME_RENEW_DAYS: '0' }, { checkFilesystem: false })).toThrow(
      /^KONTENA_LB_ACME_RENEW_DAYS must be a whole number of days \(1-999\), got "0"$/,
    );
    expect(() => loadConfig({ KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_CHECK_INTERVAL: '50ms' }, { checkFilesystem: false })).toThrow(
      /^KONTENA_LB_CHECK_INTERVAL must be between 100ms and 1h, got "50ms"$/,
    );
    expect(() => loadConfig({ KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_CHECK_INTERVAL: 'often' }, { checkFilesystem: false })).toThrow(
      /^KONTENA_LB_CHECK_INTERVAL must be a duration like 30s, 15m or 1h, got "often"$/,
    );
  });

  it("checks an ACME setting's syntax even while ACME is off, so a typo shows before it is needed", () => {
    expect(() => loadConfig({ KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_ACME_DIRECTORY: 'http://ca.example.com/dir' }, { checkFilesystem: false })).toThrow(
      /^KONTENA_LB_ACME_DIRECTORY must use https:\/\//,
    );
    expect(loadConfig({ KONTENA_SERVICE_NAME: 'lb', KONTENA_LB_ACME_LEADER_TTL: '5s' }, { checkFilesystem: false }).acme).toBeUndefined();
  });

  it("reports the first bad setting in the README's order", () => {
    expect(() => loadConfig({ KONTENA_SERVICE_NAME: 'lb', LOG_LEVEL: 'loud', KONTENA_LB_HTTP_PORT: 'eighty' }, { checkFilesystem: false })).toThrow(
      /^KONTENA_LB_HTTP_PORT/,
    );
  });
});

describe('setting flags', () => {
  it('write over the environment by variable name; a flag not given leaves the variable', () => {
    const input = withFlags({ KONTENA_LB_HTTP_PORT: '80', LOG_LEVEL: 'warn', PATH: '/bin' }, { httpPort: '8080', json: true, logLevel: undefined }, SETTINGS);
    expect(input).toEqual({ KONTENA_LB_HTTP_PORT: '8080', LOG_LEVEL: 'warn', PATH: '/bin' });
  });

  it('are commander options with the help, the variable and the shown default', () => {
    const command = new Command('run');
    addSettingFlags(command, SETTINGS);
    const options = new Map(command.options.map((o) => [o.long, o]));
    expect(options.size).toBe(SETTINGS.filter(hasFlag).length);
    expect(options.get('--http-port')?.description).toBe('HTTP listening port [env KONTENA_LB_HTTP_PORT] (default: 80)');
    // Only shown: an unset flag must not hide the environment variable.
    expect(options.get('--http-port')?.defaultValue).toBeUndefined();
    expect(options.get('--etcd-path')?.description).toMatch(/ \(default: \/kontena\/haproxy\/<lb-name>\)$/);
    expect(options.get('--etcd-node')?.description).not.toContain('default:');
    command.parse(['node', 'run'], { from: 'node' });
    expect(withFlags({ KONTENA_LB_HTTP_PORT: '8080' }, command.opts(), SETTINGS).KONTENA_LB_HTTP_PORT).toBe('8080');
    expect(options.has('--etcd-password')).toBe(false);
  });
});
