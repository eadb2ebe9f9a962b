import { readFile } from 'node:fs/promises';
import { renderSettingsOf } from '../../src/pipeline/settings-of.js';
import { parseEntries } from '../../src/model/parse.js';
import { createRenderer } from '../../src/render/render.js';
import type { TestEdgelb } from './edgelb.js';
import type { EtcdServer } from './etcd.js';

/**
 * The config a controller started fresh against etcd as it is now would serve (no certificates,
 * no excluded services): after a fault, the running one must have converged to exactly this.
 */
export async function freshStartConfig(etcd: EtcdServer, lb: TestEdgelb): Promise<string> {
  const listed = await etcd.client.getAll().prefix(`${lb.prefix}/`).exec();
  const entries = new Map((listed.kvs ?? []).map((kv) => [kv.key.toString('utf8').slice(lb.prefix.length + 1), kv.value.toString('utf8')]));
  const { state } = parseEntries(entries, { reservedPorts: [lb.config.httpPort, lb.config.httpsPort, lb.config.statsPort] });
  return createRenderer()(state, renderSettingsOf(lb.config));
}

export async function servedConfig(lb: TestEdgelb): Promise<string> {
  return readFile(lb.configFile, 'utf8');
}
