import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { SETTINGS } from '../../src/config.js';
import { envNamesInSource } from '../support/env-names.js';

// This test reads docker/Dockerfile: it must parse, copy only files that exist (and that
// .dockerignore lets through), build with the same steps as scripts/setup.sh (which every test run
// executes), and ship what edgelb needs at run time. scripts/image-test.sh builds it and runs the
// image (test/image/) where a Docker engine can start, so these checks also hold where none can.

const ROOT = path.resolve(import.meta.dirname, '../..');
const defaultOf = (env: string) => {
  const setting = SETTINGS.find((s) => s.env === env);
  return setting && 'default' in setting ? setting.default : undefined;
};
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
  /** Index of the build stage (FROM) it belongs to. */
  readonly stage: number;
}

const KEYWORDS = new Set([
  'FROM',
  'RUN',
  'CMD',
  'LABEL',
  'EXPOSE',
  'ENV',
  'ADD',
  'COPY',
  'ENTRYPOINT',
  'VOLUME',
  'USER',
  'WORKDIR',
  'ARG',
  'ONBUILD',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
]);

/** Dockerfile syntax: comments, line continuations with `\`, one instruction per logical line. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  let stage = -1;
  for (const [index, raw] of text.split('\n').entries()) {
    if (pending === '' && (raw.trim() === '' || raw.trimStart().startsWith('#'))) continue;
    if (pending !== '' && raw.trimStart().startsWith('#')) continue; // comments inside a continuation
    if (pending === '') startLine = index + 1;
    const continued = raw.endsWith('\\');
    pending += `${continued ? raw.slice(0, -1) : raw} `;
    if (continued) continue;
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(pending.trim());
    if (!match) throw new Error(`line ${startLine}: not an instruction: ${pending.trim()}`);
    const keyword = match[1]!.toUpperCase();
    if (!KEYWORDS.has(keyword)) throw new Error(`line ${startLine}: unknown instruction ${keyword}`);
    if (keyword === 'FROM') stage++;
    instructions.push({ keyword, args: match[2]!.replace(/\s+/g, ' ').trim(), line: startLine, stage });
    pending = '';
  }
  if (pending !== '') throw new Error('the file ends inside a line continuation');
  return instructions;
}

const dockerfile = parseDockerfile(read('docker/Dockerfile'));
const args = new Map(
  dockerfile
    .filter((i) => i.keyword === 'ARG' && i.stage === -1)
    .map((i) => {
      const [name, value] = i.args.split('=');
      return [name!, value ?? ''] as const;
    }),
);
const expand = (text: string) => text.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => args.get(name) ?? '');
const stages = dockerfile
  .filter((i) => i.keyword === 'FROM')
  .map((i) => {
    const [image, as, name] = expand(i.args).split(' ');
    return { image: image!, name: as?.toUpperCase() === 'AS' ? name : undefined };
  });
const finalStage = stages.length - 1;
const inStage = (stage: number, keyword: string) => dockerfile.filter((i) => i.stage === stage && i.keyword === keyword);
const runs = (stage: number) =>
  inStage(stage, 'RUN')
    .flatMap((i) => i.args.split(/\s*(?:&&|;)\s*/))
    .map((c) => c.trim());

/** `COPY [--from=x] [--chown=...] src... dest` → its sources and destination. */
function copyParts(i: Instruction) {
  const words = i.args.split(' ');
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
  const rest = words.filter((w) => !w.startsWith('--'));
  return { from, sources: rest.slice(0, -1), dest: rest.at(-1)! };
}

function dockerignoreAllows(file: string): boolean {
  let allowed = true;
  for (const line of read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pattern = (negate ? line.slice(1) : line).replace(/\/$/, '');
    const matches = pattern === '*' || file === pattern || file.startsWith(`${pattern}/`);
    if (matches) allowed = negate;
  }
  return allowed;
}

