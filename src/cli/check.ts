import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { HaproxyRuntime } from '../haproxy/runtime.js';
import { CertFiles } from '../haproxy/cert-files.js';
import type { DesiredConfig } from '../pipeline/desired-config.js';
import { desiredFromEntries, entriesInputsOf } from '../pipeline/from-entries.js';
import { settingsBaseOf, statePaths } from '../pipeline/settings-of.js';
import { rejectionReason } from '../admin/metrics.js';
import { locateExecutable, type Config } from '../config.js';
import { validateConfigFile } from '../haproxy/validate.js';
import { HTTP_SECTION, serviceFieldOf, TCP_SECTION, TOP_DIRS } from '../model/keyspace.js';
import { keyOf } from '../model/keyspace-rows.js';
import { describeLegacyUse, findLegacyDirectives, type SettingsSection } from '../model/legacy-directives.js';
import type { Entries } from '../model/types.js';
import { parseSettingLines } from '../model/values.js';
import { entryWarnings } from '../model/warnings.js';
import { attributeErrors } from '../render/attribute.js';
import { createCrtListRenderer, createRenderer } from '../render/render.js';
import { addEntrySourceFlags, readEntries, type CliDeps } from './deps.js';
import { count } from './progress.js';
import { layoutTable } from './table.js';

interface CheckFlags extends Record<string, unknown> {
  readonly fromFile?: string;
  readonly json?: boolean;
  readonly haproxy?: boolean;
}

/** One thing `edgelb run` would leave out, refuse or warn about. */
export interface CheckProblem {
  /**
   * entry: an etcd entry the model rejects; haproxy: lines `haproxy -c` refuses; legacy: an HAProxy 1.8
   * directive, with its replacement; certificate: a vault bundle; layout: a key nothing reads;
   * warning: served as written, but worth knowing (the only kind that does not make check exit 1).
   */
  readonly kind: 'entry' | 'haproxy' | 'legacy' | 'certificate' | 'layout' | 'warning';
  /** The etcd key (relative to the LB path), the service (`http:web`), or the certificate source. */
  readonly subject: string;
  /** The bounded class, as in the admin port's edgelb_rejected_entries{reason}. */
  readonly reason: string;
  readonly message: string;
  /** Set when the whole service is left out because of it. */
  readonly service?: string;
}

export interface CheckReport {
  readonly source: string;
  readonly entries: number;
  readonly services: { readonly http: number; readonly tcp: number };
  /** Whether `haproxy -c` accepted the rendered config; null when skipped (--no-haproxy). */
  readonly haproxyOk: boolean | null;
  readonly problems: readonly CheckProblem[];
}

const KNOWN_SUBTREES: ReadonlySet<string> = new Set(TOP_DIRS);
/** `services/, tcp-services/, certs/, acme/ or peers/`, for the layout problem's message. */
const KNOWN_SUBTREES_TEXT = `${TOP_DIRS.slice(0, -1)
  .map((dir) => `${dir}/`)
  .join(', ')} or ${TOP_DIRS.at(-1)}/`;
const CUSTOM_SETTINGS_KEYS: ReadonlySet<string> = new Set([keyOf(HTTP_SECTION, 'customSettings'), keyOf(TCP_SECTION, 'customSettings')]);

