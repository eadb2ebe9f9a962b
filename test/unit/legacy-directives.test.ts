import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { locateExecutable } from '../../src/config.js';
import { validateConfigFile } from '../../src/haproxy/validate.js';
import { describeLegacyUse, findLegacyDirectives, LEGACY_DIRECTIVES, legacyHint } from '../../src/model/legacy-directives.js';
import { attributeErrors } from '../../src/render/attribute.js';
import { parseAndRender, testRenderSettings } from '../support/render-check.js';

// The table of HAProxy 1.8 directives: each one really is refused by the HAProxy 2.6 the tests
// run, and a line using it is recognised (and only such a line).

/** A line a Kontena-era config would have held, per directive; global ones go to KONTENA_LB_GLOBAL_SETTINGS. */
const EXAMPLES: Record<string, { line: string; global?: true }> = {
  reqadd: { line: 'reqadd X-Forwarded-Proto:\\ https if { ssl_fc }' },
  reqdel: { line: 'reqdel ^X-Debug:.*' },
  reqidel: { line: 'reqidel ^x-debug:.*' },
  reqrep: { line: 'reqrep ^([^\\ :]*)\\ /api/(.*) \\1\\ /\\2' },
  reqirep: { line: 'reqirep ^Host:\\ www.(.*) Host:\\ \\1' },
  reqallow: { line: 'reqallow ^GET' },
  reqiallow: { line: 'reqiallow ^get' },
  reqdeny: { line: 'reqdeny ^TRACE' },
  reqideny: { line: 'reqideny ^trace' },
  reqpass: { line: 'reqpass ^X-Pass' },
  reqipass: { line: 'reqipass ^x-pass' },
  reqtarpit: { line: 'reqtarpit ^User-Agent:.*bot' },
  reqitarpit: { line: 'reqitarpit ^user-agent:.*bot' },
  rspadd: { line: 'rspadd X-Frame-Options:\\ DENY' },
  rspdel: { line: 'rspdel ^Server:.*' },
  rspidel: { line: 'rspidel ^server:.*' },
  rsprep: { line: 'rsprep ^Location:\\ http://(.*) Location:\\ https://\\1' },
  rspirep: { line: 'rspirep ^location:\\ http://(.*) Location:\\ https://\\1' },
  rspdeny: { line: 'rspdeny ^X-Internal:.*' },
  rspideny: { line: 'rspideny ^x-internal:.*' },
  block: { line: 'block if { src 10.0.0.0/8 }' },
  clitimeout: { line: 'clitimeout 60000' },
  srvtimeout: { line: 'srvtimeout 60000' },
  contimeout: { line: 'contimeout 5000' },
  'option http-tunnel': { line: 'option http-tunnel' },
  'option forceclose': { line: 'option forceclose' },
  'option http_proxy': { line: 'option http_proxy' },
  'monitor-net': { line: 'monitor-net 10.0.0.0/8' },
  nbproc: { line: 'nbproc 2', global: true },
  grace: { line: 'grace 5s' },
  'tune.chksize': { line: 'tune.chksize 32768', global: true },
};

