import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import type { Challenges } from '../model/challenges.js';
import type { DesiredState, HttpService, TcpService, Upstream } from '../model/types.js';
import { packageRoot } from '../util/package-root.js';
import { changedServices, findService, sameValue } from '../model/state-changes.js';
import type { NextServerStates } from './servers.js';
import type { RenderSettings } from './render-settings.js';
import { buildHeadView, httpBackendView, serverStateView, serverViewOf, serviceHeadView, tcpServiceView } from './view.js';

export const TEMPLATES_DIR = path.join(packageRoot(), 'templates');

export type ConfigRenderer = (state: DesiredState, settings: RenderSettings) => string;

/**
 * A rendered config: the head (everything outside the services' sections: global, defaults,
 * frontends, userlists...) and one section per service, kept per (immutable) service object.
 * The whole text is only joined when asked for (the reload path, the file on disk): with
 * 10,000 services that costs about 20 ms, which a change to one instance must not pay.
 */
export interface RenderedConfig {
  /** The head, with a mark where the sections go: the same string object while it does not change. */
  readonly head: string;
  readonly state: DesiredState;
  /** The settings it was rendered with, and as a key: sections of the same service differ under other settings. */
  readonly settings: RenderSettings;
  readonly settingsKey: string;
  /** The whole config text, joined on each read. */
  readonly text: string;
  /** The text in order, in pieces, to write it without making one big string. */
  pieces(): Iterable<string>;
  /** The section of a service by key (`http:web`); undefined when the config has no such service. */
  sectionOf(serviceKey: string): string | undefined;
}

export type SectionRenderer = (state: DesiredState, settings: RenderSettings) => RenderedConfig;

/** Desired state to HAProxy config text: a pure function (see createSectionRenderer). */
export function createRenderer(templatesDir: string = TEMPLATES_DIR): ConfigRenderer {
  const render = createSectionRenderer(templatesDir);
  return (state, settings) => render(state, settings).text;
}

// Stands for the services' sections while the head is rendered; cannot come out of a model value.
const SECTIONS_MARK = '\u0000sections\u0000';

interface Head {
  readonly text: string;
  readonly before: string;
  readonly after: string;
}

/**
 * Compiles the templates once and returns a function from desired state to rendered config.
 * With 10,000 services, rendering everything for each change would cost close to a second, so
 * each service's section is kept per (immutable) service object and settings, and the head is
 * rendered again only when what a changed service puts in the head changed (serviceHeadView) or the
 * settings did: the output is still exactly what a full render gives. What changed since the
 * previous render comes from changedServices (what the incremental parse recorded).
 */
export function createSectionRenderer(templatesDir: string = TEMPLATES_DIR): SectionRenderer {
  const headTemplate = compileTemplate(templatesDir, 'haproxy.cfg.hbs');
  const http = compileTemplate(templatesDir, 'http-backend.hbs');
  const tcp = compileTemplate(templatesDir, 'tcp-service.hbs');
  let sections = new WeakMap<HttpService | TcpService, string>();
  let cachedSettings = '';
  let last: Rendering | undefined;

  return (state, settings) => {
    const settingsKey = JSON.stringify(settings);
    if (settingsKey !== cachedSettings) {
      sections = new WeakMap();
      cachedSettings = settingsKey;
    }
    const cache = sections;
    const sectionOf = (service: HttpService | TcpService): string => {
      let text = cache.get(service);
      if (text === undefined) {
        text = flat(service.kind === 'http' ? http({ ...httpBackendView(service), settings }) : tcp({ ...tcpServiceView(service), settings }));
        cache.set(service, text);
      }
      return text;
    };
    const previous = last?.settingsKey === settingsKey ? last : undefined;
    const changed = previous && changedServices(previous.state, state);
    if (previous && changed!.size === 0) return previous;
    let head = previous && sameHead(previous.state, state, changed!) ? previous.headParts : undefined;
    if (!head) {
      const text = headTemplate({ ...buildHeadView(state, settings), proxySections: SECTIONS_MARK });
      const at = text.indexOf(SECTIONS_MARK);
      // The same string object while nothing in it changes, so comparing heads is cheap.
      head = last?.headParts.text === text ? last.headParts : { text, before: text.slice(0, at), after: text.slice(at + SECTIONS_MARK.length) };
    }
    last = new Rendering(state, settings, settingsKey, head, sectionOf);
    return last;
  };
}

/**
 * The same string, flattened: Handlebars builds its output by concatenation, a tree of pieces
 * that takes three times the memory of the text (10,000 sections: 5 MB instead of 2). Converting
 * it to a number makes V8 flatten it in place.
 */
