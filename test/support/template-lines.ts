import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TEMPLATES_DIR } from '../../src/render/render.js';

/**
 * Every line shape the templates can write, as regular expressions built from the templates
 * themselves: literal text must match exactly, and each value the template inserts must be one
 * word (or, for lists, words separated by single spaces) free of anything HAProxy's config
 * tokenizer reads as syntax: whitespace, quotes, '#', backslash. A rendered line that matches
 * none of them is a directive the templates did not write.
 *
 * Lines that insert raw setting lines (`{{this}}`: custom_settings, KONTENA_LB_*_SETTINGS, the
 * documented exception) are not shapes: a config checked with them must not contain any.
 */
const WORD = `[^\\s"'#\\\\]+`;
const WORDS = `${WORD}(?: ${WORD})*`;
// Inserted values that are several words by design.
const MULTI_WORD = new Set(['join', 'balance']);
// Inserted values the template puts between single quotes, where HAProxy's tokenizer reads
// everything up to the next "'" literally (configuration manual 2.6, 2.2): spaces may appear, but
// no quote, backslash or control byte; and as log-format strings (8.2.4), no '%' that is not
// doubled (header values: request_headers, response_headers).
const QUOTED = new Set(['quoted']);
const QUOTED_TEXT = `(?:[^'\\\\\\u0000-\\u001f\\u007f%]|%%)+`;

export function templateLinePatterns(templatesDir = TEMPLATES_DIR): RegExp[] {
  const read = (name: string) =>
    readFileSync(path.join(templatesDir, name), 'utf8')
      .replace(/\{\{!--[\s\S]*?--\}\}\n?/g, '')
      .replace(/\{\{![^}]*\}\}/g, '');
  const check = read('server-check.hbs').trim();
  const serverArgs = read('server-args.hbs').trim().replaceAll('{{> check}}', check);
  const patterns: RegExp[] = [];
  // The access-log partials' lines stand on their own: their call lines write nothing themselves.
  for (const name of ['haproxy.cfg.hbs', 'http-backend.hbs', 'tcp-service.hbs', 'access-log-target.hbs', 'access-log-format.hbs']) {
    for (const line of read(name).replaceAll('{{> server-args}}', serverArgs).replaceAll('{{> check}}', check).split('\n')) {
      const shape = lineShape(line.trimEnd());
      if (shape !== undefined) patterns.push(new RegExp(`^${shape}$`));
    }
  }
  return patterns;
}

function lineShape(line: string): string | undefined {
  const tags = line.match(/\{\{[^}]*\}\}/g) ?? [];
  const onlyTags = line.replace(/\{\{[^}]*\}\}/g, '').trim() === '';
  if (onlyTags && tags.every((t) => /^\{\{~?[#/^]|^\{\{~?else\b/.test(t))) return undefined; // block helpers only: no output line
  if (onlyTags && tags.length === 1 && /^\{\{~?(this|proxySections)~?\}\}$/.test(tags[0]!)) return undefined;
  if (onlyTags && tags.length === 1 && /^\{\{> /.test(tags[0]!)) return undefined;
  if (onlyTags && tags.length === 1 && tags[0] === '{{cookieLine}}') return `${indent(line)}cookie ${WORDS}`;
  let out = '';
  let rest = line;
  for (;;) {
    const match = /\{\{~?([^}]*?)~?\}\}/.exec(rest);
    if (!match) break;
    out += escapeRegex(rest.slice(0, match.index));
    out += tagShape(match[1]!.trim());
    rest = rest.slice(match.index + match[0].length);
  }
  return out + escapeRegex(rest);
}

function tagShape(tag: string): string {
  if (/^#(if|unless)\b/.test(tag)) return '(?:';
  if (/^else\b/.test(tag)) return '|';
  if (/^\/(if|unless)$/.test(tag)) return ')?';
  if (/^#each\b/.test(tag)) return '(?:';
  if (tag === '/each') return ')*';
  if (/^(#with\b|\/with$)/.test(tag)) return '';
  const helper = tag.split(/\s+/)[0]!;
  const field = tag.split('.').at(-1)!;
  if (QUOTED.has(field)) return QUOTED_TEXT;
  return MULTI_WORD.has(helper) || MULTI_WORD.has(field) ? WORDS : WORD;
}

function indent(line: string): string {
  return /^\s*/.exec(line)![0];
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The rendered lines no template line shape accounts for. */
export function foreignLines(config: string, patterns: readonly RegExp[]): string[] {
  return config
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '' && !patterns.some((p) => p.test(l)));
}