describe('LEGACY_DIRECTIVES', () => {
  it('has an example line for every directive (and no example without a directive)', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual(LEGACY_DIRECTIVES.map((d) => d.directive).sort());
    for (const d of LEGACY_DIRECTIVES) expect(EXAMPLES[d.directive]!.global ? 'global' : 'proxy', d.directive).toBe(d.section);
  });

  it.each(Object.entries(EXAMPLES))('finds %s in a line and names its replacement', (directive, { line, global }) => {
    const uses = findLegacyDirectives(['http-request set-header X-A b', `  ${line}`], global ? 'global' : 'proxy');
    expect(uses.map((u) => [u.line, u.directive.directive])).toEqual([[2, directive]]);
    expect(describeLegacyUse(uses[0]!)).toMatch(
      new RegExp(`^line 2: ${directive.replace('.', '\\.')} is HAProxy 1\\.8 syntax that HAProxy 2\\.6 refuses( \\(removed in 2\\.\\d\\))?; instead: .+`),
    );
  });

  it('finds nothing in lines HAProxy 2.6 accepts, including ones that merely mention an old keyword', () => {
    expect(
      findLegacyDirectives(
        [
          'http-request add-header X-Foo bar',
          'option httpclose',
          'option http-server-close',
          'timeout client 60s',
          'acl block_me src 10.0.0.0/8',
          'http-request deny if { hdr(x-reqadd) -m found }',
          'option forwardfor',
        ],
        'proxy',
      ),
    ).toEqual([]);
    expect(legacyHint(['option httpclose'], 'proxy')).toBeUndefined();
  });

  it('looks only in the section the directive belonged to: HAProxy 2.6 has a global grace of its own', () => {
    expect(findLegacyDirectives(['grace 5s'], 'global')).toEqual([]);
    expect(findLegacyDirectives(['grace 5s'], 'proxy').map((u) => u.directive.directive)).toEqual(['grace']);
    expect(findLegacyDirectives(['nbproc 2'], 'proxy')).toEqual([]);
  });

  it('ignores case, as HAProxy does for keywords', () => {
    expect(findLegacyDirectives(['REQADD X-A:\\ b', 'Option Http-Tunnel'], 'proxy').map((u) => u.directive.directive)).toEqual([
      'reqadd',
      'option http-tunnel',
    ]);
  });

  it('describes every use in one hint', () => {
    expect(legacyHint(['reqadd X-A:\\ b', 'balance roundrobin', 'rspadd X-B:\\ c'], 'proxy')).toMatch(
      /^line 1: reqadd .*instead: http-request add-header <name> <value> \(e\.g\. reqadd X-Foo:\\ bar → http-request add-header X-Foo bar\); line 3: rspadd .*http-response add-header/,
    );
  });

  const haproxy = locateExecutable('haproxy', process.env.PATH ?? '');
  it.runIf(haproxy !== undefined)(
    'lists only directives the HAProxy 2.6 the tests run refuses (haproxy -c, in the section edgelb would put them)',
    async () => {
      const settings = testRenderSettings();
      const results = await Promise.all(
        Object.entries(EXAMPLES).map(async ([directive, { line, global }], index) => {
          const entries = new Map([
            ['services/legacy/virtual_hosts', 'legacy.test'],
            ['services/legacy/upstreams/a', '127.0.0.1:8080'],
          ]);
          if (!global) entries.set('services/legacy/custom_settings', line);
          const { config } = parseAndRender(entries, global ? { ...settings, globalSettings: [line] } : settings);
          const file = path.join(settings.stateDir, `haproxy-${index}.cfg`);
          await writeFile(file, config);
          const validation = await validateConfigFile(haproxy!, file);
          const attribution = attributeErrors(config, validation.errors);
          return { directive, ok: validation.ok, service: [...attribution.services.keys()], errors: validation.errors.map((e) => e.message) };
        }),
      );
      // The reason for the sections: a global `grace` is valid in 2.6, and must not be reported.
      const graceFile = path.join(settings.stateDir, 'grace.cfg');
      await writeFile(graceFile, parseAndRender(new Map(), { ...settings, globalSettings: ['grace 5s'] }).config);
      const grace = await validateConfigFile(haproxy!, graceFile);
      await rm(settings.stateDir, { recursive: true, force: true });
      expect(grace, 'global grace 5s').toEqual({ ok: true, errors: [] });
      for (const result of results) {
        expect(result.ok, `${result.directive}: ${result.errors.join(' / ')}`).toBe(false);
        // Refused where edgelb can say so: in the service's section, or (global lines) for the whole config.
        expect(result.service, result.directive).toEqual(EXAMPLES[result.directive]!.global ? [] : ['http:legacy']);
      }
    },
  );
});
