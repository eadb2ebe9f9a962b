import type { Command } from 'commander';
import { desiredFromEntries, entriesInputsOf } from '../pipeline/from-entries.js';
import { settingsBaseOf } from '../pipeline/settings-of.js';
import type { DesiredState } from '../model/types.js';
import { createRenderer } from '../render/render.js';
import type { RenderSettings } from '../render/render-settings.js';
import { addEntrySourceFlags, readEntries, type CliDeps } from './deps.js';
import { count } from './progress.js';

interface RenderFlags extends Record<string, unknown> {
  readonly fromFile?: string;
  readonly showSecrets?: boolean;
}

const HIDDEN = '<hidden:use-show-secrets>';

/**
 * The state and settings with STATS_PASSWORD and basic-auth passwords and hashes replaced by a
 * placeholder before rendering: the output is often pasted into tickets.
 */
function withoutSecrets(state: DesiredState, settings: RenderSettings): { state: DesiredState; settings: RenderSettings } {
  return {
    state: {
      ...state,
      http: state.http.map((s) => (s.basicAuth ? { ...s, basicAuth: { ...s.basicAuth, users: s.basicAuth.users.map((u) => ({ ...u, secret: HIDDEN })) } } : s)),
    },
    settings: settings.stats ? { ...settings, stats: { ...settings.stats, password: HIDDEN } } : settings,
  };
}

/** `edgelb render`: a dry run that prints the HAProxy config `edgelb run` would apply now. */
export function registerRenderCommand(program: Command, deps: CliDeps): void {
  const command = program
    .command('render')
    .description('print the HAProxy config for the entries in etcd (or a file), without applying anything')
    .option('--show-secrets', 'print STATS_PASSWORD and basic-auth passwords instead of hiding them');
  addEntrySourceFlags(command);
  command.addHelpText(
    'after',
    `
The config goes to stdout; nothing is written, started or reloaded. It is rendered by the same
code as \`edgelb run\` (parse, validate, select certificates, templates/haproxy.cfg.hbs) with the
same settings, so it is what run would apply now: the HTTPS listener appears when the vault,
SSL_CERTS or KONTENA_LB_CERTS_DIR hold a certificate run would serve (see \`edgelb cert list\`).
Rejected entries are left out, as run leaves them out, and counted on stderr: \`edgelb check\`
says why.

An entries file holds keys relative to the load balancer's etcd path, flat or nested:

  services/web/virtual_hosts: www.example.com        services:
  services/web/upstreams/web-1: 10.81.0.5:8080         web:
  tcp-services/db/external_port: 5432                    virtual_hosts: www.example.com
                                                         upstreams: {web-1: "10.81.0.5:8080"}

Examples:
  edgelb render --service-name lb > haproxy.cfg
  edgelb render --from-file entries.yaml --http-port 8080 | less`,
  );
  command.action(async (flags: RenderFlags) => {
    const config = deps.loadConfig(flags, { needsEtcd: flags.fromFile === undefined });
    const source = await readEntries(config, flags.fromFile, deps);
    const inputs = await entriesInputsOf(config, source.entries, deps.env);
    const { desired } = await deps.progress.step(
      `validating ${count(source.entries.size)} entries`,
      () => desiredFromEntries(inputs, settingsBaseOf(config)),
      (d) => `${count(d.desired.state.http.length)} HTTP and ${count(d.desired.state.tcp.length)} TCP services, ${count(d.desired.rejected.length)} rejected`,
    );
    const input = flags.showSecrets ? desired : withoutSecrets(desired.state, desired.settings);
    const text = await deps.progress.step(
      'rendering',
      () => createRenderer()(input.state, input.settings),
      (t) => `${count(t.split('\n').length)} lines`,
    );
    deps.out(text);
    const rejected = desired.rejected.length;
    if (rejected > 0) {
      deps.warn(`edgelb: ${rejected} ${rejected === 1 ? 'entry was' : 'entries were'} rejected and left out; run "edgelb check" for the reasons`);
    }
  });
}
