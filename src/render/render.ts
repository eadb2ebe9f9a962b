import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import type { DesiredState } from '../model/types.js';
import { packageRoot } from '../util/package-root.js';
import { buildView, type RenderSettings } from './view.js';

export const TEMPLATES_DIR = path.join(packageRoot(), 'templates');

export type ConfigRenderer = (state: DesiredState, settings: RenderSettings) => string;

/**
 * Compiles templates/haproxy.cfg.hbs once and returns a pure function from desired state
 * to HAProxy config text. A private Handlebars environment keeps helpers out of the global one.
 */
export function createRenderer(templatesDir: string = TEMPLATES_DIR): ConfigRenderer {
  const template = compileTemplate(templatesDir, 'haproxy.cfg.hbs');
  return (state, settings) => template(buildView(state, settings));
}

/** One line per served certificate: its file and the SNI names it answers for; the first is the default. */
export type CrtListRenderer = (certs: readonly { file: string; sni: readonly string[] }[]) => string;

export function createCrtListRenderer(templatesDir: string = TEMPLATES_DIR): CrtListRenderer {
  const template = compileTemplate(templatesDir, 'crt-list.hbs');
  return (certs) => template({ certs });
}

function compileTemplate(templatesDir: string, name: string): HandlebarsTemplateDelegate {
  const hbs = Handlebars.create();
  hbs.registerHelper('join', (list: readonly string[]) => list.join(' '));
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  const source = readFileSync(path.join(templatesDir, name), 'utf8');
  // The output is a config file, not HTML: escaping would corrupt it. Values are made safe by the model.
  return hbs.compile(source, { noEscape: true });
}