describe('docker/Dockerfile', () => {
  it('parses, with a build stage and a final stage', () => {
    expect(dockerfile.length).toBeGreaterThan(10);
    expect(stages.length).toBeGreaterThanOrEqual(2);
  });

  it('takes its two bases as build arguments, which scripts/image-test.sh sets to local bases without a registry', () => {
    const froms = dockerfile.filter((i) => i.keyword === 'FROM').map((i) => i.args.split(' ')[0]);
    expect(new Set(froms)).toEqual(new Set(['${NODE_IMAGE}', '${HAPROXY_IMAGE}']));
    for (const name of ['HAPROXY_IMAGE', 'NODE_IMAGE']) expect(read('scripts/image/local-bases.sh')).toContain(`echo "${name}=`);
  });

  it('is based on the official HAProxy image of the 2.x line the tests run', () => {
    const image = stages[finalStage]!.image;
    const tested = /HAProxy version (\d+\.\d+)/.exec(
      execFileSync('haproxy', ['-v'], { encoding: 'utf8', env: { PATH: `${process.env.PATH}:/usr/sbin:/usr/local/sbin` } }),
    )![1];
    expect(image).toMatch(/^haproxy:2\.\d+(-[a-z]+)?$/);
    expect(image.startsWith(`haproxy:${tested}`), `${image} vs the tested HAProxy ${tested}`).toBe(true);
  });

  it('takes Node from the major version package.json asks for and the tests run, on the same Debian release as HAProxy', () => {
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    const major = /(\d+)/.exec(engines)![1];
    const node = stages.find((s) => s.image.startsWith('node:'))!.image;
    expect(node).toMatch(new RegExp(`^node:${major}-`));
    expect(process.versions.node.split('.')[0]).toBe(major);
    const release = (image: string) => /-(bookworm|bullseye|trixie)/.exec(image)?.[1];
    expect(release(node)).toBeDefined();
    expect(release(node)).toBe(release(stages[finalStage]!.image));
  });

  it('copies only files that exist in the repository and that .dockerignore sends', () => {
    const copies = dockerfile.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD').map(copyParts);
    const local = copies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    expect(local.length).toBeGreaterThan(3);
    for (const source of local) {
      expect(existsSync(path.join(ROOT, source)), `COPY ${source}: missing`).toBe(true);
      expect(dockerignoreAllows(source), `COPY ${source}: excluded by .dockerignore`).toBe(true);
    }
    for (const copy of copies.filter((c) => c.from !== undefined)) {
      expect(
        stages.some((s) => s.name === copy.from),
        `COPY --from=${copy.from}: no such stage`,
      ).toBe(true);
    }
  });

  it('builds with the same commands as scripts/setup.sh, in the same order', () => {
    const setup = read('scripts/setup.sh')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^npm (ci|run)\b/.test(l));
    expect(setup).toEqual(['npm ci --no-audit --no-fund', 'npm run --silent build']);
    const build = stages.findIndex((s) => s.image.startsWith('node:'));
    const commands = runs(build);
    const positions = setup.map((command) => commands.indexOf(command));
    expect(
      positions.every((p) => p >= 0),
      `build stage RUN steps: ${JSON.stringify(commands)}`,
    ).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  it('copies into the build stage everything `npm ci` and `npm run build` read', () => {
    const build = stages.findIndex((s) => s.image.startsWith('node:'));
    const copied = inStage(build, 'COPY').flatMap((i) => copyParts(i).sources);
    const script = (JSON.parse(read('package.json')) as { scripts: { build: string } }).scripts.build;
    const tsconfig = /-p (\S+)/.exec(script)![1]!;
    const buildConfig = JSON.parse(read(tsconfig)) as { extends?: string; include: string[] };
    const needed = [
      'package.json',
      'package-lock.json',
      tsconfig,
      ...(buildConfig.extends ? [path.normalize(buildConfig.extends)] : []),
      ...buildConfig.include.map((glob) => glob.split('/')[0]!),
    ];
    for (const file of needed) expect(copied, `${file} is needed by the build`).toContain(file);
  });

  it('ships what edgelb reads at run time next to each other: package.json, node_modules, dist, templates', () => {
    const workdir = inStage(finalStage, 'WORKDIR').at(-1)!.args;
    const dests = inStage(finalStage, 'COPY')
      .map(copyParts)
      .map((c) => path.posix.resolve(workdir, c.dest));
    for (const needed of ['package.json', 'node_modules', 'dist', 'templates']) {
      expect(dests, `${needed} in ${workdir}`).toContain(path.posix.join(workdir, needed));
    }
    const bin = (JSON.parse(read('package.json')) as { bin: { edgelb: string } }).bin.edgelb;
    for (const script of ['docker/entrypoint.sh', 'docker/edgelb.sh']) {
      expect(read(script)).toContain(`node ${path.posix.join(workdir, bin)}`);
      accessSync(path.join(ROOT, script), constants.X_OK);
      execFileSync('sh', ['-n', path.join(ROOT, script)]);
    }
  });

  it("runs as a non-root user, with a HEALTHCHECK on the admin port's /healthz", () => {
    const user = dockerfile.filter((i) => i.keyword === 'USER').at(-1)!;
    expect(user.stage).toBe(finalStage);
    expect(['root', '0']).not.toContain(user.args);
    const health = dockerfile.find((i) => i.keyword === 'HEALTHCHECK')!;
    expect(health.args).toContain('healthcheck.mjs');
    const script = read('docker/healthcheck.mjs');
    expect(script).toContain(`process.env.KONTENA_LB_ADMIN_PORT || ${defaultOf('KONTENA_LB_ADMIN_PORT')}`);
    expect(script).toContain("path: '/healthz'");
    expect(read('docker/Dockerfile')).toMatch(/setcap 'cap_net_bind_service=\+ep'/);
  });

  it('sets only environment variables edgelb knows, and exposes its default ports', () => {
    const known = new Set<string>(SETTINGS.map((s) => s.env));
    const envs = inStage(finalStage, 'ENV').flatMap((i) => [...i.args.matchAll(/([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1]!));
    for (const name of envs) expect(name === 'NODE_ENV' || known.has(name), `ENV ${name}`).toBe(true);
    const exposed = inStage(finalStage, 'EXPOSE').flatMap((i) => i.args.split(' '));
    for (const env of ['KONTENA_LB_HTTP_PORT', 'KONTENA_LB_HTTPS_PORT', 'KONTENA_LB_STATS_PORT']) {
      expect(exposed).toContain(defaultOf(env));
    }
  });
});

/**
 * Variables the platform reads from the load balancer's own environment, not edgelb: it writes
 * service link entries only for a load balancer whose image name contains kontena/lb or whose
 * environment has KONTENA_SERVICE_ROLE=lb, and edgelb's image is named otherwise.
 */
const PLATFORM_VARIABLES = new Set(['KONTENA_SERVICE_ROLE']);

describe('docker/stack-*.yml', () => {
  const files = readdirSync(path.join(ROOT, 'docker')).filter((f) => /^stack-.*\.yml$/.test(f));

  it('has the example stacks the README promises', () => {
    expect(files).toEqual(expect.arrayContaining(['stack-lb.yml', 'stack-tcp.yml', 'stack-tls.yml']));
  });

  it.each(files)('%s is a Kontena stack whose load balancer uses the edgelb image and only settings edgelb reads', (file) => {
    const stack = parseYaml(read(`docker/${file}`)) as {
      stack: string;
      version: string;
      services: Record<string, { image?: string; environment?: string[] | Record<string, unknown>; secrets?: { name: string }[]; links?: string[] }>;
    };
    expect(stack.stack).toMatch(/^[a-z0-9-]+\/[a-z0-9-]+$/);
    expect(stack.version).toMatch(/^\d+\.\d+\.\d+$/);
    const lbs = Object.entries(stack.services).filter(([, s]) => s.image?.startsWith('edgelb'));
    expect(lbs.length).toBe(1);
    const [lbName, lb] = lbs[0]!;
    const edgelbReads = envNamesInSource();
    const knows = (name: string) =>
      PLATFORM_VARIABLES.has(name) || edgelbReads.includes(name) || edgelbReads.some((n) => n.endsWith('_') && name.startsWith(n));
    const environment = Array.isArray(lb.environment)
      ? Object.fromEntries(lb.environment.map((e) => [e.split('=')[0]!, e.slice(e.indexOf('=') + 1)]))
      : Object.fromEntries(Object.entries(lb.environment ?? {}).map(([k, v]) => [k, String(v)]));
    const names = [...Object.keys(environment), ...(lb.secrets ?? []).map((s) => s.name)];
    for (const name of names) expect(knows(name), `${file}: ${name} is not read by edgelb`).toBe(true);
    // Without it (or kontena/lb in the image name) the platform writes no entries for this load balancer.
    expect(lb.image?.includes('kontena/lb') || environment.KONTENA_SERVICE_ROLE === 'lb', `${file}: ${lbName} needs KONTENA_SERVICE_ROLE=lb`).toBe(true);
    const linked = Object.values(stack.services).filter((s) => s.links?.includes(lbName));
    expect(linked.length, `${file}: services linked to ${lbName}`).toBeGreaterThan(0);
  });
});