/** `edgelb check`: validates the entries and the config they render to; exits 1 when anything would be left out. */
export function registerCheckCommand(program: Command, deps: CliDeps): void {
  const command = program
    .command('check')
    .description('validate the entries in etcd (or a file) and the HAProxy config they render to; list what would be rejected and why')
    .option('--json', 'print the report as JSON')
    .option('--no-haproxy', 'skip `haproxy -c` on the rendered config (when HAProxy is not installed here)');
  addEntrySourceFlags(command);
  command.addHelpText(
    'after',
    `
Runs the same steps as \`edgelb run\`, short of applying: every entry is parsed and validated,
the config is rendered and checked with \`haproxy -c\` (HAProxy's own parser), and the vault's
certificates are decrypted and checked. Nothing is written outside a temporary directory.

Reported, each with the etcd key and the reason:
  entry        a value edgelb refuses (bad host, path, upstream, port conflict, unknown setting...)
  haproxy      a service whose lines HAProxy refuses (usually custom_settings); run leaves it out
  legacy       an HAProxy 1.8 directive (reqadd, rspadd, block...) in custom_settings or
               KONTENA_LB_CUSTOM_SETTINGS/KONTENA_LB_GLOBAL_SETTINGS, with what to write instead
  certificate  a vault bundle that cannot be served (does not decrypt, key does not match...)
  layout       a key under the etcd path that nothing reads (a typo such as "service/web/...")
  warning      served as written, at a cost (bcrypt basic-auth hashes: one bcrypt run per request)

Exit status: 0 nothing would be refused (warnings may be listed), 1 problems found, 2 the check
could not run (settings, etcd, file).

Examples:
  edgelb check --service-name lb
  edgelb check --from-file entries.yaml --json`,
  );
  command.action(async (flags: CheckFlags) => {
    let haproxyOk: boolean | null = null;
    let services = { http: 0, tcp: 0 };
    const config = deps.loadConfig(flags, { needsEtcd: flags.fromFile === undefined });
    const haproxyBin =
      flags.haproxy === false
        ? undefined
        : (locateExecutable(config.haproxyBin, deps.searchPath) ??
          deps.fail(
            `cannot find ${JSON.stringify(config.haproxyBin)} to run "haproxy -c" (install haproxy, set KONTENA_LB_HAPROXY_BIN, or pass --no-haproxy)`,
            2,
          ));
    const source = await readEntries(config, flags.fromFile, deps);
    const problems: CheckProblem[] = [];
    // Rendered against a scratch state dir: the challenge map, the certificates and the crt-list
    // must exist for haproxy -c to load them, and nothing of a running edgelb may be touched.
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'edgelb-check-'));
    try {
      const base = settingsBaseOf(config, tmp);
      const inputs = await entriesInputsOf(config, source.entries, deps.env);
      const { desired, offers: allOffers } = await deps.progress.step(
        `validating ${count(source.entries.size)} entries`,
        () => desiredFromEntries(inputs, base),
        (d) => `${count(d.desired.rejected.length)} rejected`,
      );
      for (const r of desired.rejected) {
        problems.push({ kind: 'entry', subject: r.key, reason: rejectionReason(r), message: r.reason, ...(r.service ? { service: r.service } : {}) });
      }
      problems.push(...layoutProblems(source.entries), ...legacyProblems(source.entries, config));
      for (const w of entryWarnings(desired.state)) problems.push({ kind: 'warning', subject: w.key, reason: 'entry_warning', message: w.reason });
      for (const o of allOffers)
        for (const r of o.rejected) problems.push({ kind: 'certificate', subject: r.key, reason: 'invalid_certificate', message: r.reason });
      for (const r of desired.certs.rejected) problems.push({ kind: 'certificate', subject: r.source, reason: 'invalid_certificate', message: r.reason });
      for (const w of desired.certs.warnings) problems.push({ kind: 'certificate', subject: 'certificates', reason: 'certificate_warning', message: w });
      if (haproxyBin !== undefined) {
        haproxyOk = await checkWithHaproxy(haproxyBin, desired, tmp, deps, problems);
      }
      services = { http: desired.state.http.length, tcp: desired.state.tcp.length };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }

    const report: CheckReport = {
      source: source.description,
      entries: source.entries.size,
      services,
      haproxyOk,
      problems,
    };
    if (flags.json) deps.out(`${JSON.stringify(report, null, 2)}\n`);
    else deps.out(`${humanReport(report).join('\n')}\n`);
    if (problems.some((p) => p.kind !== 'warning')) deps.exitCode(1);
  });
}

/**
 * Writes what `edgelb run` would write (config, certificates, crt-list, challenge map) to the
 * scratch dir and runs `haproxy -c` on it; HAProxy's errors become problems of their services.
 */
