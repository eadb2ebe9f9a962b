import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import type { DesiredState, HttpService, TcpService } from '../model/types.js';
import { packageRoot } from '../util/package-root.js';
import type { NextServerStates } from './servers.js';
import {
  buildHeadView, serverStateView, headKeyOf, httpBackendName, httpBackendView, tcpProxyName, tcpServiceView, type RenderSettings,
} from './view.js';

export const TEMPLATES_DIR = path.join(packageRoot(), 'templates');

export type ConfigRenderer = (state: DesiredState, settings: RenderSettings) => string;

/** A rendered config, and its parts: one section per service (by proxy name) and the rest. */
export interface RenderedConfig {
  readonly text: string;
  /** Everything outside the services' sections (global, defaults, frontends, userlists...). */
  readonly head: string;
  readonly sections: ReadonlyMap<string, string>;
}

export type SectionRenderer = (state: DesiredState, settings: RenderSettings) => RenderedConfig;

/** Desired state to HAProxy config text: a pure function (see createSectionRenderer). */
export function createRenderer(templatesDir: string = TEMPLATES_DIR): ConfigRenderer {
  const render = createSectionRenderer(templatesDir);
  return (state, settings) => render(state, settings).text;
}

// Stands for the services' sections while the head is rendered; cannot come out of a model value.
const SECTIONS_MARK = '\u0000sections\u0000';

/**
 * Compiles the templates once and returns a function from desired state to config text. With
 * 10,000 services, rendering everything for each change would cost close to a second, so
 * each service's section is kept per (immutable) service object and settings, and the head
 * per settings and routes: the output is still exactly what a full render gives.
 */
export function createSectionRenderer(templatesDir: string = TEMPLATES_DIR): SectionRenderer {
  const head = compileTemplate(templatesDir, 'haproxy.cfg.hbs');
  const http = compileTemplate(templatesDir, 'http-backend.hbs');
  const tcp = compileTemplate(templatesDir, 'tcp-service.hbs');
  let sectionCache = new WeakMap<HttpService | TcpService, string>();
  let cachedSettings = '';
  const headKeys = new WeakMap<HttpService, string>();
  let cachedHead: { settings: string; keys: string[]; before: string; after: string; head: string } | undefined;

  return (state, settings) => {
    const settingsKey = JSON.stringify(settings);
    if (settingsKey !== cachedSettings) {
      sectionCache = new WeakMap();
      cachedSettings = settingsKey;
    }
    const sections = new Map<string, string>();
    const section = <S extends HttpService | TcpService>(service: S, name: string, render: (s: S) => string) => {
      let text = sectionCache.get(service);
      if (text === undefined) {
        text = render(service);
        sectionCache.set(service, text);
      }
      sections.set(name, text);
    };
    for (const s of state.http) section(s, httpBackendName(s.name), (x) => http({ ...httpBackendView(x), settings }));
    for (const s of state.tcp) section(s, tcpProxyName(s.name), (x) => tcp({ ...tcpServiceView(x), settings }));

    const keys = state.http.map((s) => {
      let k = headKeys.get(s);
      if (k === undefined) headKeys.set(s, (k = headKeyOf(s)));
      return k;
    });
    // Unchanged services give the very same key string, so most comparisons are by reference.
    const sameHead = cachedHead !== undefined && cachedHead.settings === settingsKey &&
      cachedHead.keys.length === keys.length && keys.every((k, i) => k === cachedHead!.keys[i]);
    if (!sameHead) {
      const text = head({ ...buildHeadView(state, settings), proxySections: SECTIONS_MARK });
      const at = text.indexOf(SECTIONS_MARK);
      // The head keeps its mark: the same string object while nothing in it changes, so comparing heads is cheap.
      cachedHead = { settings: settingsKey, keys, before: text.slice(0, at), after: text.slice(at + SECTIONS_MARK.length), head: text };
    }
    const body = [...sections.values()].join('');
    return {
      text: cachedHead!.before + body + cachedHead!.after,
      head: cachedHead!.head,
      sections,
    };
  };
}

/** One line per served certificate: its file and the SNI names it answers for; the first is the default. */
export type CrtListRenderer = (certs: readonly { file: string; sni: readonly string[] }[]) => string;

export function createCrtListRenderer(templatesDir: string = TEMPLATES_DIR): CrtListRenderer {
  const template = compileTemplate(templatesDir, 'crt-list.hbs');
  return (certs) => template({ certs });
}

/** The server-state file for the next worker (see templates/server-state.hbs). */
export type ServerStateRenderer = (states: NextServerStates) => string;

export function createServerStateRenderer(templatesDir: string = TEMPLATES_DIR): ServerStateRenderer {
  const template = compileTemplate(templatesDir, 'server-state.hbs');
  return (states) => template(serverStateView(states));
}

function compileTemplate(templatesDir: string, name: string): HandlebarsTemplateDelegate {
  const hbs = Handlebars.create();
  hbs.registerHelper('join', (list: readonly string[]) => list.join(' '));
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hbs.registerPartial('check', readFileSync(path.join(templatesDir, 'server-check.hbs'), 'utf8'));
  hbs.registerPartial('access-log-target', readFileSync(path.join(templatesDir, 'access-log-target.hbs'), 'utf8'));
  hbs.registerPartial('access-log-format', readFileSync(path.join(templatesDir, 'access-log-format.hbs'), 'utf8'));
  const source = readFileSync(path.join(templatesDir, name), 'utf8');
  // The output is a config file, not HTML: escaping would corrupt it. Values are made safe by the model.
  return hbs.compile(source, { noEscape: true });
}
