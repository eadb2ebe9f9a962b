/**
 * HAProxy 1.8 directives (the Kontena load balancer's HAProxy) that HAProxy 2.6 refuses, each
 * with what to write instead. Every entry was checked against HAProxy 2.6.12 (`haproxy -c`
 * refuses it) and its configuration manual. The one table behind `edgelb check` and the
 * run-time log line of a service HAProxy refused.
 */
/** Where a line goes: a proxy section (custom_settings, KONTENA_LB_CUSTOM_SETTINGS) or `global`. */
export type SettingsSection = 'proxy' | 'global';

export interface LegacyDirective {
  /** The keyword as it starts a line: `reqadd`, or `option http-tunnel` for an option. */
  readonly directive: string;
  /** The section it was valid in; the same word may be valid elsewhere (2.6 has a global `grace`). */
  readonly section: SettingsSection;
  /** The HAProxy version that removed it, when HAProxy says so. */
  readonly removedIn?: string;
  readonly replacement: string;
}

const header = (action: string, example?: string) => `http-${action}${example ? ` (e.g. ${example})` : ''}`;

/** A proxy keyword HAProxy 2.1 removed. */
const removed = (directive: string, replacement: string): LegacyDirective => ({ directive, section: 'proxy', removedIn: '2.1', replacement });

/** `req<verb>`/`rsp<verb>` and its case-insensitive twin `reqi<verb>`/`rspi<verb>`, both removed in 2.1. */
const withCaseless = (prefix: 'req' | 'rsp', verb: string, replacement: string, caseless = replacement): LegacyDirective[] => [
  removed(`${prefix}${verb}`, replacement),
  removed(`${prefix}i${verb}`, caseless),
];

const PASS = 'remove the line (it only skipped later req* rules)';
const CASELESS_REGEX = '(start the regex with (?i) to ignore case)';

export const LEGACY_DIRECTIVES: readonly LegacyDirective[] = [
  removed('reqadd', header('request add-header <name> <value>', 'reqadd X-Foo:\\ bar → http-request add-header X-Foo bar')),
  ...withCaseless('req', 'del', header('request del-header <name>')),
  ...withCaseless(
    'req',
    'rep',
    'http-request replace-header <name> <regex> <replacement> for a header, http-request replace-path or replace-uri for the request line',
    `http-request replace-header <name> <regex> <replacement> ${CASELESS_REGEX}, or replace-path/replace-uri for the request line`,
  ),
  ...withCaseless('req', 'allow', header('request allow if <condition>')),
  ...withCaseless('req', 'deny', header('request deny if <condition>')),
  ...withCaseless('req', 'pass', PASS),
  ...withCaseless('req', 'tarpit', header('request tarpit if <condition>')),
  removed('rspadd', header('response add-header <name> <value>', 'rspadd X-Frame-Options:\\ DENY → http-response add-header X-Frame-Options DENY')),
  ...withCaseless('rsp', 'del', header('response del-header <name>')),
  ...withCaseless(
    'rsp',
    'rep',
    header('response replace-header <name> <regex> <replacement>'),
    `http-response replace-header <name> <regex> <replacement> ${CASELESS_REGEX}`,
  ),
  ...withCaseless('rsp', 'deny', header('response deny if <condition>')),
  removed('block', 'http-request deny with the same condition (block if X → http-request deny if X)'),
  removed('clitimeout', 'timeout client <time>'),
  removed('srvtimeout', 'timeout server <time>'),
  removed('contimeout', 'timeout connect <time>'),
  removed(
    'option http-tunnel',
    'remove the line (HAProxy 2.x forwards WebSockets and other upgraded connections itself; KONTENA_LB_TUNNEL_TIMEOUT sets their idle timeout)',
  ),
  {
    directive: 'option forceclose',
    section: 'proxy',
    removedIn: '2.0',
    replacement: 'remove the line, or option httpclose if each connection must really be closed after one response',
  },
  { directive: 'option http_proxy', section: 'proxy', removedIn: '2.5', replacement: 'http-request set-dst and http-request set-uri' },
  {
    directive: 'monitor-net',
    section: 'proxy',
    replacement: 'http-request return status 200 if { src <network> } (or KONTENA_LB_HEALTH_URI for a health check path)',
  },
  {
    directive: 'nbproc',
    section: 'global',
    removedIn: '2.5',
    replacement: 'remove the line (HAProxy 2.6 runs one process with a thread per CPU; nbthread sets the count)',
  },
  // The proxy keyword; HAProxy 2.6 has a global `grace` of its own, which is valid.
  {
    directive: 'grace',
    section: 'proxy',
    removedIn: '2.5',
    replacement: 'remove the line (KONTENA_LB_HARD_STOP_AFTER bounds how long old workers finish their connections)',
  },
  { directive: 'tune.chksize', section: 'global', replacement: 'remove the line (HAProxy uses tune.bufsize for checks)' },
];

const BY_DIRECTIVE = new Map(LEGACY_DIRECTIVES.map((d) => [`${d.section} ${d.directive}`, d]));

/** One use of a legacy directive: the line's number among the setting's (non-empty) lines. */
export interface LegacyUse {
  readonly line: number;
  readonly directive: LegacyDirective;
}

/** Every line of a custom or global setting that starts with a directive HAProxy 2.6 refuses there. */
export function findLegacyDirectives(lines: readonly string[], section: SettingsSection): LegacyUse[] {
  const uses: LegacyUse[] = [];
  lines.forEach((line, index) => {
    const [first = '', second = ''] = line.trim().toLowerCase().split(/\s+/);
    const directive = BY_DIRECTIVE.get(`${section} ${first === 'option' ? `option ${second}` : first}`);
    if (directive) uses.push({ line: index + 1, directive });
  });
  return uses;
}

/** `line 2: reqadd is HAProxy 1.8 syntax (removed in 2.1); instead: http-request add-header ...`. */
export function describeLegacyUse(use: LegacyUse): string {
  const { directive, removedIn, replacement } = use.directive;
  return `line ${use.line}: ${directive} is HAProxy 1.8 syntax that HAProxy 2.6 refuses${removedIn ? ` (removed in ${removedIn})` : ''}; instead: ${replacement}`;
}

/** All uses in `lines`, described in one string; undefined when there are none. */
export function legacyHint(lines: readonly string[], section: SettingsSection): string | undefined {
  const uses = findLegacyDirectives(lines, section);
  return uses.length === 0 ? undefined : uses.map(describeLegacyUse).join('; ');
}

/** HAProxy 1.8 directives in the environment's settings, each named with its replacement. */
export function legacySettingsHints(globalSettings: readonly string[], defaultsSettings: readonly string[]): string[] {
  const settings = [
    ['KONTENA_LB_GLOBAL_SETTINGS', globalSettings, 'global'],
    ['KONTENA_LB_CUSTOM_SETTINGS', defaultsSettings, 'proxy'],
  ] as const;
  return settings.flatMap(([name, lines, section]) => {
    const hint = legacyHint(lines, section);
    return hint ? [`${name} ${hint}`] : [];
  });
}