async function checkWithHaproxy(haproxyBin: string, desired: DesiredConfig, tmp: string, deps: CliDeps, problems: CheckProblem[]): Promise<boolean> {
  const paths = statePaths(tmp);
  await writeFile(paths.challengeMap, '');
  await writeFile(paths.canaryMap, '');
  const certFiles = new CertFiles({
    dir: paths.certsDir,
    crtList: paths.crtList,
    renderCrtList: createCrtListRenderer(),
    runtime: new HaproxyRuntime(paths.adminSocket),
  });
  if (desired.certs.served.length > 0 || (desired.certs.caFiles ?? []).length > 0) await certFiles.write(desired.certs);
  const text = await deps.progress.step(
    'rendering',
    () => createRenderer()(desired.state, desired.settings),
    (t) => `${count(t.split('\n').length)} lines`,
  );
  const file = path.join(tmp, 'haproxy.cfg');
  await writeFile(file, text);
  const validation = await deps.progress.step(
    'haproxy -c',
    () => validateConfigFile(haproxyBin, file),
    (v) => (v.ok ? 'valid' : `${v.errors.length} errors`),
  );
  const attribution = attributeErrors(text, validation.errors);
  for (const [service, messages] of attribution.services) {
    for (const message of messages)
      problems.push({
        kind: 'haproxy',
        subject: service,
        reason: 'haproxy_rejected',
        message: withoutTempPath(message),
        service: service.replace(/^(http|tcp):/, ''),
      });
  }
  for (const message of attribution.unattributed) {
    problems.push({
      kind: 'haproxy',
      subject: 'global settings',
      reason: 'haproxy_rejected',
      message: `${withoutTempPath(message)} (the whole config would be refused: check KONTENA_LB_GLOBAL_SETTINGS / KONTENA_LB_CUSTOM_SETTINGS / KONTENA_LB_SSL_CIPHERS / KONTENA_LB_SSL_CIPHERSUITES / SYSLOG_TARGET)`,
    });
  }
  return validation.ok;
}

/** `parsing [/tmp/edgelb-check-x/haproxy.cfg:85] : unknown keyword` → `rendered config line 85: unknown keyword`. */
function withoutTempPath(message: string): string {
  return message.replace(/^parsing \[[^\]]*:(\d+)\]\s*:\s*/, 'rendered config line $1: ');
}

/**
 * HAProxy 1.8 directives in any custom_settings entry and in the environment's settings, each with
 * its replacement. `haproxy -c` refuses them too, but names neither the etcd key nor (for some) what
 * to write instead, and --no-haproxy skips it.
 */
function legacyProblems(entries: Entries, config: Config): CheckProblem[] {
  const problems: CheckProblem[] = [];
  const report = (subject: string, lines: readonly string[], section: SettingsSection, service: string | undefined) => {
    for (const use of findLegacyDirectives(lines, section)) {
      problems.push({ kind: 'legacy', subject, reason: 'haproxy_1_8_directive', message: describeLegacyUse(use), ...(service ? { service } : {}) });
    }
  };
  for (const [key, value] of entries) {
    const field = serviceFieldOf(key);
    if (!field || !CUSTOM_SETTINGS_KEYS.has(field.field)) continue;
    let lines: string[];
    try {
      lines = parseSettingLines(value, field.field);
    } catch {
      continue; // already reported as an invalid entry
    }
    report(key, lines, 'proxy', field.service);
  }
  report('KONTENA_LB_CUSTOM_SETTINGS', config.customSettings, 'proxy', undefined);
  report('KONTENA_LB_GLOBAL_SETTINGS', config.globalSettings, 'global', undefined);
  return problems;
}

/** Keys in subtrees no source reads: `edgelb run` ignores them without a word, so check says so. */
function layoutProblems(entries: Entries): CheckProblem[] {
  const problems: CheckProblem[] = [];
  for (const key of entries.keys()) {
    const top = key.split('/')[0] ?? '';
    if (!KNOWN_SUBTREES.has(top)) {
      problems.push({ kind: 'layout', subject: key, reason: 'unknown_subtree', message: `nothing reads "${top}/": entries go under ${KNOWN_SUBTREES_TEXT}` });
    }
  }
  return problems;
}

function humanReport(report: CheckReport): string[] {
  const lines = [
    `checked ${count(report.entries)} entries from ${report.source}`,
    `would serve ${count(report.services.http)} HTTP and ${count(report.services.tcp)} TCP services; haproxy -c: ${report.haproxyOk === null ? 'skipped' : report.haproxyOk ? 'valid' : 'REFUSED'}`,
  ];
  if (report.problems.length === 0) return [...lines, 'ok: nothing would be rejected'];
  lines.push('');
  const rows = report.problems.map((p) => [p.kind, p.subject, p.reason, p.service ? `${p.message} (service ${p.service} left out)` : p.message]);
  lines.push(...layoutTable(['KIND', 'KEY / SERVICE', 'CLASS', 'REASON'], rows));
  const warnings = report.problems.filter((p) => p.kind === 'warning').length;
  const problems = report.problems.length - warnings;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push('');
  if (problems > 0)
    lines.push(`${plural(problems, 'problem')}: edgelb run would leave ${problems === 1 ? 'it' : 'them'} out and log each (see README, Troubleshooting)`);
  else lines.push('ok: nothing would be rejected');
  if (warnings > 0) lines.push(`${plural(warnings, 'warning')}: served as written; edgelb run logs each as "entry warning"`);
  return lines;
}
