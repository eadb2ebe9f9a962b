import { readFileSync } from 'node:fs';
import { Election } from 'etcd3';
import { ELECTION_NAME, ELECTION_NAMESPACE } from '../../src/acme/keys.js';
import { describe, expect, it } from 'vitest';
import { BEGIN, END, keyspaceTables, README, withKeyspaceTables } from '../../scripts/keyspace-table.js';
import { HTTP_SECTION, KEY_PATHS, SERVICE_FIELD_KEYS, serviceFieldOf, TCP_SECTION, TOP_DIRS } from '../../src/model/keyspace.js';
import { STORED_SECTION } from '../../src/model/keyspace-stored.js';
import { fieldRowsOf, instanceOptionRowsOf, instanceRowOf, keyOf, type ServiceSection } from '../../src/model/keyspace-rows.js';
import { parseEntries } from '../../src/model/parse.js';

const sections = [
  ['HTTP', HTTP_SECTION],
  ['TCP', TCP_SECTION],
] as [string, ServiceSection][];
const fieldRows = sections.flatMap(([, section]) => fieldRowsOf(section).map((row) => [`${section.dir}${row.key}`, section, row] as const));
/** Refused by every validator: a control byte may reach no HAProxy line. */
const INVALID = '\u0001bad';

/** One service of `section` with every key set to its row's example. */
function exampleEntries(section: ServiceSection): Map<string, string> {
  const entries = new Map<string, string>();
  for (const row of section.rows) {
    const key = row.scope === 'instance' ? `${KEY_PATHS.upstreams}/i1` : row.scope === 'instance-option' ? `${row.dir}/i1` : row.key;
    entries.set(`${section.dir}s/${key}`, row.example);
    // canary's example names another service (issue 15): it is served beside, after "s" by name.
    if (row.key === 'canary') entries.set(`${section.dir}${row.example.split(':')[0]}/virtual_path`, '/next');
  }
  return entries;
}

/** The keys that keep a canary off their service (model/parse.ts canariesServed). */
const GUARDS = ['basic_auth_secrets', 'ip_allow', 'ip_deny', 'rate_limit', 'conn_limit', 'client_ca', 'client_verify', 'client_crl'];

/** The rejections but the canary refused on the every-example service (see the test of canary). */
function withoutCanaryGuard<R extends { code: string }>(rejected: readonly R[]): R[] {
  return rejected.filter((r) => r.code !== 'canary_not_allowed');
}