function flat(text: string): string {
  Number(text);
  return text;
}

/** Whether the head of `after` is that of `before`: no service came or went, and no changed one has other routes or users. */
function sameHead(before: DesiredState, after: DesiredState, changed: ReadonlySet<string>): boolean {
  for (const key of changed) {
    const old = findService(before, key);
    const now = findService(after, key);
    if (!old || !now) return false;
    if (old.kind === 'http' && !sameValue(serviceHeadView(old), serviceHeadView(now as HttpService))) return false;
  }
  return true;
}

class Rendering implements RenderedConfig {
  constructor(
    readonly state: DesiredState,
    readonly settings: RenderSettings,
    readonly settingsKey: string,
    readonly headParts: Head,
    private readonly section: (service: HttpService | TcpService) => string,
  ) {}

  get head(): string {
    return this.headParts.text;
  }

  get text(): string {
    return [...this.pieces()].join('');
  }

  *pieces(): Generator<string> {
    yield this.headParts.before;
    for (const s of this.state.http) yield this.section(s);
    for (const s of this.state.tcp) yield this.section(s);
    yield this.headParts.after;
  }

  sectionOf(serviceKey: string): string | undefined {
    const service = findService(this.state, serviceKey);
    return service && this.section(service);
  }
}

/** One crt-list line: a certificate's file, the SNI names it answers for, and any client-certificate check. */
export interface CrtListLine {
  readonly file: string;
  readonly sni: readonly string[];
  readonly clientAuth?: { readonly verify: 'required' | 'optional'; readonly caFile: string; readonly crlFile?: string };
}

/** One line per served certificate, the first the default; then the client-certificate checks' lines. */
export type CrtListRenderer = (certs: readonly CrtListLine[]) => string;

export function createCrtListRenderer(templatesDir: string = TEMPLATES_DIR): CrtListRenderer {
  const template = compileTemplate(templatesDir, 'crt-list.hbs');
  return (certs) => template({ certs });
}

/** The ACME challenge map file (templates/challenge-map.hbs). */
export type ChallengeMapRenderer = (challenges: Challenges) => string;

export function createChallengeMapRenderer(templatesDir: string = TEMPLATES_DIR): ChallengeMapRenderer {
  const template = compileTemplate(templatesDir, 'challenge-map.hbs');
  return (challenges) => template({ challenges: [...challenges].map(([token, keyAuthorization]) => ({ token, keyAuthorization })) });
}

/** The server-state file for the next worker (see templates/server-state.hbs). */
export type ServerStateRenderer = (states: NextServerStates) => string;

export function createServerStateRenderer(templatesDir: string = TEMPLATES_DIR): ServerStateRenderer {
  const template = compileTemplate(templatesDir, 'server-state.hbs');
  return (states) => template(serverStateView(states));
}

/** A server's arguments after its address, as the config file has them: for `add server` (runtime API). */
export type ServerArgsRenderer = (service: HttpService | TcpService, upstream: Upstream, settings: RenderSettings) => string;

export function createServerArgsRenderer(templatesDir: string = TEMPLATES_DIR): ServerArgsRenderer {
  const template = compileTemplate(templatesDir, undefined, '{{> server-args}}');
  return (service, upstream, settings) => template({ ...serverViewOf(service, upstream), settings });
}

function compileTemplate(templatesDir: string, name: string | undefined, inline?: string): HandlebarsTemplateDelegate {
  const hbs = Handlebars.create();
  hbs.registerHelper('join', (list: readonly string[]) => list.join(' '));
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hbs.registerPartial('check', readFileSync(path.join(templatesDir, 'server-check.hbs'), 'utf8'));
  hbs.registerPartial('server-args', readFileSync(path.join(templatesDir, 'server-args.hbs'), 'utf8'));
  hbs.registerPartial('access-log-target', readFileSync(path.join(templatesDir, 'access-log-target.hbs'), 'utf8'));
  hbs.registerPartial('access-log-format', readFileSync(path.join(templatesDir, 'access-log-format.hbs'), 'utf8'));
  const source = name === undefined ? inline! : readFileSync(path.join(templatesDir, name), 'utf8');
  // The output is a config file, not HTML: escaping would corrupt it. Values are made safe by the model.
  // Strict: a value the template prints but the view lacks (a renamed field) throws instead of
  // rendering as empty text; `{{#if}}` on an absent optional field stays allowed.
  return hbs.compile(source, { noEscape: true, strict: true });
}