describe('the key table', () => {
  it.each(fieldRows)('%s: its parser accepts its example', (_key, _section, row) => {
    expect(() => row.parse(row.example, row.key)).not.toThrow();
  });

  it.each(sections)('%s: the instance row accepts its example', (_kind, section) => {
    const row = instanceRowOf(section);
    expect(row.parse('i1', row.example)).toMatchObject({ name: 'i1' });
  });

  it.each(STORED_SECTION.rows.filter((row) => row.parse).map((row) => [row.key, row] as const))('%s: its parser accepts its example', (_key, row) => {
    expect(() => row.parse!(row.example)).not.toThrow();
  });

  it.each(sections)('%s: a service of every example is served with each parsed value in its field', (_kind, section) => {
    // Every example at once includes basic auth, IP lists and limits, which a canary would skip: it
    // is refused there (canary_not_allowed) and checked below on a service without them.
    const { state, rejected } = parseEntries(exampleEntries(section), { reservedPorts: [] });
    expect(withoutCanaryGuard(rejected)).toEqual([]);
    const service = (section.kind === 'http' ? state.http : state.tcp).find((x) => x.name === 's')! as unknown as Record<string, unknown>;
    // Every field of the service type comes from a row (and nothing else but kind, name and upstreams).
    expect(Object.keys(service).sort()).toEqual(['kind', 'name', 'upstreams', ...fieldRowsOf(section).map((r) => String(r.prop))].sort());
    for (const row of fieldRowsOf(section)) {
      if (row.key !== 'canary') expect(service[String(row.prop)], row.key).toEqual(row.parse(row.example, row.key));
    }
  });

  it('HTTP canary: its example is served on a service without basic auth, IP lists or limits, and refused on one with them', () => {
    const row = fieldRowsOf(HTTP_SECTION).find((r) => r.key === 'canary')!;
    const entries = exampleEntries(HTTP_SECTION);
    for (const key of GUARDS) entries.delete(`${HTTP_SECTION.dir}s/${key}`);
    const open = parseEntries(entries, { reservedPorts: [] });
    expect(open.rejected).toEqual([]);
    expect((open.state.http.find((x) => x.name === 's') as unknown as Record<string, unknown>).canary).toEqual(row.parse(row.example, row.key));
    for (const key of GUARDS) {
      const guarded = new Map(entries).set(`${HTTP_SECTION.dir}s/${key}`, exampleEntries(HTTP_SECTION).get(`${HTTP_SECTION.dir}s/${key}`)!);
      const result = parseEntries(guarded, { reservedPorts: [] });
      expect(result.rejected, key).toEqual([{ key: `${HTTP_SECTION.dir}s/canary`, code: 'canary_not_allowed', reason: expect.any(String) }]);
      expect(result.state.http.find((x) => x.name === 's')?.canary, key).toBeUndefined();
    }
  });

  it('HTTP canary: refused towards a service that checks client certificates (its check belongs to its own host names)', () => {
    const entries = new Map(
      Object.entries({
        'services/front/virtual_hosts': 'front.test',
        'services/front/upstreams/a': '10.0.0.1:80',
        'services/front/canary': 'secure:10',
        'services/secure/virtual_hosts': 'secure.test',
        'services/secure/upstreams/a': '10.0.0.2:80',
        'services/secure/client_ca': 'partners',
      }),
    );
    const result = parseEntries(entries, { reservedPorts: [] });
    expect(result.rejected).toEqual([
      { key: 'services/front/canary', code: 'canary_not_allowed', reason: expect.stringContaining('secure checks client certificates') },
    ]);
    expect(result.state.http.find((x) => x.name === 'front')?.canary).toBeUndefined();
  });

  it.each(fieldRows)('%s: an invalid value does what the table says', (key, section, row) => {
    expect(() => row.parse(INVALID, row.key)).toThrow();
    const entries = exampleEntries(section);
    entries.set(key.replace(section.dir, `${section.dir}s/`), INVALID);
    const { state, rejected } = parseEntries(entries, { reservedPorts: [] });
    const service = (section.kind === 'http' ? state.http : state.tcp).find((x) => x.name === 's') as unknown as Record<string, unknown> | undefined;
    const rejection = rejected.find((r) => r.key === `${section.dir}s/${row.key}`);
    expect(rejection?.code).toBe(row.code);
    if (row.invalid === 'reject-service') {
      expect(service).toBeUndefined();
      expect(rejection?.service).toBe('s');
    } else {
      expect(rejection?.service).toBeUndefined();
      const expected = row.invalid === 'close-service' ? row.closed?.value : 'value' in row.absent ? row.absent.value : undefined;
      expect(service?.[String(row.prop)]).toEqual(expected);
    }
  });

  it.each(sections)('%s: an invalid instance is left out, the service served', (_kind, section) => {
    const entries = exampleEntries(section);
    entries.set(`${section.dir}s/${KEY_PATHS.upstreams}/bad`, INVALID);
    const { state, rejected } = parseEntries(entries, { reservedPorts: [] });
    const service = (section.kind === 'http' ? state.http : state.tcp).find((x) => x.name === 's');
    expect(service?.upstreams.map((u) => u.name)).toEqual(['i1']);
    expect(withoutCanaryGuard(rejected)).toEqual([{ key: `${section.dir}s/${KEY_PATHS.upstreams}/bad`, code: 'invalid_value', reason: expect.any(String) }]);
  });

  it.each(sections.flatMap(([kind, section]) => instanceOptionRowsOf(section).map((row) => [`${kind} ${row.key}`, section, row] as const)))(
    '%s: its example fills the instance, an invalid value gives the default',
    (_key, section, row) => {
      const service = (s: ReturnType<typeof parseEntries>) => (section.kind === 'http' ? s.state.http : s.state.tcp).find((x) => x.name === 's')!;
      const good = parseEntries(exampleEntries(section), { reservedPorts: [] });
      expect(service(good).upstreams[0]?.[row.prop]).toEqual(row.parse(row.example, row.key));
      const entries = exampleEntries(section);
      entries.set(`${section.dir}s/${row.dir}/i1`, INVALID);
      const bad = parseEntries(entries, { reservedPorts: [] });
      expect(service(bad).upstreams[0]?.[row.prop]).toEqual(row.absent.value);
      expect(withoutCanaryGuard(bad.rejected)).toEqual([{ key: `${section.dir}s/${row.dir}/i1`, code: row.code, reason: expect.any(String) }]);
    },
  );

  it.each(fieldRows.filter(([, , row]) => !('value' in row.absent)))('%s: required, so absent leaves the service out with its code', (key, section, row) => {
    expect(row.invalid, 'a required key has no default to fall back on').toBe('reject-service');
    const entries = exampleEntries(section);
    entries.delete(key.replace(section.dir, `${section.dir}s/`));
    const { rejected } = parseEntries(entries, { reservedPorts: [] });
    expect(rejected).toEqual([
      { key: `${section.dir}s/${row.key}`, code: 'absent' in row && 'code' in row.absent ? row.absent.code : '', reason: expect.any(String), service: 's' },
    ]);
  });

  it('names each per-service field key once per kind, and every field a metric label can name', () => {
    for (const [, section] of sections) {
      const keys = section.rows.map((r) => r.key);
      expect(new Set(keys).size).toBe(keys.length);
    }
    expect([...SERVICE_FIELD_KEYS].sort()).toEqual([...new Set(fieldRows.map(([, , row]) => row.key))].sort());
  });

  it('finds the key of a field, and splits a service field key', () => {
    expect(keyOf(TCP_SECTION, 'externalPort')).toBe('external_port');
    expect(serviceFieldOf('tcp-services/db/custom_settings')).toEqual({ kind: 'tcp', service: 'db', field: 'custom_settings' });
    expect(serviceFieldOf('services/web/upstreams/a')).toBeUndefined();
    expect(serviceFieldOf('certs/web')).toBeUndefined();
  });

  it('lists every top-level directory, each key of the stored section under one of them', () => {
    expect(TOP_DIRS).toEqual(['services', 'tcp-services', 'certs', 'client-cas', 'client-crls', 'backend-cas', 'acme', 'peers']);
    for (const row of STORED_SECTION.rows) expect(TOP_DIRS, row.key).toContain(row.key.split('/')[0]);
  });
});

describe("the README's key tables", () => {
  it('are the key table, as scripts/keyspace-table.ts writes them', () => {
    const readme = readFileSync(README, 'utf8');
    const block = readme.slice(readme.indexOf(BEGIN) + BEGIN.length, readme.indexOf(END));
    expect(readme.indexOf(BEGIN), 'the begin marker').toBeGreaterThan(0);
    expect(block.trim(), 'README.md differs from src/model/keyspace.ts: run node --import tsx scripts/keyspace-table.ts --write').toBe(keyspaceTables());
    expect(withKeyspaceTables(readme)).toBe(readme);
  });

  it('have one row per key', () => {
    const tables = keyspaceTables();
    for (const [, section] of sections) for (const row of section.rows) expect(tables).toContain(`| \`${row.key}\` | ${row.doc} |`);
    for (const row of STORED_SECTION.rows) expect(tables).toContain(`| \`${row.key}\` | ${row.doc} |`);
  });

  it("names the key etcd3's Election writes for the ACME leader (the library builds it)", () => {
    expect(`${ELECTION_NAMESPACE}${Election.prefix}/${ELECTION_NAME}/`).toBe(KEY_PATHS.acmeElection);
  });
});
